// The sampler base (schedule bookkeeping, noise, the sample loop with img2img start and inpainting),
// options parsing, the registry, classifier-free guidance, and the VP samplers DDPM and DDIM.
// Euler/Euler-a/Heun: samplers_sigma.cpp; DPM-Solver++ and the flow samplers: samplers_dpm_flow.cpp.
#include "models/diffusion/samplers.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include <ATen/Functions.h>
#include <c10/util/StringUtil.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/config.h"
#include "core/error.h"

namespace mmref::diffusion {
namespace {

bool is_flow(const std::string& name) { return name == "flow_euler" || name == "flow_heun"; }

std::string unknown_sampler(const std::string& name) {
  const std::string near = config::closest(name, sampler_names());
  return fmt::format("unknown sampler '{}'{}; valid: {}", name,
                     near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near),
                     fmt::join(sampler_names(), ", "));
}

// Which samplers read each sampler-specific key (empty: all; "vp": every non-flow sampler).
struct KeyScope {
  const char* key;
  std::vector<std::string> samplers;
};

const std::vector<KeyScope>& key_scopes() {
  static const std::vector<KeyScope> k = {
      {"beta_start", {"vp"}},
      {"beta_end", {"vp"}},
      {"beta_schedule", {"vp"}},
      {"rescale_betas_zero_snr", {"vp"}},
      {"prediction_type", {"vp"}},
      {"timestep_spacing", {"vp"}},
      {"steps_offset", {"vp"}},
      {"eta", {"ddim"}},
      {"set_alpha_to_one", {"ddim"}},
      {"clip_sample", {"ddim", "ddpm"}},
      {"clip_sample_range", {"ddim", "ddpm"}},
      {"variance_type", {"ddpm"}},
      {"solver_order", {"dpmpp_2m"}},
      {"lower_order_final", {"dpmpp_2m"}},
      {"euler_at_final", {"dpmpp_2m"}},
      {"final_sigmas_type", {"dpmpp_2m"}},
      {"shift", {"flow_euler", "flow_heun"}},
  };
  return k;
}

bool applies(const KeyScope& k, const std::string& name) {
  for (const auto& s : k.samplers) {
    if (s == name || (s == "vp" && !is_flow(name))) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- options
void SamplerOptions::validate() const {
  const auto& names = sampler_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) throw ConfigError(unknown_sampler(name));
  const std::string who = fmt::format("sampler '{}'", name);
  check_num_inference_steps(num_inference_steps, schedule.num_train_timesteps, who);
  if (is_flow(name)) {
    if (schedule.num_train_timesteps < 2) {
      throw ConfigError(
          fmt::format("{}: num_train_timesteps must be >= 2, got {}", who, schedule.num_train_timesteps));
    }
    if (!(shift > 0))
      throw ConfigError(fmt::format("{}: shift must be > 0 (1 = no shift), got {}", who, shift));
    return;
  }
  schedule.validate();
  const PredictionType p = parse_prediction_type(prediction_type);
  parse_timestep_spacing(timestep_spacing);
  if (steps_offset < 0)
    throw ConfigError(fmt::format("{}: steps_offset must be >= 0, got {}", who, steps_offset));
  if (!(eta >= 0 && eta <= 1)) throw ConfigError(fmt::format("{}: eta must be in [0, 1], got {}", who, eta));
  if (!(clip_sample_range > 0)) {
    throw ConfigError(fmt::format("{}: clip_sample_range must be > 0, got {}", who, clip_sample_range));
  }
  if (variance_type != "fixed_small" && variance_type != "fixed_large") {
    throw ConfigError(
        fmt::format("{}: variance_type '{}' is unknown; use fixed_small or fixed_large", who, variance_type));
  }
  if (solver_order != 1 && solver_order != 2) {
    throw ConfigError(fmt::format("{}: solver_order {} is not implemented; use 1 or 2 (DPM-Solver++ 2M)", who,
                                  solver_order));
  }
  if (final_sigmas_type != "zero" && final_sigmas_type != "sigma_min") {
    throw ConfigError(
        fmt::format("{}: final_sigmas_type '{}' is unknown; use zero or sigma_min", who, final_sigmas_type));
  }
  if (schedule.rescale_betas_zero_snr && p == PredictionType::kEpsilon &&
      (name == "ddim" || name == "ddpm")) {
    throw ConfigError(
        fmt::format("{}: rescale_betas_zero_snr needs prediction_type v_prediction or sample "
                    "(epsilon cannot recover x0 at SNR 0)",
                    who));
  }
}

void parse(config::Reader& r, SamplerOptions& o) {
  r.opt("name", o.name);
  const auto& names = sampler_names();
  if (std::find(names.begin(), names.end(), o.name) == names.end()) r.fail("name", unknown_sampler(o.name));
  for (const KeyScope& k : key_scopes()) {
    if (!applies(k, o.name) && r.has(k.key)) {
      std::string who;
      for (const auto& s : k.samplers)
        who += (who.empty() ? "" : ", ") + (s == "vp" ? "the non-flow samplers" : s);
      r.fail(k.key, fmt::format("applies only to {}, not to sampler '{}'; remove it", who, o.name));
    }
  }
  using config::Range;
  r.opt("num_inference_steps", o.num_inference_steps, Range::at_least(1));
  r.opt("num_train_timesteps", o.schedule.num_train_timesteps, Range::at_least(2));
  const auto on = [&](const char* key) {
    for (const KeyScope& k : key_scopes()) {
      if (std::string(k.key) == key) return applies(k, o.name);
    }
    return true;
  };
  if (on("beta_start")) {
    r.opt("beta_start", o.schedule.beta_start, Range::between(1e-12, 0.999));
    r.opt("beta_end", o.schedule.beta_end, Range::between(1e-12, 0.999));
    r.choice("beta_schedule", o.schedule.beta_schedule, {"linear", "scaled_linear", "squaredcos_cap_v2"});
    r.opt("rescale_betas_zero_snr", o.schedule.rescale_betas_zero_snr);
    r.choice("prediction_type", o.prediction_type, {"epsilon", "v_prediction", "sample"});
    r.choice("timestep_spacing", o.timestep_spacing, {"leading", "trailing", "linspace"});
    r.opt("steps_offset", o.steps_offset, Range::at_least(0));
  }
  if (on("eta")) {
    r.opt("eta", o.eta, Range::between(0, 1));
    r.opt("set_alpha_to_one", o.set_alpha_to_one);
  }
  if (on("clip_sample")) {
    r.opt("clip_sample", o.clip_sample);
    r.opt("clip_sample_range", o.clip_sample_range, Range::positive());
  }
  if (on("variance_type")) r.choice("variance_type", o.variance_type, {"fixed_small", "fixed_large"});
  if (on("solver_order")) {
    r.opt("solver_order", o.solver_order, Range::between(1, 2));
    r.opt("lower_order_final", o.lower_order_final);
    r.opt("euler_at_final", o.euler_at_final);
    r.choice("final_sigmas_type", o.final_sigmas_type, {"zero", "sigma_min"});
  }
  if (on("shift")) r.opt("shift", o.shift, Range::positive());
  r.finish();
  if (o.num_inference_steps > o.schedule.num_train_timesteps) {
    r.fail("num_inference_steps", fmt::format("{} is more than num_train_timesteps {}", o.num_inference_steps,
                                              o.schedule.num_train_timesteps));
  }
  o.validate();
}

// ---------------------------------------------------------------- registry
const std::vector<std::string>& sampler_names() {
  static const std::vector<std::string> names = {"ddim", "ddpm",     "euler",      "euler_a",
                                                 "heun", "dpmpp_2m", "flow_euler", "flow_heun"};
  return names;
}

std::unique_ptr<Sampler> make_sampler(const std::string& name, SamplerOptions o) {
  o.name = name;
  o.validate();
  std::unique_ptr<Sampler> s;
  if (name == "ddim")
    s = std::make_unique<DdimSampler>(o);
  else if (name == "ddpm")
    s = std::make_unique<DdpmSampler>(o);
  else if (name == "euler")
    s = std::make_unique<EulerSampler>(o);
  else if (name == "euler_a")
    s = std::make_unique<EulerAncestralSampler>(o);
  else if (name == "heun")
    s = std::make_unique<HeunSampler>(o);
  else if (name == "dpmpp_2m")
    s = std::make_unique<DpmSolverMultistepSampler>(o);
  else if (name == "flow_euler")
    s = std::make_unique<FlowEulerSampler>(o);
  else if (name == "flow_heun")
    s = std::make_unique<FlowHeunSampler>(o);
  else
    throw ConfigError(unknown_sampler(name));  // validate() already checked; keeps the chain total
  s->set_timesteps(o.num_inference_steps);
  return s;
}

std::unique_ptr<Sampler> make_sampler(const SamplerOptions& o) { return make_sampler(o.name, o); }

// ---------------------------------------------------------------- Sampler
Sampler::Sampler(SamplerOptions o) : o_(std::move(o)) {}

void Sampler::set_timesteps(int64_t num_inference_steps) {
  check_num_inference_steps(num_inference_steps, o_.schedule.num_train_timesteps,
                            fmt::format("sampler '{}'", name()));
  n_ = num_inference_steps;
  build_schedule(n_);
  sigma_values_.clear();
  if (sigmas_.defined()) {
    const at::Tensor s = sigmas_.to(at::kDouble).contiguous();
    sigma_values_.assign(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  }
  reset();
}

int64_t Sampler::num_evaluations() const { return timesteps().numel(); }

const at::Tensor& Sampler::timesteps() const {
  if (!timesteps_.defined())
    MMREF_FAIL("sampler '{}': call set_timesteps(n) before using its schedule", name());
  return timesteps_;
}

at::Tensor Sampler::prepare_latents(const at::Tensor& unit_noise) const {
  return unit_noise * init_noise_sigma();
}

at::Tensor Sampler::scale_model_input(const at::Tensor& x, int64_t i) const {
  check_index(i, "scale_model_input");
  return x;
}

at::Tensor Sampler::model_time(int64_t i, const at::Tensor& x) const {
  check_index(i, "model_time");
  const double t = timesteps_[i].item<double>();
  return at::full({x.size(0)}, t, at::TensorOptions().dtype(at::kFloat).device(x.device()));
}

void Sampler::check_index(int64_t i, const char* what) const {
  const int64_t e = num_evaluations();
  if (i < 0 || i >= e) {
    MMREF_FAIL("sampler '{}': {} index {} is outside [0, {}) (the evaluations of {} steps)", name(), what, i,
               e, n_);
  }
}

double Sampler::sigma_at(int64_t i) const { return sigma_values_.at(static_cast<size_t>(i)); }

at::Tensor Sampler::upcast(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? t : t.to(at::kFloat);
}

at::Tensor Sampler::step_noise(const at::Tensor& like, const StepNoise& rnd, int64_t i) const {
  if (rnd.noise.defined()) {
    if (rnd.noise.sizes() != like.sizes()) {
      MMREF_FAIL("sampler '{}': step {} noise has shape {} but the model output has shape {}", name(), i,
                 c10::str(rnd.noise.sizes()), c10::str(like.sizes()));
    }
    return rnd.noise.to(like.device(), like.scalar_type());
  }
  if (!rnd.generator) {
    MMREF_FAIL("sampler '{}': step {} draws noise; pass a generator (SampleOptions / StepNoise) or the noise",
               name(), i);
  }
  const at::Generator& g = *rnd.generator;
  return at::randn(like.sizes(), c10::optional<at::Generator>(g),
                   at::TensorOptions().dtype(like.scalar_type()).device(g.device()))
      .to(like.device());
}

at::Tensor Sampler::sample(const Denoiser& denoiser, const at::Tensor& x_T, const SampleOptions& so) {
  if (!denoiser) MMREF_FAIL("sampler '{}': sample() needs a denoiser callback", name());
  const int64_t e = num_evaluations();
  if (so.start_step < 0 || so.start_step >= n_) {
    MMREF_FAIL("sampler '{}': start_step {} is outside [0, {}) inference steps", name(), so.start_step, n_);
  }
  if (stochastic() && !so.generator) {
    MMREF_FAIL(
        "sampler '{}' is stochastic; pass SampleOptions.generator (e.g. "
        "at::detail::createCPUGenerator(seed))",
        name());
  }
  reset();
  at::Tensor x = x_T;
  at::Tensor known_noise;
  if (so.inpaint) {
    const InpaintMask& m = *so.inpaint;
    if (!m.known.defined() || !m.mask.defined())
      MMREF_FAIL("sampler '{}': inpainting needs known and mask", name());
    if (m.known.sizes() != x.sizes()) {
      MMREF_FAIL("sampler '{}': inpaint known has shape {} but x_T has shape {}", name(),
                 c10::str(m.known.sizes()), c10::str(x.sizes()));
    }
    if (m.noise.defined()) {
      known_noise = m.noise;
    } else {
      if (!so.generator) MMREF_FAIL("sampler '{}': inpainting without noise needs a generator", name());
      known_noise = step_noise(m.known, StepNoise{so.generator, {}}, -1);
    }
  }
  const StepNoise rnd{so.generator, {}};
  for (int64_t i = so.start_step * order(); i < e; ++i) {
    const at::Tensor x_in = scale_model_input(x, i);
    const at::Tensor out = denoiser(x_in, model_time(i, x_in));
    if (!out.defined() || out.sizes() != x.sizes()) {
      MMREF_FAIL("sampler '{}': the denoiser returned shape {} for input shape {}; it must match", name(),
                 out.defined() ? c10::str(out.sizes()) : std::string("(undefined)"), c10::str(x.sizes()));
    }
    x = step(out, i, x, rnd);
    if (so.inpaint) {
      const InpaintMask& m = *so.inpaint;
      const at::Tensor known =
          i + 1 < e ? add_noise(m.known, known_noise, i + 1) : m.known.to(x.device(), x.scalar_type());
      const at::Tensor mask = m.mask.to(x.device(), x.scalar_type());
      x = mask * x + (1 - mask) * known;
    }
    if (so.on_step) so.on_step(i, x);
  }
  return x;
}

// ---------------------------------------------------------------- CFG, img2img
at::Tensor rescale_noise_cfg(const at::Tensor& guided, const at::Tensor& cond, double guidance_rescale) {
  TORCH_CHECK(guided.sizes() == cond.sizes(), "rescale_noise_cfg: guided ", guided.sizes(), " and cond ",
              cond.sizes(), " must have the same shape");
  TORCH_CHECK(guided.dim() >= 2, "rescale_noise_cfg: needs (B, ...) with at least 2 dims, got ",
              guided.sizes());
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < guided.dim(); ++d) dims.push_back(d);
  // Unbiased std over all but the batch dim (torch.std's default, as diffusers).
  const auto std_of = [&](const at::Tensor& t) {
    const int64_t n = t.numel() / t.size(0);
    const at::Tensor c = t - t.mean(dims, /*keepdim=*/true);
    return (c.pow(2).sum(dims, /*keepdim=*/true) / static_cast<double>(n - 1)).sqrt();
  };
  const at::Tensor rescaled = guided * (std_of(cond) / std_of(guided));
  return guidance_rescale * rescaled + (1 - guidance_rescale) * guided;
}

at::Tensor cfg_combine(const at::Tensor& uncond, const at::Tensor& cond, double scale,
                       double guidance_rescale) {
  TORCH_CHECK(uncond.sizes() == cond.sizes(), "cfg_combine: uncond ", uncond.sizes(), " and cond ",
              cond.sizes(), " must have the same shape");
  TORCH_CHECK(guidance_rescale >= 0 && guidance_rescale <= 1,
              "cfg_combine: guidance_rescale must be in [0, 1], got ", guidance_rescale);
  at::Tensor guided = uncond + scale * (cond - uncond);
  if (guidance_rescale > 0) guided = rescale_noise_cfg(guided, cond, guidance_rescale);
  return guided;
}

Denoiser cfg_denoiser(Denoiser batched, double scale, double guidance_rescale) {
  if (!batched) MMREF_FAIL("cfg_denoiser: the batched denoiser is empty");
  return [batched = std::move(batched), scale, guidance_rescale](const at::Tensor& x, const at::Tensor& t) {
    const int64_t b = x.size(0);
    const at::Tensor out = batched(at::cat({x, x}), at::cat({t, t}));  // (2B, ...): uncond rows, then cond
    if (!out.defined() || out.dim() != x.dim() || out.size(0) != 2 * b) {
      MMREF_FAIL("cfg_denoiser: the batched denoiser must return 2B = {} rows shaped like x, got {}", 2 * b,
                 out.defined() ? c10::str(out.sizes()) : std::string("(undefined)"));
    }
    return cfg_combine(out.narrow(0, 0, b), out.narrow(0, b, b), scale, guidance_rescale);
  };
}

int64_t img2img_start_step(int64_t num_inference_steps, double strength) {
  if (num_inference_steps < 1)
    MMREF_FAIL("img2img: num_inference_steps must be >= 1, got {}", num_inference_steps);
  if (!(strength > 0 && strength <= 1)) {
    throw ConfigError(fmt::format("img2img: strength must be in (0, 1], got {}", strength));
  }
  const auto init = std::min(static_cast<int64_t>(static_cast<double>(num_inference_steps) * strength),
                             num_inference_steps);
  if (init < 1) {
    throw ConfigError(
        fmt::format("img2img: strength {} with {} steps leaves no denoising step; raise strength or "
                    "num_inference_steps",
                    strength, num_inference_steps));
  }
  return num_inference_steps - init;
}

at::Tensor img2img_latents(const Sampler& s, const at::Tensor& init, const at::Tensor& noise,
                           int64_t start_step) {
  if (start_step < 0 || start_step >= s.num_inference_steps()) {
    MMREF_FAIL("img2img: start_step {} is outside [0, {})", start_step, s.num_inference_steps());
  }
  return s.add_noise(init, noise, start_step * s.order());
}

// ---------------------------------------------------------------- DDPM, DDIM
VpSampler::VpSampler(SamplerOptions o)
    : Sampler(std::move(o)), schedule_(o_.schedule), pred_(parse_prediction_type(o_.prediction_type)) {}

void VpSampler::build_schedule(int64_t n) {
  const auto ts =
      spaced_timesteps(parse_timestep_spacing(o_.timestep_spacing), o_.schedule.num_train_timesteps, n,
                       o_.steps_offset, /*round_linspace=*/true);
  std::vector<int64_t> ti(ts.begin(), ts.end());
  timesteps_ = at::tensor(ti, at::TensorOptions().dtype(at::kLong));
  sigmas_ = at::Tensor();
}

int64_t VpSampler::t_at(int64_t i) const { return timesteps_.data_ptr<int64_t>()[i]; }

int64_t VpSampler::prev_t(int64_t i) const { return i + 1 < timesteps_.numel() ? t_at(i + 1) : -1; }

at::Tensor VpSampler::x0_of(const at::Tensor& x0) const {
  return o_.clip_sample ? x0.clamp(-o_.clip_sample_range, o_.clip_sample_range) : x0;
}

at::Tensor VpSampler::add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const {
  check_index(i, "add_noise");
  TORCH_CHECK(x0.sizes() == noise.sizes(), "add_noise: x0 ", x0.sizes(), " and noise ", noise.sizes(),
              " must have the same shape");
  const double ab = schedule_.alpha_bar(t_at(i));
  return std::sqrt(ab) * x0 + std::sqrt(1 - ab) * noise;
}

at::Tensor DdpmSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                             const StepNoise& rnd) {
  check_index(i, "step");
  const int64_t t = t_at(i), prev = prev_t(i);
  const double a_t = schedule_.alpha_bar(t);
  const double a_prev = prev >= 0 ? schedule_.alpha_bar(prev) : 1.0;
  const double beta_prod_t = 1 - a_t, beta_prod_prev = 1 - a_prev;
  const double cur_alpha = a_t / a_prev, cur_beta = 1 - cur_alpha;
  const at::Tensor xs = upcast(x), out = upcast(model_output);
  const at::Tensor x0 = x0_of(vp_to_x0_eps(pred_, out, xs, std::sqrt(a_t), std::sqrt(beta_prod_t)).x0);
  // Posterior mean (DDPM eq. 7): coefficients of x0 and x_t.
  const double c_x0 = std::sqrt(a_prev) * cur_beta / beta_prod_t;
  const double c_xt = std::sqrt(cur_alpha) * beta_prod_prev / beta_prod_t;
  at::Tensor prev_x = c_x0 * x0 + c_xt * xs;
  if (t > 0) {
    const at::Tensor noise = upcast(step_noise(model_output, rnd, i));
    if (prev >= 0) {
      const double var = o_.variance_type == "fixed_large"
                             ? cur_beta
                             : std::max(beta_prod_prev / beta_prod_t * cur_beta, 1e-20);
      prev_x = prev_x + std::sqrt(var) * noise;
    }
  }
  return prev_x.to(model_output.scalar_type());
}

at::Tensor DdimSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                             const StepNoise& rnd) {
  check_index(i, "step");
  const int64_t t = t_at(i), prev = prev_t(i);
  const double a_t = schedule_.alpha_bar(t);
  const double a_prev =
      prev >= 0 ? schedule_.alpha_bar(prev) : (o_.set_alpha_to_one ? 1.0 : schedule_.alpha_bar(0));
  const at::Tensor xs = upcast(x), out = upcast(model_output);
  X0Eps p = vp_to_x0_eps(pred_, out, xs, std::sqrt(a_t), std::sqrt(1 - a_t));
  const at::Tensor x0 = x0_of(p.x0);
  // DDIM eq. 16: sigma_t(eta) = eta sqrt((1 - a_prev) / (1 - a_t)) sqrt(1 - a_t / a_prev).
  const double variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev);
  const double std_dev = o_.eta * std::sqrt(variance);
  // DDIM eq. 12: sqrt(a_prev) x0 + sqrt(1 - a_prev - sigma^2) eps + sigma z.
  at::Tensor prev_x =
      std::sqrt(a_prev) * x0 + std::sqrt(std::max(1 - a_prev - std_dev * std_dev, 0.0)) * p.eps;
  if (o_.eta > 0) prev_x = prev_x + std_dev * upcast(step_noise(model_output, rnd, i));
  return prev_x.to(model_output.scalar_type());
}

}  // namespace mmref::diffusion
