// Task diffusion_unet; see diffusion_task.h.
#include "train/diffusion_task.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
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
#include "data/dataset/image_split.h"
#include "data/dataset/manifest.h"
#include "data/generators/corpus.h"
#include "data/media/image_io.h"
#include "eval/result.h"
#include "eval/scene_check.h"
#include "kernels/dispatch.h"
#include "train/distributed.h"
#include "train/samples.h"

namespace mmref::train {

namespace stdfs = std::filesystem;

DiffusionNetImpl::DiffusionNetImpl(const diffusion::UNet2DConfig& u, const diffusion::TextEncoderConfig* t,
                                   const diffusion::ClipTextConfig* clip) {
  unet = register_module("unet", diffusion::UNet2DConditionModel(u));
  if (clip) {
    clip_text = register_module("text_encoder", diffusion::ClipTextAdapter(*clip));
    for (auto& p : clip_text->parameters()) p.requires_grad_(false);  // frozen, as in Stable Diffusion
  } else if (t) {
    text_encoder = register_module("text_encoder", diffusion::TextEncoder(*t));
  }
}

namespace {

void parse_section(config::Reader& r, DiffusionDataConfig& c) {
  r.choice("kind", c.kind, {"images", "digits"});
  r.opt("dir", c.dir);
  r.opt("size", c.size, config::Range::between(8, 1024));
  r.opt("train", c.train);
  r.opt("valid", c.valid);
  r.opt("test", c.test);
  r.opt("heldout", c.heldout);
  r.opt("make_if_missing", c.make_if_missing);
  r.opt("count", c.count, config::Range::between(10, 1e7));
  r.opt("seed", c.seed, config::Range::at_least(0));
  r.choice("conditioning", c.conditioning, {"text", "class", "none"});
  r.opt("cond_dropout", c.cond_dropout, config::Range::between(0, 1));
  r.opt("max_tokens", c.max_tokens, config::Range::between(1, 4096));
  r.opt("exclude_words", c.exclude_words);
  r.opt("include_words", c.include_words);
  r.opt("max_train", c.max_train, config::Range::at_least(0));
  r.opt("filter_eval", c.filter_eval);
  r.finish();
  if (c.kind == "digits" && c.conditioning == "text") {
    r.fail("conditioning", "the digits corpus has class labels: use conditioning: class (or none)");
  }
}

void parse_section(config::Reader& r, DiffusionObjectiveConfig& c) {
  r.choice("objective", c.objective, {"vp", "flow"});
  r.choice("prediction_type", c.prediction_type, {"epsilon", "v_prediction", "sample"});
  r.opt("num_train_timesteps", c.schedule.num_train_timesteps, config::Range::between(2, 1e6));
  r.choice("beta_schedule", c.schedule.beta_schedule, {"linear", "scaled_linear", "squaredcos_cap_v2"});
  r.opt("beta_start", c.schedule.beta_start, config::Range::positive());
  r.opt("beta_end", c.schedule.beta_end, config::Range::positive());
  r.opt("rescale_betas_zero_snr", c.schedule.rescale_betas_zero_snr);
  r.opt("min_snr_gamma", c.min_snr_gamma, config::Range::at_least(0));
  r.choice("flow_timesteps", c.flow.kind, {"logit_normal", "uniform"});
  r.opt("flow_logit_mean", c.flow.logit_mean);
  r.opt("flow_logit_std", c.flow.logit_std, config::Range::positive());
  r.opt("flow_shift", c.flow.shift, config::Range::positive());
  r.finish();
  c.schedule.validate();
}

void parse_section(config::Reader& r, DiffusionSampleConfig& c, const DiffusionObjectiveConfig& obj) {
  // The sampler's schedule and prediction type default to the training ones (a sampler map may still
  // override them, e.g. to sample with another spacing).
  c.sampler.schedule = obj.schedule;
  c.sampler.prediction_type = obj.prediction_type;
  c.sampler.name = obj.objective == "flow" ? "flow_euler" : "dpmpp_2m";
  c.sampler.num_inference_steps = 25;
  // leading + offset 1 (first t = T - T/n + 1): with the cosine schedule abar(T-1) ~ 1e-8, and starting an
  // epsilon model at t = T-1 amplifies its error ~1e4x into x0 (measured: trailing gives noise).
  c.sampler.timestep_spacing = "leading";
  c.sampler.steps_offset = 1;
  if (obj.objective == "flow") c.sampler.shift = obj.flow.shift;
  {
    auto s = r.child("sampler");
    diffusion::parse(s, c.sampler);
  }
  r.opt("cfg", c.cfg, config::Range::between(0, 100));
  int64_t seed = static_cast<int64_t>(c.seed);
  r.opt("seed", seed, config::Range::at_least(0));
  c.seed = static_cast<uint64_t>(seed);
  r.opt("count", c.count, config::Range::between(1, 4096));
  r.opt("val_count", c.val_count, config::Range::between(0, 100000));
  r.opt("final_count", c.final_count, config::Range::between(0, 1000000));
  r.opt("batch_size", c.batch_size, config::Range::between(1, 4096));
  r.finish();
  const bool flow_sampler = c.sampler.name.rfind("flow_", 0) == 0;
  if (flow_sampler != (obj.objective == "flow")) {
    r.fail("sampler", fmt::format("sampler '{}' does not fit the '{}' objective (vp: ddpm, ddim, euler, euler_a, heun, "
                                  "dpmpp_2m; flow: flow_euler, flow_heun)",
                                  c.sampler.name, obj.objective));
  }
}

// The folder holding the manifests: the images corpus has one per size.
std::string manifest_dir(const DiffusionDataConfig& d) {
  return d.kind == "images" ? d.dir + "/" + std::to_string(d.size) : d.dir;
}

bool has_word(const std::string& text, const std::vector<std::string>& words) {
  for (const auto& w : words) {
    if (std::regex_search(text, std::regex("\\b" + w + "s?\\b"))) return true;
  }
  return false;
}

using data::ImageSplit;

ImageSplit load_split(const DiffusionDataConfig& d, const std::string& file, int64_t channels, bool filter, int64_t limit) {
  data::ImageSplitOptions o;
  o.size = d.size, o.channels = channels, o.limit = limit;
  if (filter && (!d.exclude_words.empty() || !d.include_words.empty())) {
    o.keep = [&d](const std::string& text) {
      if (!d.exclude_words.empty() && has_word(text, d.exclude_words)) return false;
      return d.include_words.empty() || has_word(text, d.include_words);
    };
  }
  return data::load_image_split(path_in(manifest_dir(d), file), o,
                                fmt::format("make it with `mmref data make {} --out {}`, or set data.make_if_missing: true",
                                            d.kind, d.dir));
}

at::Generator make_gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// The conditioning tensors of a batch: encoder states + UNet key mask (text), or class labels. Rows in
// `null_rows` (or every row when `uncond`) get the null condition: zero encoder states with one kept key,
// or the null class num_classes.
struct CondTensors {
  at::Tensor ehs, mask, labels;
};

CondTensors condition(DiffusionNet& net, const DiffusionModelSpec& spec, const diffusion::TextVocab* vocab,
                      const DiffusionCondition& c, int64_t b, const at::Tensor& null_rows) {
  CondTensors t;
  const c10::Device dev = device_of(*net);  // tokens, masks and labels go where the model is
  const at::Tensor nulls = null_rows.defined() ? null_rows.to(dev) : null_rows;
  if (spec.data.conditioning == "text" && net->clip_text) {
    // Stable Diffusion's conditioning: the tower's states over the whole zero-padded context, no key mask;
    // the null condition is the empty caption's states.
    std::vector<std::string> texts = c.texts;
    if (null_rows.defined()) {
      const at::Tensor nr = null_rows.to(at::kCPU, at::kBool).contiguous();
      const bool* np = nr.data_ptr<bool>();
      for (int64_t i = 0; i < b; ++i) {
        if (np[i]) texts[static_cast<size_t>(i)].clear();
      }
    }
    const at::Tensor ids = net->clip_tokenizer->tokenize(texts, net->clip_context, /*truncate=*/true);
    t.ehs = net->clip_text->forward(ids.to(dev));  // (B, context, width)
  } else if (spec.data.conditioning == "text") {
    const diffusion::TokenBatch tb = vocab->encode_batch(c.texts, spec.data.max_tokens);
    at::Tensor mask = tb.mask.to(dev);
    at::Tensor enc = net->text_encoder->forward(tb.ids.to(dev), mask);  // (B, L, D), zeros at padding
    mask = mask.clone();
    mask.select(1, 0).fill_(true);  // an empty caption still has one (zero) key
    if (nulls.defined()) {
      enc = enc * nulls.logical_not().to(enc.dtype()).view({b, 1, 1});
      at::Tensor null_mask = at::zeros_like(mask);
      null_mask.select(1, 0).fill_(true);
      mask = at::where(nulls.view({b, 1}), null_mask, mask);
    }
    t.ehs = enc, t.mask = mask;
  } else if (spec.data.conditioning == "class") {
    at::Tensor labels = at::tensor(c.labels, at::kLong).to(dev);
    if (nulls.defined()) labels = at::where(nulls, at::full_like(labels, spec.num_classes), labels);
    t.labels = labels;
  }
  return t;
}

at::Tensor unet_forward(DiffusionNet& net, const at::Tensor& x, const at::Tensor& t, const CondTensors& c) {
  return net->unet->forward(x, t, c.ehs, c.mask, c.labels);
}

// Fixed validation batch: the first images of the split, evenly spread timesteps, seeded noise.
double validation_loss(DiffusionNet& net, const DiffusionModelSpec& spec, const diffusion::TextVocab* vocab,
                       const ImageSplit& v, int64_t n) {
  n = std::min(n, v.size());
  const c10::Device dev = device_of(*net);
  const at::Tensor x0_cpu = v.pixels.narrow(0, 0, n).to(at::kFloat).div(127.5).sub(1.0);
  auto gen = make_gen(12345);
  const at::Tensor noise = at::randn(x0_cpu.sizes(), gen, at::kFloat).to(dev);  // drawn on the CPU: same on any device
  const at::Tensor x0 = x0_cpu.to(dev);
  DiffusionCondition c;
  for (int64_t i = 0; i < n; ++i) {
    if (spec.data.conditioning == "text") c.texts.push_back(v.texts[static_cast<size_t>(i)]);
    if (spec.data.conditioning == "class") c.labels.push_back(v.labels[static_cast<size_t>(i)]);
  }
  const CondTensors ct = condition(net, spec, vocab, c, n, {});
  const int64_t T = spec.objective.schedule.num_train_timesteps;
  if (spec.objective.objective == "flow") {
    const at::Tensor s = at::linspace(0.02, 0.98, n, at::kFloat).to(dev);
    const at::Tensor xs = diffusion::flow_add_noise(x0, noise, s);
    const at::Tensor v_pred = unet_forward(net, xs, s * static_cast<double>(T), ct);
    return at::mse_loss(v_pred, diffusion::flow_velocity_target(x0, noise)).item<double>();
  }
  const diffusion::NoiseSchedule sched(spec.objective.schedule);
  const at::Tensor t = at::linspace(0, static_cast<double>(T - 1), n, at::kFloat).round().to(dev, at::kLong);
  const auto pt = diffusion::parse_prediction_type(spec.objective.prediction_type);
  const at::Tensor xt = sched.add_noise(x0, noise, t);
  const at::Tensor pred = unet_forward(net, xt, t.to(at::kFloat), ct);
  return at::mse_loss(pred, sched.training_target(pt, x0, noise, t)).item<double>();
}

struct SceneRates {
  double all = 0, colour = 0, count = 0, shape = 0, size = 0, position = 0;
  int64_t n = 0;
  std::vector<bool> per_image;
};

SceneRates scene_rates(const at::Tensor& images, const std::vector<std::string>& captions) {
  SceneRates r;
  r.n = images.size(0);
  for (int64_t i = 0; i < r.n; ++i) {
    const auto ck = eval::check_scene(images[i], eval::parse_scene_caption(captions[static_cast<size_t>(i)]));
    r.all += ck.all(), r.colour += ck.colour, r.count += ck.count, r.shape += ck.shape, r.size += ck.size;
    r.position += ck.position;
    r.per_image.push_back(ck.all());
  }
  for (double* v : {&r.all, &r.colour, &r.count, &r.shape, &r.size, &r.position}) *v /= std::max<int64_t>(1, r.n);
  return r;
}

// (N, C, S, S) -> one (C, rows*S, cols*S) grid with a 1-pixel gap.
at::Tensor make_grid(const at::Tensor& imgs, int64_t cols) {
  const int64_t n = imgs.size(0), c = imgs.size(1), s = imgs.size(2);
  const int64_t rows = (n + cols - 1) / cols;
  at::Tensor g = at::zeros({c, rows * (s + 1) + 1, cols * (s + 1) + 1}, imgs.options());
  for (int64_t i = 0; i < n; ++i) {
    g.narrow(1, 1 + (i / cols) * (s + 1), s).narrow(2, 1 + (i % cols) * (s + 1), s).copy_(imgs[i]);
  }
  return g;
}

class DiffusionTrainTask : public TrainTask {
 public:
  DiffusionTrainTask(DiffusionNet net, const DiffusionModelSpec& spec, const DiffusionSampleConfig& sc,
                     std::shared_ptr<const diffusion::TextVocab> vocab, ImageSplit train, const ImageSplit& valid,
                     std::vector<std::string> grid_texts, std::vector<int64_t> grid_labels, int64_t seed, int64_t batch)
      : net_(std::move(net)), spec_(spec), sc_(sc), vocab_(std::move(vocab)), train_(std::move(train)), valid_(valid),
        grid_texts_(std::move(grid_texts)), grid_labels_(std::move(grid_labels)), seed_(seed), batch_(batch),
        sched_(spec.objective.schedule), pred_(diffusion::parse_prediction_type(spec.objective.prediction_type)) {}

  std::string name() const override { return "diffusion_unet"; }
  torch::nn::Module& model() override { return *net_; }

  TaskLoss loss(const MicroBatch& mb) override {
    // The batch is a pure function of (seed, step, micro, rank): exact resume needs no loader state.
    auto gen = make_gen(static_cast<uint64_t>(seed_) * 1000003ULL + static_cast<uint64_t>(mb.step) * 7919ULL +
                        static_cast<uint64_t>(mb.micro) * 131ULL + static_cast<uint64_t>(mb.rank) * 17ULL);
    const int64_t b = batch_;
    // Everything random is drawn on the CPU from the batch's generator (the same batch on any device),
    // then moved to the model's device.
    const c10::Device dev = device_of(*net_);
    const at::Tensor idx = at::randint(train_.size(), {b}, gen, at::kLong);
    const at::Tensor x0_cpu = train_.pixels.index_select(0, idx).to(at::kFloat).div(127.5).sub(1.0);
    const at::Tensor noise = at::randn(x0_cpu.sizes(), gen, at::kFloat).to(dev);
    const at::Tensor x0 = x0_cpu.to(dev);
    const at::Tensor drop = at::rand({b}, gen, at::kFloat).lt(spec_.data.cond_dropout);
    DiffusionCondition c;
    const int64_t* ip = idx.data_ptr<int64_t>();
    for (int64_t i = 0; i < b; ++i) {
      if (spec_.data.conditioning == "text") c.texts.push_back(train_.texts[static_cast<size_t>(ip[i])]);
      if (spec_.data.conditioning == "class") c.labels.push_back(train_.labels[static_cast<size_t>(ip[i])]);
    }
    const CondTensors ct = condition(net_, spec_, vocab_.get(), c, b, spec_.data.conditioning == "none" ? at::Tensor() : drop);
    const int64_t T = spec_.objective.schedule.num_train_timesteps;
    at::Tensor per_sample;
    if (spec_.objective.objective == "flow") {
      const at::Tensor s = diffusion::sample_flow_sigmas(b, spec_.objective.flow, gen).to(dev);
      const at::Tensor xs = diffusion::flow_add_noise(x0, noise, s);
      const at::Tensor v = unet_forward(net_, xs, s * static_cast<double>(T), ct);
      per_sample = (v - diffusion::flow_velocity_target(x0, noise)).pow(2).mean({1, 2, 3});
    } else {
      const at::Tensor t = sched_.sample_timesteps(b, gen).to(dev);
      const at::Tensor xt = sched_.add_noise(x0, noise, t);
      const at::Tensor pred = unet_forward(net_, xt, t.to(at::kFloat), ct);
      per_sample = (pred - sched_.training_target(pred_, x0, noise, t)).pow(2).mean({1, 2, 3});
      if (spec_.objective.min_snr_gamma > 0) {
        per_sample = per_sample * sched_.min_snr_weights(t, spec_.objective.min_snr_gamma, pred_);
      }
    }
    return {per_sample.mean(), {{"images", static_cast<double>(b)}}};
  }

  Metrics validate() override {
    Metrics m{{"loss", validation_loss(net_, spec_, vocab_.get(), valid_, 64)}};
    if (spec_.data.kind == "images" && spec_.data.conditioning == "text" && sc_.val_count > 0) {
      const int64_t n = std::min<int64_t>(sc_.val_count, valid_.size());
      DiffusionCondition c;
      c.texts.assign(valid_.texts.begin(), valid_.texts.begin() + n);
      const at::Tensor imgs = generate_images(net_, spec_, vocab_.get(), c, n, sc_);
      const SceneRates r = scene_rates(imgs, c.texts);
      m.emplace_back("scene_all", r.all);
      m.emplace_back("scene_colour", r.colour);
      m.emplace_back("scene_shape", r.shape);
      m.emplace_back("scene_position", r.position);
    }
    return m;
  }

  bool makes_samples() const override { return true; }
  void sample(SampleWriter& out) override {
    DiffusionCondition c;
    c.texts = grid_texts_, c.labels = grid_labels_;
    const int64_t n = spec_.data.conditioning == "text"    ? static_cast<int64_t>(c.texts.size())
                      : spec_.data.conditioning == "class" ? static_cast<int64_t>(c.labels.size())
                                                           : sc_.count;
    const at::Tensor imgs = generate_images(net_, spec_, vocab_.get(), c, n, sc_);
    out.image("grid", make_grid(imgs, 4));
    std::string txt;
    for (const auto& t : c.texts) txt += t + "\n";
    for (const auto l : c.labels) txt += std::to_string(l) + "\n";
    if (!txt.empty()) fs::atomic_write(out.dir() + "/grid_prompts.txt", txt);
  }

 private:
  DiffusionNet net_;
  const DiffusionModelSpec& spec_;
  const DiffusionSampleConfig& sc_;
  std::shared_ptr<const diffusion::TextVocab> vocab_;
  ImageSplit train_;
  const ImageSplit& valid_;
  std::vector<std::string> grid_texts_;
  std::vector<int64_t> grid_labels_;
  int64_t seed_, batch_;
  diffusion::NoiseSchedule sched_;
  diffusion::PredictionType pred_;
};

// Final samples of one split: PNGs + captions.jsonl, and the scene-check rates (shapes corpus).
nlohmann::json final_samples(DiffusionNet& net, const DiffusionModelSpec& spec, const DiffusionSampleConfig& sc,
                             const diffusion::TextVocab* vocab, const ImageSplit& split, const std::string& dir,
                             spdlog::logger& log, const std::string& what) {
  const int64_t n = std::min<int64_t>(sc.final_count, split.size());
  DiffusionCondition c;
  if (spec.data.conditioning == "text") c.texts.assign(split.texts.begin(), split.texts.begin() + n);
  if (spec.data.conditioning == "class") c.labels.assign(split.labels.begin(), split.labels.begin() + n);
  const at::Tensor imgs = generate_images(net, spec, vocab, c, n, sc);
  fs::make_dirs(dir);
  std::string jl;
  for (int64_t i = 0; i < n; ++i) {
    const std::string f = fmt::format("{}/{:05d}.png", dir, i);
    data::save_image(f, imgs[i]);
    nlohmann::json j{{"path", f}, {"text", split.texts[static_cast<size_t>(i)]}};
    jl += j.dump() + "\n";
  }
  fs::atomic_write(dir + "/captions.jsonl", jl);
  data::save_image(dir + "_grid.png", make_grid(imgs.narrow(0, 0, std::min<int64_t>(n, 64)), 8));
  // The same split's real images at the training resolution, with the same captions: the reference
  // set for FID / digits_fid that went through the model's own resize.
  const std::string real_dir = dir + "_real";
  fs::make_dirs(real_dir);
  std::string rl;
  for (int64_t i = 0; i < n; ++i) {
    const std::string f = fmt::format("{}/{:05d}.png", real_dir, i);
    data::save_image(f, split.pixels[i]);
    rl += nlohmann::json{{"path", f}, {"text", split.texts[static_cast<size_t>(i)]}}.dump() + "\n";
  }
  fs::atomic_write(real_dir + "/captions.jsonl", rl);
  nlohmann::json s{{"samples", n}, {"dir", dir}, {"real_dir", real_dir}};
  if (spec.data.kind == "images" && spec.data.conditioning == "text") {
    const SceneRates g = scene_rates(imgs, c.texts);
    const SceneRates real = scene_rates(split.pixels.narrow(0, 0, n), c.texts);
    const auto ci = eval::bootstrap_ci(n, [&](const std::vector<int64_t>& idx) {
      double a = 0;
      for (const auto k : idx) a += g.per_image[static_cast<size_t>(k)];
      return a / static_cast<double>(idx.size());
    });
    s["scene_all"] = g.all, s["scene_all_ci95"] = {ci.low, ci.high};
    s["scene_colour"] = g.colour, s["scene_count"] = g.count, s["scene_shape"] = g.shape, s["scene_size"] = g.size;
    s["scene_position"] = g.position;
    s["real_scene_all"] = real.all;
    log.info("diffusion: {} samples ({}): scene checks all {:.1f}% [{:.1f}, {:.1f}] (colour {:.1f}%, count {:.1f}%, "
             "shape {:.1f}%, size {:.1f}%, position {:.1f}%); real images {:.1f}%",
             what, n, 100 * g.all, 100 * ci.low, 100 * ci.high, 100 * g.colour, 100 * g.count, 100 * g.shape,
             100 * g.size, 100 * g.position, 100 * real.all);
  }
  return s;
}

std::shared_ptr<diffusion::TextVocab> caption_vocab(const DiffusionDataConfig& d) {
  // Every caption of the corpus (all splits): a concept held out of training still has its token, so
  // LoRA fine-tuning on it later needs no new embedding rows.
  std::vector<std::string> texts;
  for (const auto& f : {d.train, d.test, d.heldout}) {
    const std::string p = path_in(manifest_dir(d), f);
    if (!fs::exists(p)) continue;
    for (const auto& e : data::read_manifest(p)) texts.push_back(e.text);
  }
  return std::make_shared<diffusion::TextVocab>(diffusion::TextVocab::build(texts, diffusion::TextVocab::Level::kWord));
}

// Fills the UNet's data-dependent fields the config left at the preset's values.
void fit_to_data(DiffusionModelSpec& s) {
  const int64_t ch = s.data.kind == "digits" ? 1 : 3;
  s.unet.in_channels = ch, s.unet.out_channels = ch;
  if (s.data.kind == "digits") s.num_classes = 10;
  if (s.data.conditioning == "text" && s.clip_text) {
    // cross_attention_dim comes from the tower's width (resolve_clip_text), once its weights are known.
  } else if (s.data.conditioning == "text") {
    if (s.unet.cross_attention_dim <= 0) MMREF_FAIL("model.cross_attention_dim: text conditioning needs > 0");
    s.text.width = s.unet.cross_attention_dim;
    s.text.max_length = std::max(s.text.max_length, s.data.max_tokens);
  } else {
    s.unet.cross_attention_dim = 0;
  }
  s.unet.num_class_embeds = s.data.conditioning == "class" ? s.num_classes + 1 : 0;  // + the null class
  if (s.data.conditioning == "class" && s.num_classes == 0) {
    MMREF_FAIL("data.conditioning: class needs a labelled corpus (kind: digits)");
  }
  if (!s.clip_text) s.unet.validate();
}

// text_encoder.kind: clip: the tower's sizes from its OpenAI-named text weights; the UNet cross-attends
// to its width.
void resolve_clip_text(DiffusionModelSpec& s, const std::map<std::string, at::Tensor>& openai_text) {
  s.clip.config = diffusion::ClipTextConfig::infer(openai_text, s.clip.heads);
  if (s.clip.context > s.clip.config.context_length) {
    throw ConfigError(fmt::format("text_encoder.context: {} is longer than the CLIP tower's context_length {}",
                                  s.clip.context, s.clip.config.context_length));
  }
  if (s.clip.config.width % s.clip.config.heads != 0) {
    throw ConfigError(fmt::format("text_encoder.heads: {} does not divide the CLIP tower's width {}",
                                  s.clip.config.heads, s.clip.config.width));
  }
  s.unet.cross_attention_dim = s.clip.config.width;
  s.unet.validate();
}

int64_t clip_context(const DiffusionModelSpec& s) {
  return s.clip.context > 0 ? s.clip.context : s.clip.config.context_length;
}

}  // namespace

void parse_diffusion_sections(config::Reader& root, DiffusionModelSpec& spec, DiffusionSampleConfig& sample) {
  {
    auto r = root.child("data");
    parse_section(r, spec.data);
  }
  {
    auto r = root.child("model");
    if (!r.has("preset") && !r.has("block_out_channels")) {
      spec.unet = diffusion::unet2d_preset(spec.data.conditioning == "class" ? "tiny_class" : "tiny");
    }
    diffusion::parse(r, spec.unet);
  }
  {
    auto r = root.child("text_encoder");
    std::string kind = "transformer";
    r.choice("kind", kind, {"transformer", "clip"});
    spec.clip_text = kind == "clip";
    if (spec.clip_text) {
      r.req("weights", spec.clip.weights);
      r.req("vocab", spec.clip.vocab);
      r.opt("heads", spec.clip.heads, config::Range::at_least(0));
      r.opt("context", spec.clip.context, config::Range::at_least(0));
      r.finish();
      if (spec.data.conditioning != "text") r.fail("kind", "the CLIP text tower needs data.conditioning: text");
    } else {
      diffusion::parse(r, spec.text);
    }
  }
  {
    auto r = root.child("diffusion");
    parse_section(r, spec.objective);
  }
  {
    auto r = root.child("sample");
    parse_section(r, sample, spec.objective);
  }
  fit_to_data(spec);
}

void DiffusionUnetTask::parse(config::Reader& root) {
  parse_diffusion_sections(root, spec, sample);
  {
    auto r = root.child("train");
    train::parse(r, train);
  }
  {
    auto r = root.child("finetune");
    r.opt("base", finetune_base);
    r.opt("lora_r", lora.r, config::Range::between(0, 1 << 16));
    r.opt("lora_alpha", lora.alpha, config::Range::positive());
    r.opt("lora_dropout", lora.dropout, config::Range::between(0, 0.99));
    r.opt("target_modules", lora.target_modules);
    r.finish();
  }
}

at::Tensor generate_images(DiffusionNet& net, const DiffusionModelSpec& spec, const diffusion::TextVocab* vocab,
                           const DiffusionCondition& cond, int64_t n, const DiffusionSampleConfig& sc,
                           const DiffusionInit* init) {
  torch::NoGradGuard ng;
  const bool was_training = net->is_training();
  net->eval();
  auto gen = make_gen(sc.seed);
  const c10::Device dev = device_of(*net);
  const int64_t ch = spec.unet.in_channels, s = spec.data.size;
  std::vector<at::Tensor> out;
  const bool conditioned = spec.data.conditioning != "none";
  const bool guided = conditioned && sc.cfg != 1.0;
  for (int64_t b0 = 0; b0 < n; b0 += sc.batch_size) {
    const int64_t b = std::min(sc.batch_size, n - b0);
    DiffusionCondition c;
    if (spec.data.conditioning == "text") c.texts.assign(cond.texts.begin() + b0, cond.texts.begin() + b0 + b);
    if (spec.data.conditioning == "class") c.labels.assign(cond.labels.begin() + b0, cond.labels.begin() + b0 + b);
    auto sampler = diffusion::make_sampler(sc.sampler);
    // Initial noise from the CPU generator (the same samples on any device), on the model's device.
    const at::Tensor noise0 = at::randn({b, ch, s, s}, gen, at::kFloat).to(dev);
    at::Tensor xT = sampler->prepare_latents(noise0);
    diffusion::SampleOptions so;
    so.generator = gen;
    diffusion::InpaintMask im;
    if (init != nullptr) {
      const at::Tensor known = init->image.to(dev, at::kFloat).mul(2.0).sub(1.0).unsqueeze(0).expand({b, ch, s, s}).contiguous();
      if (init->strength < 1.0) {
        so.start_step = diffusion::img2img_start_step(sampler->num_inference_steps(), init->strength);
        xT = diffusion::img2img_latents(*sampler, known, noise0, so.start_step);
      }
      if (init->mask.defined()) {
        im.known = known;
        im.mask = init->mask.to(dev, at::kFloat).unsqueeze(0).expand({b, 1, s, s}).contiguous();
        so.inpaint = &im;
      }
    }
    diffusion::Denoiser den;
    if (guided) {
      // Rows 0..b-1 unconditional, b..2b-1 conditional, in one forward.
      DiffusionCondition c2;
      if (!c.texts.empty()) c2.texts.insert(c2.texts.end(), c.texts.begin(), c.texts.end());
      c2.texts.insert(c2.texts.end(), c.texts.begin(), c.texts.end());
      c2.labels.insert(c2.labels.end(), c.labels.begin(), c.labels.end());
      c2.labels.insert(c2.labels.end(), c.labels.begin(), c.labels.end());
      at::Tensor null_rows = at::cat({at::ones({b}, at::kBool), at::zeros({b}, at::kBool)});
      const CondTensors ct = condition(net, spec, vocab, c2, 2 * b, null_rows);
      den = diffusion::cfg_denoiser([&net, ct](const at::Tensor& x, const at::Tensor& t) { return unet_forward(net, x, t, ct); },
                                    sc.cfg);
    } else {
      const CondTensors ct = condition(net, spec, vocab, c, b, {});
      den = [&net, ct](const at::Tensor& x, const at::Tensor& t) { return unet_forward(net, x, t, ct); };
    }
    const at::Tensor x = sampler->sample(den, xT, so);
    out.push_back(x.add(1.0).div(2.0).clamp(0.0, 1.0).to(at::kCPU, at::kFloat));
  }
  if (was_training) net->train();
  return out.empty() ? at::empty({0, ch, s, s}) : at::cat(out);
}

DiffusionInit load_diffusion_init(const DiffusionModelSpec& spec, const std::string& image_path,
                                  const std::string& mask_path, double strength) {
  if (!(strength > 0.0 && strength <= 1.0)) {
    throw UsageError(fmt::format("--strength {}: must be in (0, 1] (the fraction of the schedule run from the init image)", strength));
  }
  const int64_t ch = spec.unet.in_channels, s = spec.data.size;
  // (C, H, W) float [0, 1] -> (C, s, s): area averaging when shrinking, bilinear when enlarging.
  auto fit = [s](const at::Tensor& img) {
    at::Tensor x = img.unsqueeze(0);
    if (x.size(2) == s && x.size(3) == s) return img;
    x = (x.size(2) >= s && x.size(3) >= s) ? at::adaptive_avg_pool2d(x, {s, s})
                                           : at::upsample_bilinear2d(x, {s, s}, /*align_corners=*/false);
    return x.squeeze(0).clamp(0.0, 1.0);
  };
  DiffusionInit in;
  in.strength = strength;
  at::Tensor img = fit(data::load_image(image_path, /*to_float=*/true));  // (3, s, s)
  in.image = ch == 1 ? img.mean(0, true) : img;
  if (!mask_path.empty()) {
    const at::Tensor m = fit(data::load_image(mask_path, /*to_float=*/true)).mean(0, true);  // (1, s, s)
    in.mask = m.gt(0.5).to(at::kFloat);
    if (in.mask.sum().item<double>() == 0) {
      throw UsageError(fmt::format("--mask '{}': no white pixel (white = regenerate), so nothing would be inpainted", mask_path));
    }
  }
  return in;
}

nlohmann::json DiffusionUnetTask::run(TaskContext& ctx) {
  auto& log = ctx.run.log();
  DiffusionDataConfig& d = spec.data;
  if (spec.clip_text) {  // before any corpus is made
    if (!fs::exists(spec.clip.weights)) {
      throw ConfigError(fmt::format("text_encoder.weights: '{}' does not exist (a CLIP file with OpenAI or Hugging "
                                    "Face names, e.g. the clip_contrastive task's <run>/clip.safetensors)",
                                    spec.clip.weights));
    }
    if (!fs::exists(spec.clip.vocab)) {
      throw ConfigError(fmt::format("text_encoder.vocab: '{}' does not exist (CLIP's bpe_simple_vocab_16e6.txt.gz)",
                                    spec.clip.vocab));
    }
  }
  const std::string train_path = path_in(manifest_dir(d), d.train);
  rank0_first(ctx.dist, [&] {
    if (!fs::exists(train_path) && d.make_if_missing) {
      log.info("diffusion: no {}; making the {} corpus in {}", train_path, d.kind, d.dir);
      data::CorpusOptions co;
      co.out = d.dir, co.count = d.kind == "images" ? d.count : 0, co.seed = static_cast<uint64_t>(d.seed);
      co.quiet = true;
      log.info("diffusion: {}", data::make_corpus(d.kind, co));
    }
  });
  const int64_t ch = spec.unet.in_channels;
  ImageSplit train_set = load_split(d, d.train, ch, /*filter=*/true, d.max_train);
  const ImageSplit valid = load_split(d, d.valid, ch, d.filter_eval, 0);
  const ImageSplit test = load_split(d, d.test, ch, d.filter_eval, 0);
  ImageSplit heldout;
  if (d.kind == "images" && fs::exists(path_in(manifest_dir(d), d.heldout))) heldout = load_split(d, d.heldout, ch, false, 0);

  // Caption vocabulary: the base run's (fine-tuning), this run's (resume), or built from the corpus.
  std::shared_ptr<diffusion::TextVocab> vocab;
  std::map<std::string, at::Tensor> clip_weights;  // the CLIP tower's OpenAI-named text weights
  if (spec.clip_text) {
    try {
      clip_weights = diffusion::clip_text_state_dict(load_weights(spec.clip.weights));
    } catch (const Error& e) {
      MMREF_FAIL("text_encoder.weights '{}': {}", spec.clip.weights, e.what());
    }
    resolve_clip_text(spec, clip_weights);
    if (ctx.run.primary() && !ctx.run.dir().empty()) fs::atomic_write(ctx.run.dir() + "/clip_vocab.txt.gz", fs::read_file(spec.clip.vocab));
  } else if (d.conditioning == "text") {
    const std::string own = ctx.run.dir() + "/vocab.json";
    const std::string base = finetune_base.empty() ? "" : stdfs::path(finetune_base).parent_path().parent_path().string() + "/vocab.json";
    if (!base.empty()) {
      if (!fs::exists(finetune_base))
        MMREF_FAIL("finetune.base: '{}' does not exist (give a ckpt-*.safetensors of a diffusion_unet run)", finetune_base);
      if (!fs::exists(base)) MMREF_FAIL("finetune.base: no vocab.json in the base run ({})", base);
      vocab = std::make_shared<diffusion::TextVocab>(diffusion::TextVocab::load_json(base));
    } else if (!ctx.run.dir().empty() && fs::exists(own)) {
      vocab = std::make_shared<diffusion::TextVocab>(diffusion::TextVocab::load_json(own));
    } else {
      vocab = caption_vocab(d);
    }
    if (ctx.run.primary()) vocab->save_json(own);
    spec.text.vocab_size = vocab->size();
  }
  DiffusionNet net(spec.unet, d.conditioning == "text" ? &spec.text : nullptr,
                   spec.clip_text ? &spec.clip.config : nullptr);
  if (spec.clip_text) {
    net->clip_text->load(clip_weights);
    net->clip_tokenizer = std::make_shared<models::ClipTokenizer>(spec.clip.vocab);
    net->clip_context = clip_context(spec);
    log.info("diffusion: frozen CLIP text tower from {} (width {}, {} layers, context {})", spec.clip.weights,
             spec.clip.config.width, spec.clip.config.layers, net->clip_context);
  }
  const auto ab = kernels::parse_attention_backend(ctx.experiment.kernels.attention);
  const auto gb = kernels::parse_conv_backend(ctx.experiment.kernels.group_norm_silu);
  net->unet->set_backends(ab, gb);
  if (net->text_encoder) net->text_encoder->attention_backend = ab;
  if (net->clip_text) net->clip_text->attention_backend = ab;
  if (!finetune_base.empty() && ctx.resume_from.empty()) {
    const Checkpoint ck = load_checkpoint(finetune_base);
    // The base's EMA weights when it has them (what it samples with), else its raw weights.
    const bool ema = std::any_of(ck.tensors.begin(), ck.tensors.end(), [](const auto& kv) { return kv.first.rfind("ema.", 0) == 0; });
    ck.load_module(ema ? "ema" : "model", *net);
    log.info("finetune: base weights ({}) from {}", ema ? "EMA" : "raw", finetune_base);
  }
  if (lora.r > 0) {
    const auto adapted = models::apply_lora(*net, lora);
    if (adapted.empty()) throw ConfigError(fmt::format("finetune.target_modules: '{}' matches no layer", lora.target_modules));
    log.info("finetune: LoRA r {} on {} layers", lora.r, adapted.size());
  }
  int64_t params = 0, trainable = 0;
  for (const auto& p : net->parameters()) params += p.numel(), trainable += p.requires_grad() ? p.numel() : 0;
  log.info("diffusion: UNet {} levels {} + {}, {:.2f}M parameters ({:.2f}M trained); {} train / {} valid / {} test{} images at {} px",
           spec.unet.levels(), fmt::format("{}", fmt::join(spec.unet.block_out_channels, "/")),
           spec.clip_text ? "CLIP text tower" : d.conditioning == "text" ? "text encoder" : d.conditioning, params / 1e6,
           trainable / 1e6, train_set.size(), valid.size(),
           test.size(), heldout.size() ? fmt::format(" / {} held-out", heldout.size()) : "", d.size);

  // The grid: half test, half held-out captions (text), the digits 0..9 and more (class).
  std::vector<std::string> grid_texts;
  std::vector<int64_t> grid_labels;
  if (d.conditioning == "text") {
    for (int64_t i = 0; i < sample.count; ++i) {
      const ImageSplit& src = (heldout.size() && i % 2 == 1) ? heldout : test;
      grid_texts.push_back(src.texts[static_cast<size_t>((i / 2) % src.size())]);
    }
  } else if (d.conditioning == "class") {
    for (int64_t i = 0; i < sample.count; ++i) grid_labels.push_back(i % spec.num_classes);
  }
  DiffusionTrainTask task(net, spec, sample, vocab, std::move(train_set), valid, grid_texts, grid_labels,
                          ctx.experiment.runtime.seed, train.batch_size);
  Trainer trainer(train, ctx);
  const TrainResult r = trainer.fit(task);

  nlohmann::json s = trainer.summary(r, "diffusion_unet");
  s["sampler"] = sample.sampler.name, s["sampler_steps"] = sample.sampler.num_inference_steps, s["cfg"] = sample.cfg;
  if (ctx.run.primary()) {
    if (train.ema_decay > 0) trainer.copy_ema_to(*net), s["sampled_with"] = "ema";
    net->eval();
    if (sample.final_count > 0) {
      s["final_test"] = final_samples(net, spec, sample, vocab.get(), test, ctx.run.dir() + "/final_samples/test", log, "test");
      if (heldout.size()) {
        s["final_heldout"] = final_samples(net, spec, sample, vocab.get(), heldout,
                                           ctx.run.dir() + "/final_samples/heldout", log, "held-out");
      }
    }
    if (lora.r > 0) {
      models::save_lora_adapter(*net, lora, ctx.run.dir() + "/adapter");
      s["adapter"] = ctx.run.dir() + "/adapter";
    }
  }
  return s;
}

LoadedDiffusion load_diffusion_checkpoint(const std::string& checkpoint, bool ema) {
  if (!fs::exists(checkpoint)) MMREF_FAIL("diffusion: checkpoint '{}' does not exist", checkpoint);
  const std::string run_dir = stdfs::path(checkpoint).parent_path().parent_path().string();
  const std::string cfg_path = run_dir + "/config.yaml";
  if (!fs::exists(cfg_path)) {
    MMREF_FAIL("diffusion: '{}' is not inside a diffusion_unet run folder (need {}/config.yaml)", checkpoint, run_dir);
  }
  const config::Node cfg = config::load_file(cfg_path);
  LoadedDiffusion L;
  config::Node eff = config::Node::map();
  config::Reader root(&cfg, "", &eff, config::Mark{cfg_path, 1, 1});
  parse_diffusion_sections(root, L.spec, L.sample);
  const Checkpoint ck = load_checkpoint(checkpoint);
  if (L.spec.clip_text) {
    // The tower's sizes from the checkpoint's text_encoder.* (OpenAI names), its vocab from the run.
    std::map<std::string, at::Tensor> tower;
    const std::string pre = "model.text_encoder.";
    for (const auto& [k, v] : ck.tensors) {
      if (k.rfind(pre, 0) == 0) tower[k.substr(pre.size())] = v;
    }
    if (tower.empty()) MMREF_FAIL("diffusion: '{}' has no model.text_encoder.* tensors (the CLIP tower)", checkpoint);
    resolve_clip_text(L.spec, tower);
    const std::string vp = run_dir + "/clip_vocab.txt.gz";
    if (!fs::exists(vp)) MMREF_FAIL("diffusion: no clip_vocab.txt.gz in the run folder {}", run_dir);
    L.net = DiffusionNet(L.spec.unet, nullptr, &L.spec.clip.config);
    L.net->clip_tokenizer = std::make_shared<models::ClipTokenizer>(vp);
    L.net->clip_context = clip_context(L.spec);
  } else if (L.spec.data.conditioning == "text") {
    const std::string vp = run_dir + "/vocab.json";
    if (!fs::exists(vp)) MMREF_FAIL("diffusion: no vocab.json in the run folder {}", run_dir);
    L.vocab = std::make_shared<diffusion::TextVocab>(diffusion::TextVocab::load_json(vp));
    L.spec.text.vocab_size = L.vocab->size();
  }
  if (!L.net) L.net = DiffusionNet(L.spec.unet, L.spec.data.conditioning == "text" ? &L.spec.text : nullptr);
  // A LoRA run's checkpoint carries the adapters inside the modules: apply the same adapters first.
  if (const config::Node* ft = cfg.find("finetune")) {
    models::LoraConfig lc{0};
    config::Node e2 = config::Node::map();
    config::Reader fr(ft, "finetune", &e2, config::Mark{cfg_path, 1, 1});
    std::string base;
    fr.opt("base", base);
    fr.opt("lora_r", lc.r);
    fr.opt("lora_alpha", lc.alpha);
    fr.opt("lora_dropout", lc.dropout);
    fr.opt("target_modules", lc.target_modules);
    if (lc.r > 0) models::apply_lora(*L.net, lc);
  }
  L.used_ema = ema && std::any_of(ck.tensors.begin(), ck.tensors.end(), [](const auto& kv) { return kv.first.rfind("ema.", 0) == 0; });
  ck.load_module(L.used_ema ? "ema" : "model", *L.net);
  L.net->eval();
  return L;
}

}  // namespace mmref::train
