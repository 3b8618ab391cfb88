// Task asr_conformer; see asr_task.h.
#include "train/asr_task.h"

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <fmt/format.h>
#include <spdlog/logger.h>
#include <torch/utils.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/run.h"
#include "core/state_dict.h"
#include "data/dataset/collate.h"
#include "data/dataset/loader.h"
#include "data/dataset/manifest.h"
#include "data/dataset/speech_dataset.h"
#include "data/generators/corpus.h"
#include "data/text/piece_vocab.h"
#include "data/text/vocab.h"
#include "eval/wer.h"
#include "models/asr/asr_ctc.h"
#include "models/asr/ctc_decoding.h"
#include "train/distributed.h"

namespace mmref::train {

namespace {

void parse_section(config::Reader& r, AsrDataConfig& c) {
  r.opt("dir", c.dir);
  r.opt("train", c.train);
  r.opt("valid", c.valid);
  r.opt("test", c.test);
  r.opt("make_if_missing", c.make_if_missing);
  r.opt("count", c.count, config::Range::between(4, 1e7));
  r.opt("seed", c.seed, config::Range::at_least(0));
  r.opt("num_workers", c.num_workers, config::Range::between(0, 64));
  r.opt("bucket_by_length", c.bucket_by_length);
  r.opt("max_valid", c.max_valid, config::Range::between(1, 1e9));
  r.opt("max_test", c.max_test, config::Range::between(0, 1e9));
  r.choice("units", c.units, {"char", "bpe", "unigram"});
  r.opt("vocab_size", c.vocab_size, config::Range::between(8, 1 << 20));
  r.finish();
}

void parse_section(config::Reader& r, SpecAugConfig& c) {
  r.opt("freq_masks", c.freq_masks, config::Range::between(0, 100));
  r.opt("freq_width", c.freq_width, config::Range::between(0, 1000));
  r.opt("time_masks", c.time_masks, config::Range::between(0, 100));
  r.opt("time_width", c.time_width, config::Range::between(0, 100000));
  r.opt("time_width_ratio", c.time_width_ratio, config::Range::between(0, 1));
  r.finish();
}

void parse_section(config::Reader& r, AsrDecodeConfig& c) {
  r.choice("method", c.method, {"greedy", "beam"});
  r.opt("beam", c.beam, config::Range::between(1, 10000));
  r.opt("chunk_size", c.chunk_size, config::Range::at_least(0));
  r.opt("left_chunks", c.left_chunks, config::Range::at_least(-1));
  r.finish();
}

void parse_section(config::Reader& r, AsrFinetuneConfig& c) {
  r.opt("base", c.base);
  r.opt("lora_r", c.lora.r, config::Range::between(0, 1 << 16));
  r.opt("lora_alpha", c.lora.alpha, config::Range::positive());
  r.opt("lora_dropout", c.lora.dropout, config::Range::between(0, 0.99));
  r.opt("target_modules", c.lora.target_modules);
  r.opt("freeze", c.freeze);
  r.finish();
}

// SpecAugment (frequency and time masks, value 0 = the mean after fbank's log is not 0, as wenet's
// spec_aug also zeroes) on (B, T, F) features in place, on valid frames only.
void spec_augment(at::Tensor& feats, const at::Tensor& lengths, const SpecAugConfig& c, at::Generator& gen) {
  const int64_t b = feats.size(0), f = feats.size(2);
  auto rnd = [&](int64_t hi) { return hi <= 0 ? int64_t{0} : at::randint(hi + 1, {1}, gen, at::kLong).item<int64_t>(); };
  const auto len = lengths.accessor<int64_t, 1>();
  for (int64_t i = 0; i < b; ++i) {
    at::Tensor x = feats[i];
    for (int64_t m = 0; m < c.freq_masks; ++m) {
      const int64_t w = rnd(std::min(c.freq_width, f - 1));
      const int64_t s = rnd(f - w);
      if (w > 0) x.narrow(1, s, w).zero_();
    }
    const int64_t t = len[i];
    const int64_t tw = std::min<int64_t>(c.time_width, static_cast<int64_t>(c.time_width_ratio * static_cast<double>(t)));
    for (int64_t m = 0; m < c.time_masks; ++m) {
      const int64_t w = rnd(tw);
      const int64_t s = rnd(t - w);
      if (w > 0) x.narrow(0, s, w).zero_();
    }
  }
}

struct Decoded {
  std::vector<std::string> refs, hyps, ids;
  double loss_sum = 0;
  int64_t utts = 0;
};

// Batched decoding of dataset examples [0, n): CTC loss and transcripts.
Decoded decode_set(models::AsrCtcModel& model, const data::SpeechFeatureDataset& ds, const data::UnitVocab& vocab,
                   int64_t n, const AsrDecodeConfig& dc, int64_t batch = 16) {
  torch::NoGradGuard ng;
  Decoded d;
  n = std::min(n, ds.size());
  model->encoder->decoding_chunk_size = dc.chunk_size;
  model->encoder->num_decoding_left_chunks = dc.left_chunks;
  for (int64_t b = 0; b < n; b += batch) {
    std::vector<data::Example> ex;
    for (int64_t i = b; i < std::min(n, b + batch); ++i) ex.push_back(ds.get(i));
    const data::Batch bt = data::collate(std::move(ex));
    const c10::Device dev = device_of(*model);
    const auto out = model->forward(bt.tensors.at("feats").to(dev), bt.lengths.at("feats").to(dev));
    const at::Tensor loss = at::ctc_loss(out.log_probs.transpose(0, 1), bt.tensors.at("tokens").to(dev), out.lengths,
                                         bt.lengths.at("tokens").to(dev), 0, at::Reduction::Sum, true);
    d.loss_sum += loss.item<double>();
    const at::Tensor log_probs = out.log_probs.to(at::kCPU, at::kFloat), lengths = out.lengths.cpu();  // decoding: CPU
    for (int64_t i = 0; i < bt.size(); ++i) {
      const int64_t len = lengths[i].item<int64_t>();
      const at::Tensor lp = log_probs[i];
      std::vector<int64_t> ids;
      if (dc.method == "beam") {
        models::CtcBeamOptions bo;
        bo.beam = dc.beam, bo.top_k_per_frame = std::min<int64_t>(dc.beam, vocab.size());
        ids = models::ctc_prefix_beam_search(lp, len, bo).at(0).ids();
      } else {
        ids = models::ctc_greedy(lp, len).ids();
      }
      d.hyps.push_back(normalize_transcript(vocab.decode(ids)));
      d.refs.push_back(ds.entry(b + i).text);
      d.ids.push_back(ds.entry(b + i).path);
    }
    d.utts += bt.size();
  }
  return d;
}

std::pair<double, double> wer_cer(const Decoded& d) {
  if (d.refs.empty()) return {NAN, NAN};
  return {eval::wer(d.refs, d.hyps), eval::cer(d.refs, d.hyps)};
}

class AsrTrainTask : public TrainTask {
 public:
  AsrTrainTask(models::AsrCtcModel model, std::shared_ptr<const data::SpeechFeatureDataset> train,
               std::shared_ptr<const data::SpeechFeatureDataset> valid, std::shared_ptr<const data::UnitVocab> vocab,
               data::LoaderOptions lo, const AsrDataConfig& dc, const SpecAugConfig& sa, int64_t seed)
      : model_(std::move(model)), train_(std::move(train)), valid_(std::move(valid)), vocab_(std::move(vocab)),
        lo_(std::move(lo)), dc_(dc), sa_(sa), seed_(seed) {}

  std::string name() const override { return "asr_conformer"; }
  torch::nn::Module& model() override { return *model_; }

  TaskLoss loss(const MicroBatch& mb) override {
    if (!loader_) loader_ = std::make_unique<data::DataLoader>(train_, lo_);
    std::optional<data::Batch> b = loader_->next();
    if (!b) b = loader_->next();  // epoch boundary
    if (!b) MMREF_FAIL("asr: the training set gives no batches");
    at::Tensor feats = b->tensors.at("feats").clone();
    const at::Tensor flens = b->lengths.at("feats");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed_) * 7919ULL + static_cast<uint64_t>(mb.step) * 131ULL +
                                                        static_cast<uint64_t>(mb.micro) * 17ULL + static_cast<uint64_t>(mb.rank));
    spec_augment(feats, flens, sa_, gen);  // on the CPU, with the batch's generator; then to the model's device
    const c10::Device dev = device_of(*model_);
    const auto out = model_->forward(feats.to(dev), flens.to(dev));
    const at::Tensor loss = at::ctc_loss(out.log_probs.transpose(0, 1), b->tensors.at("tokens").to(dev), out.lengths,
                                         b->lengths.at("tokens").to(dev), 0, at::Reduction::Sum, /*zero_infinity=*/true) /
                            static_cast<double>(b->size());
    return {loss, {{"frames", static_cast<double>(flens.sum().item<int64_t>())}, {"utterances", static_cast<double>(b->size())}}};
  }

  Metrics validate() override {
    const Decoded d = decode_set(model_, *valid_, *vocab_, dc_.max_valid, AsrDecodeConfig{});
    const auto [w, c] = wer_cer(d);
    return {{"ctc_loss", d.loss_sum / std::max<int64_t>(1, d.utts)}, {"wer", w}, {"cer", c}};
  }

  void save_state(Checkpoint& ck) const override {
    ck.meta["loader"] = loader_ ? loader_->state().to_json() : data::LoaderState{}.to_json();
  }
  void load_state(const Checkpoint& ck) override {
    if (ck.meta.contains("loader")) {
      loader_ = std::make_unique<data::DataLoader>(train_, lo_, data::LoaderState::from_json(ck.meta.at("loader")));
    }
  }

 private:
  models::AsrCtcModel model_;
  std::shared_ptr<const data::SpeechFeatureDataset> train_, valid_;
  std::shared_ptr<const data::UnitVocab> vocab_;
  data::LoaderOptions lo_;
  AsrDataConfig dc_;
  SpecAugConfig sa_;
  int64_t seed_;
  std::unique_ptr<data::DataLoader> loader_;
};

std::vector<data::ManifestEntry> normalized(std::vector<data::ManifestEntry> v) {
  for (auto& e : v) e.text = normalize_transcript(e.text);
  v.erase(std::remove_if(v.begin(), v.end(), [](const data::ManifestEntry& e) { return e.text.empty(); }), v.end());
  return v;
}

}  // namespace

void AsrConformerTask::parse(config::Reader& root) {
  {
    auto r = root.child("data");
    parse_section(r, data);
  }
  {
    auto r = root.child("model");
    models::parse(r, model);
  }
  {
    auto r = root.child("specaug");
    parse_section(r, specaug);
  }
  {
    auto r = root.child("decode");
    parse_section(r, decode);
  }
  {
    auto r = root.child("train");
    train::parse(r, train);
  }
  {
    auto r = root.child("finetune");
    parse_section(r, finetune);
  }
}

nlohmann::json AsrConformerTask::run(TaskContext& ctx) {
  auto& log = ctx.run.log();
  const std::string train_path = path_in(data.dir, data.train);
  rank0_first(ctx.dist, [&] {
    if (!fs::exists(train_path) && data.make_if_missing) {
      log.info("asr: no {}; making the speech corpus ({} utterances) in {}", train_path, data.count, data.dir);
      data::CorpusOptions co;
      co.out = data.dir, co.count = data.count, co.seed = static_cast<uint64_t>(data.seed), co.quiet = true;
      log.info("asr: {}", data::make_corpus("speech", co));
    }
  });
  for (const auto& p : {train_path, path_in(data.dir, data.valid), path_in(data.dir, data.test)}) {
    if (!fs::exists(p)) {
      MMREF_FAIL("asr: manifest '{}' does not exist (make it with `mmref data make speech --out {}`, or set "
                 "data.make_if_missing: true)",
                 p, data.dir);
    }
  }
  const auto train_entries = normalized(data::read_manifest(train_path));
  const auto valid_entries = normalized(data::read_manifest(path_in(data.dir, data.valid)));
  const auto test_entries = normalized(data::read_manifest(path_in(data.dir, data.test)));
  // The unit vocabulary: the base run's (fine-tuning), this run's (resume), or built from train.
  // Subword units keep their SentencePiece model beside units.txt (spm.model).
  std::shared_ptr<data::UnitVocab> vocab;
  const bool pieces = data.units != "char";
  const std::string own_units = ctx.run.dir() + "/units.txt";
  const std::string own_spm = ctx.run.dir() + "/spm.model";
  // Rank 0 first: it trains the SentencePiece model into the run; the other ranks then load it.
  rank0_first(ctx.dist, [&] {
    if (!finetune.base.empty()) {
      const std::string base_dir = std::filesystem::path(finetune.base).parent_path().parent_path().string();
      const std::string base_units = base_dir + "/units.txt", base_spm = base_dir + "/spm.model";
      if (!fs::exists(base_units)) MMREF_FAIL("finetune.base: no units.txt in the base run ({})", base_units);
      if (pieces != fs::exists(base_spm))
        throw ConfigError(fmt::format("data.units: '{}' but the base run {} (set data.units to the base run's)",
                                      data.units, pieces ? "has no spm.model (character units)" : "used subword units"));
      if (pieces) {
        vocab = std::make_shared<data::PieceVocab>(data::PieceVocab::load(base_spm));
        if (ctx.run.primary()) fs::atomic_write(own_spm, fs::read_file(base_spm));
      } else {
        vocab = std::make_shared<data::CharVocab>(data::CharVocab::load_units(base_units));
      }
    } else if (!ctx.run.dir().empty() && fs::exists(own_units) && (!pieces || fs::exists(own_spm))) {
      if (pieces)
        vocab = std::make_shared<data::PieceVocab>(data::PieceVocab::load(own_spm));
      else
        vocab = std::make_shared<data::CharVocab>(data::CharVocab::load_units(own_units));
    } else {
      std::vector<std::string> texts;
      for (const auto& e : train_entries) texts.push_back(e.text);
      if (pieces) {
        const std::string prefix = ctx.run.dir().empty() ? fs::make_temp_dir("mmref_spm_") + "/spm" : ctx.run.dir() + "/spm";
        vocab = std::make_shared<data::PieceVocab>(
            data::PieceVocab::train(texts, prefix, static_cast<int>(data.vocab_size), data.units));
        ctx.run.log().info("asr: {} {} pieces trained on {} transcripts ({}.model)", data.vocab_size, data.units,
                           texts.size(), prefix);
      } else {
        vocab = std::make_shared<data::CharVocab>(data::CharVocab::build(texts));
      }
    }
    if (ctx.run.primary()) vocab->save_units(own_units);
  });
  data::SpeechDatasetOptions so;
  so.source = train_path;
  auto train_ds = std::make_shared<const data::SpeechFeatureDataset>(train_entries, vocab, so);
  so.source = path_in(data.dir, data.valid);
  auto valid_ds = std::make_shared<const data::SpeechFeatureDataset>(valid_entries, vocab, so);
  so.source = path_in(data.dir, data.test);
  auto test_ds = std::make_shared<const data::SpeechFeatureDataset>(test_entries, vocab, so);

  model.input_size = 80;
  models::AsrCtcModel net(model, vocab->size());
  net->encoder->attention_backend = kernels::parse_attention_backend(ctx.experiment.kernels.attention);
  net->encoder->conv_backend = kernels::parse_conv_backend(ctx.experiment.kernels.depthwise_conv1d);
  if (!finetune.base.empty() && ctx.resume_from.empty()) {
    const Checkpoint ck = load_checkpoint(finetune.base);
    std::map<std::string, at::Tensor> sd;
    for (const auto& [k, v] : ck.tensors) {
      if (k.rfind("model.", 0) == 0) sd[k.substr(6)] = v;
    }
    net->load(sd);
    log.info("finetune: base weights from {}", finetune.base);
  }
  if (finetune.lora.r > 0) {
    const auto adapted = models::apply_lora(*net, finetune.lora);
    log.info("finetune: LoRA r {} on {} layers", finetune.lora.r, adapted.size());
  } else if (!finetune.freeze.empty()) {
    const std::regex re(finetune.freeze);
    int64_t frozen = 0;
    for (auto& item : net->named_parameters()) {
      if (std::regex_match(item.key(), re)) item.value().requires_grad_(false), ++frozen;
    }
    if (frozen == 0) throw ConfigError(fmt::format("finetune.freeze: '{}' matches no parameter", finetune.freeze));
  }
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  log.info("asr: Conformer {} blocks x {} dims, {} units, {:.2f}M parameters; {} train / {} dev / {} test utterances",
           model.num_blocks, model.output_size, vocab->size(), params / 1e6, train_ds->size(), valid_ds->size(),
           test_ds->size());

  data::LoaderOptions lo;
  lo.sampler.batch_size = train.batch_size;
  lo.sampler.shuffle = true;
  lo.sampler.seed = static_cast<uint64_t>(ctx.experiment.runtime.seed);
  lo.sampler.bucket_by_length = data.bucket_by_length;
  lo.sampler.drop_last = true;
  lo.sampler.rank = ctx.dist ? ctx.dist->rank() : 0;
  lo.sampler.world_size = ctx.dist ? ctx.dist->world() : 1;
  lo.num_workers = data.num_workers;
  AsrTrainTask task(net, train_ds, valid_ds, vocab, lo, data, specaug, ctx.experiment.runtime.seed);
  Trainer trainer(train, ctx);
  const TrainResult r = trainer.fit(task);

  nlohmann::json s = trainer.summary(r, "asr_conformer");
  s["units"] = vocab->size();
  s["unit_kind"] = data.units;
  if (ctx.run.primary()) {
    net->eval();
    const int64_t n_test = data.max_test > 0 ? data.max_test : test_ds->size();
    const Decoded g = decode_set(net, *test_ds, *vocab, n_test, AsrDecodeConfig{"greedy", 1});
    const auto [gw, gc] = wer_cer(g);
    s["test_wer_greedy"] = gw, s["test_cer_greedy"] = gc, s["test_utterances"] = g.utts;
    AsrDecodeConfig bc = decode;
    bc.method = "beam";
    const Decoded bm = decode_set(net, *test_ds, *vocab, n_test, bc);
    const auto [bw, bcer] = wer_cer(bm);
    s["test_wer_beam"] = bw, s["test_cer_beam"] = bcer, s["beam"] = bc.beam;
    std::string jl;
    const Decoded& chosen = decode.method == "beam" ? bm : g;
    for (size_t i = 0; i < chosen.hyps.size(); ++i) {
      jl += nlohmann::json{{"id", chosen.ids[i]}, {"text", chosen.hyps[i]}, {"reference", chosen.refs[i]}}.dump() + "\n";
    }
    fs::atomic_write(ctx.run.dir() + "/test_hyp.jsonl", jl);
    s["test_hypotheses"] = ctx.run.dir() + "/test_hyp.jsonl";
    log.info("asr: test WER {:.2f}% (greedy), {:.2f}% (beam {}), CER {:.2f}%; {} utterances", 100 * gw, 100 * bw,
             bc.beam, 100 * gc, g.utts);
    if (finetune.lora.r > 0) {
      models::save_lora_adapter(*net, finetune.lora, ctx.run.dir() + "/adapter");
      s["adapter"] = ctx.run.dir() + "/adapter";
    }
  }
  return s;
}

}  // namespace mmref::train
