// Task clip_contrastive; see clip_task.h.
#include "train/clip_task.h"

#include <cmath>
#include <filesystem>
#include <map>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <spdlog/logger.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/run.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "data/dataset/image_split.h"
#include "data/generators/corpus.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_tokenizer.h"
#include "train/distributed.h"

namespace mmref::train {

void ClipTask::parse(config::Reader& root) {
  {
    auto r = root.child("data");
    r.opt("dir", data.dir);
    r.opt("size", data.size, config::Range::between(8, 1024));
    r.opt("count", data.count, config::Range::between(10, 10000000));
    r.opt("train", data.train);
    r.opt("test", data.test);
    r.opt("heldout", data.heldout);
    r.opt("vocab", data.vocab);
    r.opt("make_if_missing", data.make_if_missing);
    r.finish();
  }
  {
    auto r = root.child("model");
    r.opt("embed_dim", model.embed_dim, config::Range::between(1, 4096));
    r.opt("vision_width", model.vision_width, config::Range::between(64, 4096));
    r.opt("vision_layers", model.vision_layers, config::Range::between(1, 64));
    r.opt("patch_size", model.patch_size, config::Range::between(1, 256));
    r.opt("text_width", model.text_width, config::Range::between(64, 4096));
    r.opt("text_layers", model.text_layers, config::Range::between(1, 64));
    r.opt("context_length", model.context_length, config::Range::between(4, 77));
    r.finish();
    for (const auto& [key, w] : {std::pair<const char*, int64_t>{"vision_width", model.vision_width}, {"text_width", model.text_width}}) {
      if (w % 64 != 0) throw ConfigError(fmt::format("model.{}: {} is not a multiple of 64 (heads are width / 64, as in CLIP)", key, w));
    }
    if (data.size % model.patch_size != 0) {
      throw ConfigError(fmt::format("model.patch_size: {} does not divide data.size {}", model.patch_size, data.size));
    }
  }
  {
    auto r = root.child("train");
    train::parse(r, train);
  }
}

namespace {

constexpr double kMaxLogitScale = 4.605170185988092;  // log(100), CLIP's clamp

// One split in CLIP's input form: normalised images, token ids and a caption id per image (equal
// caption texts share an id).
struct ClipSplit {
  at::Tensor images;                  // (N, 3, R, R), clip_preprocess'ed
  at::Tensor tokens;                  // (N, context) int64
  at::Tensor caption_id;              // (N,) int64 into `captions`
  std::vector<std::string> captions;  // distinct texts
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

ClipSplit to_clip(const data::ImageSplit& s, const models::ClipTokenizer& tok, int64_t resolution, int64_t context) {
  ClipSplit c;
  c.images = models::clip_preprocess(s.pixels.to(at::kFloat) / 255.0, resolution);
  c.tokens = tok.tokenize(s.texts, context, /*truncate=*/true);
  std::map<std::string, int64_t> ids;
  std::vector<int64_t> cid;
  for (const auto& t : s.texts) {
    auto it = ids.find(t);
    if (it == ids.end()) it = ids.emplace(t, static_cast<int64_t>(c.captions.size())).first, c.captions.push_back(t);
    cid.push_back(it->second);
  }
  c.caption_id = at::tensor(cid, at::kLong);
  return c;
}

// CLIP's symmetric cross-entropy; rows/columns with the same caption id are all positives.
at::Tensor contrastive_loss(const at::Tensor& img, const at::Tensor& txt, const at::Tensor& caption_id,
                            const at::Tensor& logit_scale) {
  const at::Tensor i = img / img.norm(2, -1, true), t = txt / txt.norm(2, -1, true);
  const at::Tensor logits = logit_scale.clamp(0, kMaxLogitScale).exp() * at::matmul(i, t.t());  // (B, B)
  at::Tensor same = caption_id.unsqueeze(1).eq(caption_id.unsqueeze(0)).to(at::kFloat);
  same = same / same.sum(1, true);  // symmetric, so the same targets serve both directions
  const at::Tensor l_i = -(same * at::log_softmax(logits, 1)).sum(1).mean();
  const at::Tensor l_t = -(same * at::log_softmax(logits.t(), 1)).sum(1).mean();
  return (l_i + l_t) / 2;
}

struct SplitScores {
  double loss = 0, i2t_top1 = 0, t2i_top1 = 0, clip_score = 0, clip_score_shuffled = 0;
  int64_t n = 0, captions = 0;
  nlohmann::json to_json() const {
    return {{"loss", loss}, {"i2t_top1", i2t_top1}, {"t2i_top1", t2i_top1}, {"clip_score", clip_score},
            {"clip_score_shuffled", clip_score_shuffled}, {"n", n}, {"distinct_captions", captions}};
  }
};

// Embeddings of a whole split in batches; scores as the harness computes clip_score
// (100 x max(cos, 0)), the shuffled pairing being every image against the caption of image i+N/2.
SplitScores score_split(models::ClipModel& m, const ClipSplit& s, int64_t batch) {
  torch::NoGradGuard ng;
  m->eval();
  const c10::Device dev = device_of(*m);
  std::vector<at::Tensor> ie, te;
  for (int64_t b = 0; b < s.size(); b += batch) {  // embeddings on the model's device, scores on the CPU
    const int64_t n = std::min(batch, s.size() - b);
    ie.push_back(m->encode_image(s.images.narrow(0, b, n).to(dev)).to(at::kCPU, at::kFloat));
    te.push_back(m->encode_text(s.tokens.narrow(0, b, n).to(dev)).to(at::kCPU, at::kFloat));
  }
  const at::Tensor logit_scale = m->named_parameters()["logit_scale"].detach().to(at::kCPU, at::kFloat);
  const at::Tensor img = at::cat(ie), txt = at::cat(te);
  SplitScores r;
  r.n = s.size(), r.captions = static_cast<int64_t>(s.captions.size());
  // Loss in batch-sized blocks, as in training.
  double loss = 0;
  int64_t blocks = 0;
  for (int64_t b = 0; b + 1 < s.size(); b += batch, ++blocks) {
    const int64_t n = std::min(batch, s.size() - b);
    loss += contrastive_loss(img.narrow(0, b, n), txt.narrow(0, b, n), s.caption_id.narrow(0, b, n), logit_scale)
                .item<double>();
  }
  r.loss = blocks ? loss / static_cast<double>(blocks) : NAN;
  const at::Tensor in = img / img.norm(2, -1, true), tn = txt / txt.norm(2, -1, true);
  // Distinct captions' embeddings: the first image's text row of each id.
  std::vector<int64_t> first(s.captions.size(), -1);
  const auto cid = s.caption_id.accessor<int64_t, 1>();
  for (int64_t i = 0; i < s.size(); ++i) {
    if (first[static_cast<size_t>(cid[i])] < 0) first[static_cast<size_t>(cid[i])] = i;
  }
  const at::Tensor cap = tn.index_select(0, at::tensor(first, at::kLong));  // (C, E)
  const at::Tensor sim = at::matmul(in, cap.t());                            // (N, C)
  r.i2t_top1 = sim.argmax(1).eq(s.caption_id).to(at::kDouble).mean().item<double>();
  // text -> image: each distinct caption retrieves an image that carries it.
  const at::Tensor best = sim.argmax(0);  // (C,)
  r.t2i_top1 = s.caption_id.index_select(0, best).eq(at::arange(cap.size(0), at::kLong)).to(at::kDouble).mean().item<double>();
  const at::Tensor matched = (in * tn).sum(1).clamp_min(0) * 100;
  const at::Tensor shuffled = (in * tn.roll(s.size() / 2, 0)).sum(1).clamp_min(0) * 100;
  r.clip_score = matched.mean().item<double>();
  r.clip_score_shuffled = shuffled.mean().item<double>();
  return r;
}

class ClipTrainTask : public TrainTask {
 public:
  ClipTrainTask(models::ClipModel net, ClipSplit train, const ClipSplit& test, int64_t batch, int64_t seed)
      : net_(std::move(net)), train_(std::move(train)), test_(test), batch_(batch), seed_(seed) {}
  std::string name() const override { return "clip_contrastive"; }
  torch::nn::Module& model() override { return *net_; }

  TaskLoss loss(const MicroBatch& mb) override {
    // A permutation per (seed, step, micro): no image twice in a global batch; rank r takes its slice.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(batch_seed(seed_, mb));
    const int64_t global = std::min<int64_t>(batch_ * mb.world, train_.size());
    const int64_t per = global / mb.world;
    const at::Tensor idx = at::randperm(train_.size(), gen, at::kLong).narrow(0, per * mb.rank, per);
    const c10::Device dev = device_of(*net_);  // the batch is gathered on the CPU, then moved
    const at::Tensor img = net_->encode_image(train_.images.index_select(0, idx).to(dev));
    const at::Tensor txt = net_->encode_text(train_.tokens.index_select(0, idx).to(dev));
    const at::Tensor scale = net_->named_parameters()["logit_scale"];
    return {contrastive_loss(img, txt, train_.caption_id.index_select(0, idx).to(dev), scale),
            {{"logit_scale", std::exp(std::min(kMaxLogitScale, scale.item<double>()))}}};
  }

  Metrics validate() override {
    const SplitScores s = score_split(net_, test_, batch_);
    return {{"loss", s.loss}, {"i2t_top1", s.i2t_top1}, {"t2i_top1", s.t2i_top1}, {"clip_score", s.clip_score},
            {"clip_score_shuffled", s.clip_score_shuffled}};
  }

 private:
  models::ClipModel net_;
  ClipSplit train_;
  const ClipSplit& test_;
  int64_t batch_, seed_;
};

}  // namespace

nlohmann::json ClipTask::run(TaskContext& ctx) {
  auto& log = ctx.run.log();
  const std::string mdir = data.dir + "/" + std::to_string(data.size);
  const std::string train_path = path_in(mdir, data.train);
  rank0_first(ctx.dist, [&] {
    if (!fs::exists(train_path) && data.make_if_missing) {
      data::CorpusOptions co;
      co.out = data.dir, co.count = data.count, co.quiet = true;
      log.info("clip_contrastive: {}", data::make_corpus("images", co));
    }
  });
  if (!fs::exists(data.vocab)) {
    MMREF_FAIL("clip_contrastive: data.vocab '{}' does not exist (CLIP's bpe_simple_vocab_16e6.txt.gz; the golden "
               "fixtures carry one in clip/)", data.vocab);
  }
  const models::ClipTokenizer tok(data.vocab);
  data::ImageSplitOptions o;
  o.size = data.size, o.channels = 3;
  const std::string hint = fmt::format("make it with `mmref data make images --out {}`", data.dir);
  const int64_t ctxlen = model.context_length;
  ClipSplit tr = to_clip(data::load_image_split(train_path, o, hint), tok, data.size, ctxlen);
  const ClipSplit te = to_clip(data::load_image_split(path_in(mdir, data.test), o, hint), tok, data.size, ctxlen);
  ClipSplit ho;
  if (fs::exists(path_in(mdir, data.heldout))) ho = to_clip(data::load_image_split(path_in(mdir, data.heldout), o), tok, data.size, ctxlen);
  if (tr.size() < 2) MMREF_FAIL("clip_contrastive: '{}' has {} image(s); contrastive training needs at least 2", train_path, tr.size());

  models::ClipConfig cc;
  cc.embed_dim = model.embed_dim;
  cc.image_resolution = data.size;
  cc.vision_layers = model.vision_layers, cc.vision_width = model.vision_width, cc.vision_patch_size = model.patch_size;
  cc.context_length = ctxlen, cc.vocab_size = tok.vocab_size();
  cc.transformer_width = model.text_width, cc.transformer_heads = model.text_width / 64, cc.transformer_layers = model.text_layers;
  models::ClipModel net(cc);
  net->initialize_parameters();
  log.info("clip_contrastive: ViT {}x{} px / patch {} ({} layers, width {}), text {} layers, width {}, context {}, "
           "embed {}; {} train / {} test / {} held-out images ({} / {} / {} distinct captions); {} steps, batch {}",
           data.size, data.size, model.patch_size, model.vision_layers, model.vision_width, model.text_layers,
           model.text_width, ctxlen, model.embed_dim, tr.size(), te.size(), ho.size(), tr.captions.size(),
           te.captions.size(), ho.captions.size(), train.steps, train.batch_size);

  ClipTrainTask task(net, std::move(tr), te, train.batch_size, ctx.experiment.runtime.seed);
  Trainer trainer(train, ctx);
  const TrainResult r = trainer.fit(task);
  nlohmann::json s = trainer.summary(r, "clip_contrastive");
  if (train.ema_decay > 0) trainer.copy_ema_to(*net), s["evaluated_with"] = "ema";
  s["test"] = score_split(net, te, train.batch_size).to_json();
  if (ho.size() > 1) s["heldout"] = score_split(net, ho, train.batch_size).to_json();
  if (ctx.run.primary()) {
    // The OpenAI layout, nothing else: what `metric: clip_score` (weights) and ClipModel::load read.
    const std::string out = ctx.run.dir() + "/clip.safetensors";
    save_safetensors(out, module_state_dict(*net), {{"format", "openai-clip"}, {"vocab", data.vocab}});
    s["export"] = out;
    log.info("clip_contrastive: test i2t top-1 {:.1f}% over {} captions, clip_score {:.2f} matched / {:.2f} shuffled; "
             "wrote {}", 100 * s["test"]["i2t_top1"].get<double>(), te.captions.size(),
             s["test"]["clip_score"].get<double>(), s["test"]["clip_score_shuffled"].get<double>(), out);
  }
  return s;
}

}  // namespace mmref::train
