// Diffusion samplers that never know the model (STYLE rule 6): each takes a denoiser callback
//   at::Tensor denoiser(const at::Tensor& x, const at::Tensor& t)  // x as the model sees it, t (B,) f32
// returning the model output in the model's prediction type (epsilon / v_prediction / sample; velocity
// noise - x0 for the flow samplers), plus a schedule built from SamplerOptions:
//   ddpm        DDPM ancestral, variance fixed_small (posterior) or fixed_large (beta)   Ho et al. 2020
//   ddim        DDIM with eta (0 deterministic, 1 = DDPM-like posterior noise)          Song et al. 2021
//   euler       Euler in k-diffusion sigma form (x = x0 + sigma eps, model input x/sqrt(sigma^2+1))
//   euler_a     Euler ancestral (sigma_up / sigma_down split of each step)
//   heun        Heun 2nd order (EDM Algorithm 1 without churn): two evaluations per step, Euler last
//   dpmpp_2m    DPM-Solver++ 2M multistep (midpoint), lower_order_final as diffusers     Lu et al. 2022
//   flow_euler  rectified-flow Euler ODE x <- x + (s_next - s) v, SD3 shift
//   flow_heun   rectified-flow Heun ODE (2 evaluations per step, Euler last)
// A sampler mirrors a diffusers scheduler: set_timesteps(n), timesteps(), sigmas(), init_noise_sigma(),
// scale_model_input(x, i) and step(model_output, i, x) where i indexes timesteps() (the i-th MODEL
// EVALUATION: heun/flow_heun list 2n - 1 of them, as diffusers' Heun schedulers do). sample() runs the
// whole loop. Everything is computed in float32 (float64 stays float64) and returned in the model
// output's dtype, on the input's device.
//
// Randomness: only through a passed at::Generator (or injected noise). Draw order in sample(): first,
// when inpainting without given noise, one randn of the known latents' shape; then, per evaluation i in
// ascending order, at most one randn of the model output's shape and dtype inside step(i):
//   ddpm when timesteps()[i] > 0 (added only when the step does not end the chain); ddim every step
//   when eta > 0; euler_a every step (also the last, whose sigma_up is 0: the stream stays diffusers').
// Noise is drawn on the generator's device and moved to the sample's, so a CPU generator gives the same
// numbers everywhere and the same numbers as torch.randn(shape, generator=g) in Python.
//
// Differences from diffusers (documented, deliberate): DDIM/DDPM step to the NEXT timestep of the list
// (diffusers' DDIM uses t - T // n, equal whenever T % n == 0 with leading/trailing spacing); DDPM adds no
// noise on the final step (diffusers adds it when t > 0, which only matters for fixed_large with
// steps_offset > 0); the inpainting blend noises the known region to the level the sample sits at after
// the step (diffusers' legacy pipeline uses the level it left) and ends on the clean known region.
//
// Ref: huggingface/diffusers 58eb52c0 src/diffusers/schedulers/{scheduling_ddpm.py, scheduling_ddim.py,
// scheduling_euler_discrete.py, scheduling_euler_ancestral_discrete.py, scheduling_heun_discrete.py,
// scheduling_dpmsolver_multistep.py, scheduling_flow_match_euler_discrete.py,
// scheduling_flow_match_heun_discrete.py}; pipelines/stable_diffusion (rescale_noise_cfg, img2img
// get_timesteps, legacy inpaint); crowsonkb/k-diffusion sampling.py; Karras et al. 2022 (EDM).
// Tests: tests/models/diffusion_schedule_test.cpp (DiffusionSampler.*), diffusion_samplers_golden_test.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "models/diffusion/noise_schedule.h"

namespace mmref::config {
class Reader;
}

namespace mmref::diffusion {

// x: the model input (scale_model_input applied), t: (B,) float32 model time on x's device
// (timesteps()[i]: a train timestep for the beta samplers, sigma * num_train_timesteps for flow).
using Denoiser = std::function<at::Tensor(const at::Tensor& x, const at::Tensor& t)>;

// One sampler's settings (diffusers' scheduler constructor names). YAML: a flat map, e.g.
//   sampler: {name: dpmpp_2m, num_inference_steps: 25, beta_schedule: scaled_linear, beta_start: 0.00085,
//             beta_end: 0.012, steps_offset: 1, timestep_spacing: leading}
// Keys that belong to another sampler (eta for euler, shift for ddim, ...) are errors.
struct SamplerOptions {
  std::string name = "ddim";  // see sampler_names()
  int64_t num_inference_steps = 50;
  BetaScheduleOptions schedule;              // keys num_train_timesteps, beta_start, beta_end, beta_schedule,
                                             // rescale_betas_zero_snr (num_train_timesteps also for flow)
  std::string prediction_type = "epsilon";   // epsilon | v_prediction | sample     (not flow)
  std::string timestep_spacing = "leading";  // leading | trailing | linspace      (not flow)
  int64_t steps_offset = 0;                  // added by leading spacing           (not flow)
  double eta = 0.0;                          // ddim
  bool set_alpha_to_one = true;              // ddim: abar before t = 0 is 1 (else abar_0)
  bool clip_sample = false;                  // ddim, ddpm: clamp x0 to +-clip_sample_range
  double clip_sample_range = 1.0;            // ddim, ddpm
  std::string variance_type = "fixed_small";  // ddpm: fixed_small | fixed_large
  int64_t solver_order = 2;                   // dpmpp_2m: 1 (DPM-Solver++ 1S = DDIM) | 2
  bool lower_order_final = true;              // dpmpp_2m: first order on the last step when < 15 steps
  bool euler_at_final = false;                // dpmpp_2m: first order on the last step always
  std::string final_sigmas_type = "zero";     // dpmpp_2m: zero | sigma_min (last sigma)
  double shift = 1.0;                         // flow_euler, flow_heun: SD3 time shift (3.0 for SD3)

  // Name, choices, ranges and consistency; throws mmref::ConfigError naming the field.
  void validate() const;
};

// Reads a sampler map (unknown keys and keys of other samplers are ConfigErrors naming file:line).
void parse(config::Reader& r, SamplerOptions& o);

// Noise for one step: `noise` when defined (e.g. the draws diffusers recorded), else one randn through
// `generator`. A step that needs noise and has neither throws.
struct StepNoise {
  std::optional<at::Generator> generator;
  at::Tensor noise;
};

// Inpainting by blending (diffusers' legacy inpaint, RePaint-free): after each step
//   x = mask * x + (1 - mask) * add_noise(known, noise, i + 1)     (the clean `known` after the last step)
struct InpaintMask {
  at::Tensor known;  // clean latents of the known image, x's shape
  at::Tensor mask;   // 1 = generate, 0 = keep known; broadcastable to x (e.g. (B, 1, H, W))
  // Noise that brings `known` to each level; drawn first through the generator when undefined.
  at::Tensor noise;
};

struct SampleOptions {
  std::optional<at::Generator> generator;  // required by stochastic samplers (and inpaint without noise)
  int64_t start_step = 0;                  // first inference step (img2img: img2img_start_step)
  const InpaintMask* inpaint = nullptr;
  std::function<void(int64_t i, const at::Tensor& x)> on_step;  // after evaluation i (previews, tests)
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions o);
  virtual ~Sampler() = default;
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  const SamplerOptions& options() const { return o_; }
  const std::string& name() const { return o_.name; }

  // Builds the inference schedule for n steps and clears multistep state. n < 1 or n > T: ConfigError.
  void set_timesteps(int64_t num_inference_steps);
  int64_t num_inference_steps() const { return n_; }
  // Model evaluations per inference step (2 for heun and flow_heun).
  virtual int64_t order() const { return 1; }
  // timesteps().numel(): n, or 2n - 1 for the Heun samplers.
  int64_t num_evaluations() const;
  // Per evaluation, diffusers' dtype: int64 (ddpm, ddim, dpmpp_2m) or float32.
  const at::Tensor& timesteps() const;
  // float32 (num_evaluations() + 1) with the final 0 (sigma_min for dpmpp_2m if chosen); undefined for
  // ddpm and ddim. Flow samplers: the interpolation s in [0, 1].
  const at::Tensor& sigmas() const { return sigmas_; }
  // Whether step() draws noise.
  virtual bool stochastic() const { return false; }
  // Std of x_T (euler, euler_a, heun: sqrt(sigma_max^2 + 1) with leading spacing, else sigma_max).
  virtual double init_noise_sigma() const { return 1.0; }
  // x_T from unit Gaussian noise: noise * init_noise_sigma().
  at::Tensor prepare_latents(const at::Tensor& unit_noise) const;
  // What the model sees at evaluation i (euler, euler_a, heun: x / sqrt(sigma_i^2 + 1); else x).
  virtual at::Tensor scale_model_input(const at::Tensor& x, int64_t i) const;
  // The denoiser's t for evaluation i: (B,) float32 timesteps()[i] on x's device.
  at::Tensor model_time(int64_t i, const at::Tensor& x) const;
  // One update (diffusers' scheduler.step): the sample after evaluation i from the model output at x.
  virtual at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                          const StepNoise& rnd = {}) = 0;
  // The forward process to the noise level of evaluation i (img2img start, inpainting).
  virtual at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const = 0;
  // Clears multistep / Heun state (set_timesteps and sample() call it).
  virtual void reset() {}
  // The beta schedule the sampler runs on (betas, alphas_cumprod); null for the flow samplers.
  virtual const NoiseSchedule* noise_schedule() const { return nullptr; }

  // The full loop from x_T (taken as is: use prepare_latents or img2img_latents) over evaluations
  // start_step * order() .. num_evaluations() - 1.
  at::Tensor sample(const Denoiser& denoiser, const at::Tensor& x_T, const SampleOptions& so = {});

 protected:
  virtual void build_schedule(int64_t n) = 0;  // fills timesteps_ and sigmas_
  void check_index(int64_t i, const char* what) const;
  // The step's noise (see StepNoise), shaped and typed like `like`.
  at::Tensor step_noise(const at::Tensor& like, const StepNoise& rnd, int64_t i) const;
  double sigma_at(int64_t i) const;  // sigmas_[i] as a double
  // The compute copy of a tensor: float32, or float64 when it is float64 (diffusers upcasts to float32).
  static at::Tensor upcast(const at::Tensor& t);

  SamplerOptions o_;
  int64_t n_ = 0;
  at::Tensor timesteps_, sigmas_;
  std::vector<double> sigma_values_;  // sigmas_ as doubles (float32 values)
};

// The names make_sampler accepts, in registry order.
const std::vector<std::string>& sampler_names();
// A sampler with set_timesteps(o.num_inference_steps) done. Unknown name: ConfigError listing the valid
// names (with a suggestion); o.name is replaced by `name`.
std::unique_ptr<Sampler> make_sampler(const std::string& name, SamplerOptions o = {});
std::unique_ptr<Sampler> make_sampler(const SamplerOptions& o);

// ---- classifier-free guidance ---------------------------------------------------------------------
// uncond + scale (cond - uncond), then, when guidance_rescale > 0, diffusers' rescale_noise_cfg:
// std-match the result to cond per sample (Lin et al. 2023 section 3.4) and mix by guidance_rescale.
at::Tensor cfg_combine(const at::Tensor& uncond, const at::Tensor& cond, double scale,
                       double guidance_rescale = 0.0);
at::Tensor rescale_noise_cfg(const at::Tensor& guided, const at::Tensor& cond, double guidance_rescale);
// A denoiser that runs `batched` once on 2B rows: x and t repeated as [x; x], [t; t]. `batched` must
// return rows 0..B-1 unconditional and B..2B-1 conditional (the order of diffusers' prompt embeddings
// cat([negative, positive]); the caller's closure carries the conditioning).
Denoiser cfg_denoiser(Denoiser batched, double scale, double guidance_rescale = 0.0);

// ---- img2img --------------------------------------------------------------------------------------
// diffusers' get_timesteps: init = min(floor(n * strength), n), start = n - init. strength in (0, 1];
// a strength that leaves no step throws.
int64_t img2img_start_step(int64_t num_inference_steps, double strength);
// The init latents noised to the first evaluation of `start_step`: add_noise(init, noise, start * order).
at::Tensor img2img_latents(const Sampler& s, const at::Tensor& init, const at::Tensor& noise,
                           int64_t start_step);

// ---- concrete samplers (make_sampler builds these) ------------------------------------------------
// DDPM / DDIM: integer train timesteps, VP sample (init_noise_sigma 1).
class VpSampler : public Sampler {
 public:
  explicit VpSampler(SamplerOptions o);
  const NoiseSchedule* noise_schedule() const override { return &schedule_; }
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const override;

 protected:
  void build_schedule(int64_t n) override;
  int64_t t_at(int64_t i) const;                 // timesteps()[i]
  int64_t prev_t(int64_t i) const;               // timesteps()[i + 1], -1 after the last
  at::Tensor x0_of(const at::Tensor& x0) const;  // clip_sample

  NoiseSchedule schedule_;
  PredictionType pred_;
};

class DdpmSampler : public VpSampler {
 public:
  using VpSampler::VpSampler;
  bool stochastic() const override { return true; }
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
};

class DdimSampler : public VpSampler {
 public:
  using VpSampler::VpSampler;
  bool stochastic() const override { return o_.eta > 0; }
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
};

// Euler, Euler ancestral, Heun: k-diffusion sigmas interpolated at float timesteps, final sigma 0.
class SigmaSampler : public Sampler {
 public:
  explicit SigmaSampler(SamplerOptions o);
  const NoiseSchedule* noise_schedule() const override { return &schedule_; }
  double init_noise_sigma() const override;
  at::Tensor scale_model_input(const at::Tensor& x, int64_t i) const override;
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const override;

 protected:
  void build_schedule(int64_t n) override;

  NoiseSchedule schedule_;
  PredictionType pred_;
  at::Tensor train_sigmas_;  // (T,) float32; abar_{T-1} = 2^-24 with zero terminal SNR, as diffusers
};

class EulerSampler : public SigmaSampler {
 public:
  using SigmaSampler::SigmaSampler;
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
};

class EulerAncestralSampler : public SigmaSampler {
 public:
  using SigmaSampler::SigmaSampler;
  bool stochastic() const override { return true; }
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
};

// sigmas [s0, s1, s1, s2, s2, ..., s_{n-1}, s_{n-1}, 0], timesteps [t0, t1, t1, ..., t_{n-1}, t_{n-1}]:
// even evaluations are Euler predictor steps, odd ones the Heun corrector of the step before.
class HeunSampler : public SigmaSampler {
 public:
  using SigmaSampler::SigmaSampler;
  int64_t order() const override { return 2; }
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
  void reset() override;

 protected:
  void build_schedule(int64_t n) override;

 private:
  int64_t pending_ = -1;  // the predictor evaluation whose corrector is due, or -1
  at::Tensor prev_derivative_, prev_sample_;
  double prev_dt_ = 0;
};

// DPM-Solver++ (data prediction) multistep, orders 1 and 2 (midpoint), on a VP sample.
class DpmSolverMultistepSampler : public Sampler {
 public:
  explicit DpmSolverMultistepSampler(SamplerOptions o);
  const NoiseSchedule* noise_schedule() const override { return &schedule_; }
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const override;
  // A step whose index is not the previous one plus one starts a new chain (history cleared).
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
  void reset() override;
  // The order the last step used (1 or 2), for tests.
  int64_t last_order() const { return last_order_; }

 protected:
  void build_schedule(int64_t n) override;

 private:
  NoiseSchedule schedule_;
  PredictionType pred_;
  at::Tensor train_sigmas_;
  std::vector<at::Tensor> x0_history_;  // newest last, at most solver_order
  int64_t lower_order_nums_ = 0, last_index_ = -1, last_order_ = 0;
};

// Rectified flow: s from sigma_max = 1 to sigma_min = shift(1 / T), diffusers' FlowMatch schedule.
class FlowSampler : public Sampler {
 public:
  explicit FlowSampler(SamplerOptions o);
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const override;

 protected:
  void build_schedule(int64_t n) override;
  float sigma_min_ = 0, sigma_max_ = 1;  // the train schedule's ends after the shift (float32, as diffusers)
};

class FlowEulerSampler : public FlowSampler {
 public:
  using FlowSampler::FlowSampler;
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
};

class FlowHeunSampler : public FlowSampler {
 public:
  using FlowSampler::FlowSampler;
  int64_t order() const override { return 2; }
  at::Tensor step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                  const StepNoise& rnd) override;
  void reset() override;

 protected:
  void build_schedule(int64_t n) override;

 private:
  int64_t pending_ = -1;
  at::Tensor prev_velocity_, prev_sample_;
  double prev_dt_ = 0;
};

}  // namespace mmref::diffusion
