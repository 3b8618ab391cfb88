// Bench targets of the asr family (register_asr_targets(); target.h): the Conformer-CTC recognizer of
// src/models/asr (wenet's ConformerEncoder + CTC projection, models::AsrCtcModel).
//
//   asr.conformer.infer       one forward of batch x seconds of fresh random 80-bin fbank features
//                             (100 frames/s) under NoGradGuard in eval mode. units = audio seconds, unit
//                             "audio s/s"; audio_seconds = batch * seconds, so the runner's real-time
//                             factor is latency / audio seconds (issue 7's target: RTF < 0.05 on 2 cores).
//   asr.conformer.train_step  forward in train mode (dropout as configured), CTC loss (sum / batch) on
//                             random character targets, backward, clip_grad_norm_ 5 and an AdamW step
//                             (lr 1e-3, weight decay 0.01 on matrices) -- the asr_conformer task's step
//                             without the data loader and SpecAugment. units = 1 step, unit "steps/s";
//                             utterances/s is batch x steps/s. `lora: true` trains LoRA adapters only.
//
// Point keys (both): batch (1), seconds (10), dtype (float32), backend / attention_backend /
// conv_backend (mmref; model_target_common.h), vocab (32 CTC units, blank 0), seed (0); the model is
// the `model:` section of `config:` (default configs/asr/conformer_tiny.yaml, 2.6M parameters) or a
// wenet preset (`preset: tiny | aishell`). train_step adds tokens_per_second (12 characters per second
// of audio, about the corpus's rate), lr (1e-3), lora (false), lora_r (8), lora_alpha (16),
// lora_dropout (0.05), lora_target (the pattern of configs/asr/conformer_tiny_lora_heldout.yaml).
//
// FLOPs (Work::flops): 2 x multiply-adds of every convolution and linear layer (subsampling, the two
// macaron feed-forwards, q/k/v/out/pos projections, pointwise and depthwise convs, the CTC projection)
// and the three T'xT' attention matmuls (q k^T, the relative-position q p^T, att v); norms, activations,
// softmax and the loss are not counted. train_step declares 3x the forward (backward ~ 2x forward), or
// 2x with LoRA (no weight gradients for the frozen base).
//
// Peer: benchmarks/peers/conformer_torchaudio.py, torchaudio.models.Conformer at the same d_model,
// heads, ffn, layers and conv kernel behind an equivalent Conv2d x4 subsampling and CTC projection.
// torchaudio's attention has no relative positions (no linear_pos, no q p^T), so the peer does slightly
// less work: it is the closest same-size eager model, not the same network. No peer with LoRA.
#include <algorithm>
#include <cmath>
#include <memory>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>

#include "bench/model_target_common.h"
#include "bench/target.h"
#include "core/error.h"
#include "models/asr/asr_ctc.h"
#include "models/common/lora.h"
#include "train/optimizer.h"

namespace mmref::bench {

namespace {

constexpr double kFramesPerSecond = 100;  // 10 ms fbank shift
constexpr int64_t kMelBins = 80;
constexpr const char* kDefaultConfig = "configs/asr/conformer_tiny.yaml";
constexpr const char* kPeerScript = "benchmarks/peers/conformer_torchaudio.py";
// configs/asr/conformer_tiny_lora_heldout.yaml's finetune.target_modules.
constexpr const char* kLoraTarget =
    "encoder\\.encoders\\.\\d+\\.(self_attn\\.linear_(q|k|v|out)|feed_forward(_macaron)?\\.w_[12])";

models::WenetConformerConfig conformer_config(const Point& p, const std::string& target) {
  models::WenetConformerConfig c;
  if (p.has("preset")) {
    if (p.has("config")) MMREF_FAIL("{}: set either 'preset' or 'config', not both", target);
    try {
      c = models::wenet_conformer_preset(p.get_string("preset", ""), kMelBins);
    } catch (const Error& e) {
      MMREF_FAIL("{}: {}", target, e.what());
    }
    return c;
  }
  const std::string path = p.get_string("config", kDefaultConfig);
  const config::Node node = config_section(path, "model");
  config::Reader r(&node, "model", nullptr, config::Mark{path, 1, 1});
  models::parse(r, c);
  c.input_size = kMelBins;
  c.validate();
  return c;
}

// (kernel, stride) of each Conv2d of a wenet input layer.
std::vector<std::pair<int64_t, int64_t>> subsampling_convs(const std::string& layer) {
  if (layer == "conv2d") return {{3, 2}, {3, 2}};
  if (layer == "conv2d6") return {{3, 2}, {5, 3}};
  if (layer == "conv2d8") return {{3, 2}, {3, 2}, {3, 2}};
  return {};
}

struct ConformerShape {
  int64_t out_frames = 0;  // T' per utterance
  double flops = 0;        // forward FLOPs of the batch (see the top of the file)
};

ConformerShape conformer_shape(const models::WenetConformerConfig& c, int64_t batch, int64_t frames,
                               int64_t vocab) {
  const double b = static_cast<double>(batch), d = static_cast<double>(c.output_size);
  double embed = 0;
  int64_t t = frames, f = c.input_size, cin = 1;
  const auto convs = subsampling_convs(c.input_layer);
  for (const auto& [k, s] : convs) {
    t = (t - k) / s + 1, f = (f - k) / s + 1;
    embed += 2.0 * static_cast<double>(c.output_size * cin * k * k * t * f);
    cin = c.output_size;
  }
  embed += convs.empty() ? 2.0 * static_cast<double>(t * c.input_size) * d
                         : 2.0 * static_cast<double>(t) * static_cast<double>(c.output_size * f) * d;
  const double tt = static_cast<double>(t), u = static_cast<double>(c.linear_units);
  double layer = (c.macaron_style ? 2 : 1) * 4.0 * tt * d * u;  // w_1 and w_2 of each feed-forward
  layer += 8.0 * tt * d * d;                                     // linear_q, k, v, out
  layer += 3.0 * 2.0 * tt * tt * d;                              // q k^T, q p^T, att v (all heads)
  if (c.use_cnn_module) layer += 6.0 * tt * d * d + 2.0 * tt * d * static_cast<double>(c.cnn_module_kernel);
  const double pos = 2.0 * tt * d * d;  // linear_pos on the (1, T', D) embedding: once per batch
  const double ctc = 2.0 * tt * d * static_cast<double>(vocab);
  ConformerShape s;
  s.out_frames = t;
  s.flops = b * (embed + static_cast<double>(c.num_blocks) * layer + ctc) + static_cast<double>(c.num_blocks) * pos;
  return s;
}

// The sizes of a point, checked, without building anything (peer() runs before prepare()).
struct ConformerSizes {
  models::WenetConformerConfig config;
  int64_t batch = 0, frames = 0, vocab = 0;
  double seconds = 0;
  ConformerShape shape;
};

ConformerSizes conformer_sizes(const Point& p, const std::string& target) {
  ConformerSizes z;
  z.batch = point_int_at_least(p, target, "batch", 1, 1);
  z.seconds = p.get_double("seconds", 10.0);
  if (!(z.seconds > 0)) MMREF_FAIL("{}: 'seconds' must be > 0, got {}", target, z.seconds);
  z.frames = static_cast<int64_t>(std::lround(z.seconds * kFramesPerSecond));
  z.vocab = point_int_at_least(p, target, "vocab", 32, 2);
  z.config = conformer_config(p, target);
  z.shape = conformer_shape(z.config, z.batch, z.frames, z.vocab);
  if (z.shape.out_frames < 1) {
    MMREF_FAIL("{}: {} s ({} frames) is too short for the {} subsampling; use more seconds", target, z.seconds,
               z.frames, z.config.input_layer);
  }
  if (z.shape.out_frames > z.config.max_len) {
    MMREF_FAIL("{}: {} s gives {} encoder frames, more than max_len {}", target, z.seconds, z.shape.out_frames,
               z.config.max_len);
  }
  return z;
}

// Random characters 1..V-1 (0 is the blank) per utterance: as many as the audio would carry
// (tokens_per_second), capped at T'/2 so CTC stays feasible (a label needs a frame, repeats a blank between).
int64_t train_tokens(const Point& p, const ConformerSizes& z, const std::string& target) {
  const double tps = p.get_double("tokens_per_second", 12.0);
  if (!(tps > 0)) MMREF_FAIL("{}: 'tokens_per_second' must be > 0, got {}", target, tps);
  return std::max<int64_t>(
      1, std::min<int64_t>(static_cast<int64_t>(std::lround(tps * z.seconds)), z.shape.out_frames / 2));
}

// What both targets build: the model on the device in the dtype, and the random features.
struct ConformerFixture {
  ConformerSizes z;
  models::AsrCtcModel model{nullptr};
  at::Tensor feats, lengths;  // (B, T, 80) dtype, (B) int64
};

ConformerFixture make_fixture(const Point& p, const std::string& target) {
  ConformerFixture fx;
  fx.z = conformer_sizes(p, target);
  const auto dtype = point_dtype(p);
  const KernelBackends kb = point_backends(p);
  torch::manual_seed(static_cast<uint64_t>(p.get_int("seed", 0)));
  fx.model = models::AsrCtcModel(fx.z.config, fx.z.vocab);
  fx.model->encoder->attention_backend = kb.attention;
  fx.model->encoder->conv_backend = kb.conv;
  fx.model->to(p.device, dtype);
  const auto opts = at::TensorOptions().device(p.device);
  fx.feats = at::randn({fx.z.batch, fx.z.frames, kMelBins}, opts.dtype(dtype));
  fx.lengths = at::full({fx.z.batch}, fx.z.frames, opts.dtype(at::kLong));
  return fx;
}

// The peer's --point: the resolved sizes (the runner merges these over the point's own values).
nlohmann::json peer_args(const ConformerSizes& z, const std::string& mode, int64_t tokens = 0) {
  const auto& c = z.config;
  return {{"mode", mode},
          {"tokens", tokens},
          {"batch", z.batch},
          {"seconds", z.seconds},
          {"frames", z.frames},
          {"vocab", z.vocab},
          {"model",
           {{"d_model", c.output_size},
            {"heads", c.attention_heads},
            {"ffn", c.linear_units},
            {"layers", c.num_blocks},
            {"kernel", c.cnn_module_kernel},
            {"input_layer", c.input_layer},
            {"dropout", c.dropout_rate},
            {"layer_norm_conv", c.cnn_module_norm == "layer_norm"}}}};
}

class ConformerInferTarget : public Target {
 public:
  Work prepare(const Point& p) override {
    fx_ = make_fixture(p, "asr.conformer.infer");
    fx_.model->eval();
    Work w;
    w.audio_seconds = static_cast<double>(fx_.z.batch) * fx_.z.seconds;
    w.units = w.audio_seconds;
    w.unit = "audio s/s";
    w.flops = fx_.z.shape.flops;
    return w;
  }

  void run() override {
    torch::NoGradGuard ng;
    fx_.model->forward(fx_.feats, fx_.lengths);  // (B, T', V) log-probabilities, discarded
  }

  PeerSpec peer(const Point& p) const override {
    return {kPeerScript, peer_args(conformer_sizes(p, "asr.conformer.infer"), "infer")};
  }

 private:
  ConformerFixture fx_;
};

class ConformerTrainStepTarget : public Target {
 public:
  Work prepare(const Point& p) override {
    const std::string name = "asr.conformer.train_step";
    fx_ = make_fixture(p, name);
    lora_ = p.get_bool("lora", false);
    const double lr = p.get_double("lr", 1e-3);
    if (!(lr > 0)) MMREF_FAIL("{}: 'lr' must be > 0, got {}", name, lr);
    fx_.model->train();
    if (lora_) {
      models::LoraConfig lc;
      lc.r = point_int_at_least(p, name, "lora_r", 8, 1);
      lc.alpha = p.get_double("lora_alpha", 16.0);
      lc.dropout = p.get_double("lora_dropout", 0.05);
      lc.target_modules = p.get_string("lora_target", kLoraTarget);
      models::apply_lora(*fx_.model, lc);
      fx_.model->to(p.device, point_dtype(p));  // the new adapters too
    }
    std::vector<std::pair<std::string, at::Tensor>> named;
    for (const auto& item : fx_.model->named_parameters()) {
      if (item.value().requires_grad()) named.emplace_back(item.key(), item.value()), params_.push_back(item.value());
    }
    groups_ = train::split_param_groups(named);
    opt_ = train::make_optimizer(train::OptimizerConfig{}, groups_, lr);
    const int64_t tokens = train_tokens(p, fx_.z, name);
    const auto lopts = at::TensorOptions().device(p.device).dtype(at::kLong);
    targets_ = at::randint(1, fx_.z.vocab, {fx_.z.batch, tokens}, lopts);
    target_lengths_ = at::full({fx_.z.batch}, tokens, lopts);
    Work w;
    w.units = 1;
    w.unit = "steps/s";
    w.flops = (lora_ ? 2.0 : 3.0) * fx_.z.shape.flops;
    return w;
  }

  void run() override {
    opt_->zero_grad();
    const auto out = fx_.model->forward(fx_.feats, fx_.lengths);  // (B, T', V), (B)
    const at::Tensor loss = at::ctc_loss(out.log_probs.transpose(0, 1).to(at::kFloat), targets_, out.lengths,
                                         target_lengths_, /*blank=*/0, at::Reduction::Sum, /*zero_infinity=*/true) /
                            static_cast<double>(fx_.z.batch);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params_, 5.0);
    opt_->step();
  }

  PeerSpec peer(const Point& p) const override {
    const std::string name = "asr.conformer.train_step";
    if (p.get_bool("lora", false)) return {};  // torchaudio's fused in_proj has no LoRA counterpart
    const ConformerSizes z = conformer_sizes(p, name);
    return {kPeerScript, peer_args(z, "train", train_tokens(p, z, name))};
  }

 private:
  ConformerFixture fx_;
  bool lora_ = false;
  std::vector<at::Tensor> params_;
  train::ParamGroups groups_;
  std::unique_ptr<torch::optim::Optimizer> opt_;
  at::Tensor targets_, target_lengths_;
};

}  // namespace

void register_asr_targets() {
  register_target("asr.conformer.infer",
                  "Conformer-CTC encoder forward (eval, no grad) on batch x seconds of random fbank; "
                  "audio s/s and real-time factor; peer: torchaudio Conformer",
                  [] { return std::make_unique<ConformerInferTarget>(); });
  register_target("asr.conformer.train_step",
                  "Conformer-CTC train step (forward, CTC loss, backward, clip, AdamW; lora: true for "
                  "adapters only); steps/s (utterances/s = batch x steps/s); peer: torchaudio Conformer",
                  [] { return std::make_unique<ConformerTrainStepTarget>(); });
}

}  // namespace mmref::bench
