// Bench targets of the diffusion family (register_diffusion_targets(); target.h): diffusers'
// UNet2DConditionModel of src/models/diffusion/unet2d and the samplers of samplers.h.
//
//   diffusion.unet.forward  one UNet evaluation (eval, no grad) of batch x in_channels x resolution^2
//                           fresh Gaussian inputs at random timesteps; units = batch images per
//                           evaluation, unit "images/s". cfg doubles the rows (unconditional +
//                           conditional, as classifier-free guidance evaluates them) but not the units.
//   diffusion.sampler       `steps` inference steps of `sampler` (any of sampler_names(): ddim, dpmpp_2m,
//                           euler, heun, ...) from fresh noise to an image, with cfg when `cfg` > 1;
//                           units = batch images, unit "images/s" end to end.
//
// Point keys: batch (1), resolution (the UNet's input H = W: pixels for tiny, latents for sd15; default
// the config's sample_size; a multiple of 2^(levels - 1)), dtype (float32), backend / attention_backend /
// conv_backend (mmref; model_target_common.h: every attention and GroupNorm+SiLU of the UNet goes through
// kernels/dispatch.h, so backend: torch vs mmref is the attention A/B), cfg (false; true or a scale != 1
// turns guidance on -- the sampler uses the scale, true means 3.0), tokens (16: text-context length for
// models with cross-attention; the context states are random (B, tokens, cross_attention_dim), the text
// encoder is not run), seed (0). The model: `preset: tiny | tiny_class | sd15` or the `model:` section of
// `config:` (e.g. configs/diffusion/shapes_32.yaml); default preset tiny. Class-conditioned models get
// random labels. diffusion.sampler adds steps (20) and sampler (dpmpp_2m), other settings at
// SamplerOptions' defaults (the schedule does not change the cost).
//
// FLOPs: UNet2DConditionModelImpl::flops (2 x multiply-adds of every conv, linear and the two attention
// matmuls) for the evaluated rows; the sampler multiplies by its number of evaluations.
//
// Peer (diffusion.unet.forward): benchmarks/peers/unet2d_eager.py, the same UNet in Python eager PyTorch
// (tests/models/unet2d_reference.py's diffusers-named composition, plain softmax attention).
#include <memory>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <fmt/format.h>
#include <torch/utils.h>

#include "bench/model_target_common.h"
#include "bench/target.h"
#include "core/error.h"
#include "models/diffusion/samplers.h"
#include "models/diffusion/unet2d.h"

namespace mmref::bench {

namespace {

constexpr const char* kPeerScript = "benchmarks/peers/unet2d_eager.py";
constexpr double kDefaultCfgScale = 3.0;  // configs/diffusion/shapes_32.yaml's sample.cfg

diffusion::UNet2DConfig unet_config(const Point& p, const std::string& target) {
  if (p.has("config")) {
    if (p.has("preset")) MMREF_FAIL("{}: set either 'preset' or 'config', not both", target);
    const std::string path = p.get_string("config", "");
    const config::Node node = config_section(path, "model");
    config::Reader r(&node, "model", nullptr, config::Mark{path, 1, 1});
    diffusion::UNet2DConfig c;
    diffusion::parse(r, c);
    c.validate();
    return c;
  }
  try {
    return diffusion::unet2d_preset(p.get_string("preset", "tiny"));
  } catch (const Error& e) {
    MMREF_FAIL("{}: {}", target, e.what());
  }
}

// Guidance scale from `cfg`: false / absent / 1 -> 0 (off), true -> kDefaultCfgScale, a number -> itself.
double cfg_scale(const Point& p, const std::string& target) {
  if (!p.has("cfg")) return 0;
  const auto& v = p.values.at("cfg");
  if (v.is_boolean()) return v.get<bool>() ? kDefaultCfgScale : 0;
  const double s = p.get_double("cfg", 1.0);  // a wrong type throws here
  if (s < 0) MMREF_FAIL("{}: 'cfg' must be >= 0, got {}", target, s);
  return s == 1.0 ? 0 : s;
}

// The sizes of a point, checked, without building anything (peer() runs before prepare()).
struct UnetSizes {
  diffusion::UNet2DConfig config;
  int64_t batch = 0, resolution = 0, tokens = 0, rows = 0;  // rows: 2 x batch with cfg
  double cfg = 0;
};

UnetSizes unet_sizes(const Point& p, const std::string& target) {
  UnetSizes z;
  z.config = unet_config(p, target);
  const auto& c = z.config;
  z.batch = point_int_at_least(p, target, "batch", 1, 1);
  z.resolution = point_int_at_least(p, target, "resolution", c.sample_size, 1);
  if (z.resolution % c.size_multiple() != 0) {
    MMREF_FAIL("{}: resolution {} must be a multiple of {} (2^(levels - 1) of this UNet)", target, z.resolution,
               c.size_multiple());
  }
  z.tokens = point_int_at_least(p, target, "tokens", 16, 1);
  z.cfg = cfg_scale(p, target);
  z.rows = z.cfg > 0 ? 2 * z.batch : z.batch;
  return z;
}

// The model and its conditioning, which both targets share.
struct UnetFixture {
  UnetSizes z;
  diffusion::UNet2DConditionModel unet{nullptr};
  c10::ScalarType dtype = at::kFloat;
  at::Tensor context, labels;  // (rows, tokens, Dc) / (rows) or undefined
};

UnetFixture make_fixture(const Point& p, const std::string& target) {
  UnetFixture fx;
  fx.z = unet_sizes(p, target);
  const auto& c = fx.z.config;
  fx.dtype = point_dtype(p);
  const KernelBackends kb = point_backends(p);
  torch::manual_seed(static_cast<uint64_t>(p.get_int("seed", 0)));
  fx.unet = diffusion::UNet2DConditionModel(c);
  fx.unet->set_backends(kb.attention, kb.conv);
  fx.unet->to(p.device, fx.dtype);
  fx.unet->eval();
  const auto opts = at::TensorOptions().device(p.device);
  if (c.has_cross_attention()) fx.context = at::randn({fx.z.rows, fx.z.tokens, c.cross_attention_dim}, opts.dtype(fx.dtype));
  if (c.num_class_embeds > 0) fx.labels = at::randint(0, c.num_class_embeds, {fx.z.rows}, opts.dtype(at::kLong));
  return fx;
}

double unet_flops(const UnetFixture& fx) {
  return static_cast<double>(fx.unet->flops(fx.z.rows, fx.z.resolution, fx.z.resolution, fx.z.tokens));
}

class UnetForwardTarget : public Target {
 public:
  Work prepare(const Point& p) override {
    fx_ = make_fixture(p, "diffusion.unet.forward");
    const auto opts = at::TensorOptions().device(p.device);
    const auto& z = fx_.z;
    sample_ = at::randn({z.rows, z.config.in_channels, z.resolution, z.resolution}, opts.dtype(fx_.dtype));
    timesteps_ = at::randint(0, 1000, {z.rows}, opts.dtype(at::kLong));
    Work w;
    w.units = static_cast<double>(z.batch);
    w.unit = "images/s";
    w.flops = unet_flops(fx_);
    return w;
  }

  void run() override {
    torch::NoGradGuard ng;
    fx_.unet->forward(sample_, timesteps_, fx_.context, {}, fx_.labels);  // (rows, out, H, W), discarded
  }

  PeerSpec peer(const Point& p) const override {
    const UnetSizes z = unet_sizes(p, "diffusion.unet.forward");
    return {kPeerScript,
            {{"batch", z.batch},
             {"rows", z.rows},
             {"resolution", z.resolution},
             {"tokens", z.tokens},
             {"unet", diffusion::to_diffusers_config(z.config)}}};
  }

 private:
  UnetFixture fx_;
  at::Tensor sample_, timesteps_;
};

class SamplerTarget : public Target {
 public:
  Work prepare(const Point& p) override {
    const std::string name = "diffusion.sampler";
    fx_ = make_fixture(p, name);
    diffusion::SamplerOptions so;
    so.name = p.get_string("sampler", "dpmpp_2m");
    so.num_inference_steps = point_int_at_least(p, name, "steps", 20, 1);
    try {
      sampler_ = diffusion::make_sampler(so);
    } catch (const Error& e) {
      MMREF_FAIL("{}: {}", name, e.what());
    }
    gen_ = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(p.get_int("seed", 0)));
    const auto& z = fx_.z;
    const at::Tensor noise = at::randn({z.batch, z.config.in_channels, z.resolution, z.resolution}, gen_, at::kFloat);
    x_T_ = sampler_->prepare_latents(noise).to(p.device);
    Work w;
    w.units = static_cast<double>(z.batch);
    w.unit = "images/s";
    w.flops = static_cast<double>(sampler_->num_evaluations()) * unet_flops(fx_);
    return w;
  }

  void run() override {
    torch::NoGradGuard ng;
    auto* fx = &fx_;
    diffusion::Denoiser den = [fx](const at::Tensor& x, const at::Tensor& t) {
      return fx->unet->forward(x, t, fx->context, {}, fx->labels);  // (rows, out, H, W)
    };
    if (fx_.z.cfg > 0) den = diffusion::cfg_denoiser(den, fx_.z.cfg);
    diffusion::SampleOptions so;
    so.generator = gen_;
    sampler_->sample(den, x_T_, so);  // (B, out, H, W), discarded
  }

 private:
  UnetFixture fx_;
  std::unique_ptr<diffusion::Sampler> sampler_;
  at::Generator gen_;
  at::Tensor x_T_;
};

}  // namespace

void register_diffusion_targets() {
  register_target("diffusion.unet.forward",
                  "UNet2DConditionModel evaluation (eval, no grad) at batch x resolution, cfg doubling the "
                  "rows; images/s per evaluation; peer: the same UNet in eager PyTorch",
                  [] { return std::make_unique<UnetForwardTarget>(); });
  register_target("diffusion.sampler",
                  "end-to-end sampling: `steps` steps of `sampler` with the UNet (cfg when cfg > 1) at batch x "
                  "resolution; images/s",
                  [] { return std::make_unique<SamplerTarget>(); });
}

}  // namespace mmref::bench
