// k-diffusion sigma-form samplers on a beta schedule: Euler, Euler ancestral, Heun (see samplers.h).
// The sample is x = x0 + sigma eps (x_T ~ N(0, sigma_max^2 + 1) with leading spacing, as diffusers'
// init_noise_sigma); the model sees x / sqrt(sigma^2 + 1), the VP sample at that noise level.
//   Euler:    d = (x - x0) / sigma;  x' = x + d (sigma_next - sigma)
//   Euler a:  sigma_up = sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2),
//             sigma_down = sqrt(sigma_next^2 - sigma_up^2);  x' = x + d (sigma_down - sigma) + z sigma_up
//   Heun:     predictor x~ = x + d (sigma_next - sigma); corrector d~ at (x~, sigma_next),
//             x' = x + (d + d~) / 2 (sigma_next - sigma); the step to sigma 0 is Euler only
// Ref: diffusers scheduling_euler_discrete.py, scheduling_euler_ancestral_discrete.py,
// scheduling_heun_discrete.py; k-diffusion sampling.py (sample_euler, sample_euler_ancestral,
// sample_heun, get_ancestral_step); Karras et al. 2022 Algorithm 1.
#include <algorithm>
#include <cmath>

#include <ATen/Functions.h>
#include <fmt/format.h>

#include "core/error.h"
#include "models/diffusion/samplers.h"

namespace mmref::diffusion {

SigmaSampler::SigmaSampler(SamplerOptions o)
    : Sampler(std::move(o)), schedule_(o_.schedule), pred_(parse_prediction_type(o_.prediction_type)) {
  at::Tensor ac = schedule_.alphas_cumprod().clone();
  // Zero terminal SNR makes sigma_{T-1} infinite; diffusers' Euler/DPM set abar_{T-1} = 2^-24 instead.
  if (o_.schedule.rescale_betas_zero_snr) ac[-1] = std::pow(2.0, -24);
  train_sigmas_ = ((1 - ac) / ac).pow(0.5);
}

void SigmaSampler::build_schedule(int64_t n) {
  const auto ts =
      spaced_timesteps(parse_timestep_spacing(o_.timestep_spacing), o_.schedule.num_train_timesteps, n,
                       o_.steps_offset, /*round_linspace=*/false);
  std::vector<float> t(ts.size()), s(ts.size() + 1, 0.0f);
  for (size_t k = 0; k < ts.size(); ++k) {
    t[k] = static_cast<float>(ts[k]);  // diffusers keeps float32 timesteps and interpolates at those
    s[k] = static_cast<float>(interp_table(train_sigmas_, static_cast<double>(t[k])));
  }
  timesteps_ = at::tensor(t, at::TensorOptions().dtype(at::kFloat));
  sigmas_ = at::tensor(s, at::TensorOptions().dtype(at::kFloat));
}

double SigmaSampler::init_noise_sigma() const {
  const float m = sigmas_.max().item<float>();
  if (o_.timestep_spacing == "leading") return static_cast<double>(std::sqrt(m * m + 1.0f));
  return static_cast<double>(m);
}

at::Tensor SigmaSampler::scale_model_input(const at::Tensor& x, int64_t i) const {
  check_index(i, "scale_model_input");
  const double s = sigma_at(i);
  return x / std::sqrt(s * s + 1);
}

at::Tensor SigmaSampler::add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const {
  check_index(i, "add_noise");
  TORCH_CHECK(x0.sizes() == noise.sizes(), "add_noise: x0 ", x0.sizes(), " and noise ", noise.sizes(),
              " must have the same shape");
  return x0 + noise * sigma_at(i);
}

at::Tensor EulerSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                              const StepNoise&) {
  check_index(i, "step");
  const double sigma = sigma_at(i), sigma_next = sigma_at(i + 1);
  const at::Tensor xs = upcast(x);
  const at::Tensor x0 = sigma_to_x0(pred_, upcast(model_output), xs, sigma);
  const at::Tensor d = (xs - x0) / sigma;  // the ODE derivative dx/dsigma
  return (xs + d * (sigma_next - sigma)).to(model_output.scalar_type());
}

at::Tensor EulerAncestralSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                                       const StepNoise& rnd) {
  check_index(i, "step");
  const double sigma = sigma_at(i), sigma_to = sigma_at(i + 1);
  const double sigma_up =
      std::sqrt(sigma_to * sigma_to * (sigma * sigma - sigma_to * sigma_to) / (sigma * sigma));
  const double sigma_down = std::sqrt(std::max(sigma_to * sigma_to - sigma_up * sigma_up, 0.0));
  const at::Tensor xs = upcast(x);
  const at::Tensor x0 = sigma_to_x0(pred_, upcast(model_output), xs, sigma);
  const at::Tensor d = (xs - x0) / sigma;
  at::Tensor prev = xs + d * (sigma_down - sigma);
  prev = prev + upcast(step_noise(model_output, rnd, i)) * sigma_up;  // drawn every step (diffusers' stream)
  return prev.to(model_output.scalar_type());
}

void HeunSampler::build_schedule(int64_t n) {
  SigmaSampler::build_schedule(n);
  // [s0, s1, s1, ..., s_{n-1}, s_{n-1}, 0] and [t0, t1, t1, ..., t_{n-1}, t_{n-1}] (diffusers' Heun).
  const at::Tensor s = sigmas_, t = timesteps_;
  sigmas_ = at::cat({s.narrow(0, 0, 1), s.narrow(0, 1, n - 1).repeat_interleave(2), s.narrow(0, n, 1)});
  timesteps_ = at::cat({t.narrow(0, 0, 1), t.narrow(0, 1, n - 1).repeat_interleave(2)});
}

void HeunSampler::reset() {
  pending_ = -1;
  prev_derivative_ = at::Tensor();
  prev_sample_ = at::Tensor();
  prev_dt_ = 0;
}

at::Tensor HeunSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                             const StepNoise&) {
  check_index(i, "step");
  const at::Tensor xs = upcast(x), out = upcast(model_output);
  if (i % 2 == 0) {  // predictor: Euler from sigmas[i] to sigmas[i + 1]
    const double sigma = sigma_at(i), sigma_next = sigma_at(i + 1);
    const at::Tensor d = (xs - sigma_to_x0(pred_, out, xs, sigma)) / sigma;
    const double dt = sigma_next - sigma;
    if (i + 1 < num_evaluations()) {
      pending_ = i;
      prev_derivative_ = d;
      prev_sample_ = xs;
      prev_dt_ = dt;
    } else {
      reset();  // the last step (to sigma 0) is Euler only
    }
    return (xs + d * dt).to(model_output.scalar_type());
  }
  // Corrector: the model was evaluated at the predictor's result x~ at sigma_next = sigmas[i].
  if (pending_ != i - 1) {
    MMREF_FAIL("sampler 'heun': evaluation {} is a corrector and needs the predictor step {} just before it",
               i, i - 1);
  }
  const double sigma_next = sigma_at(i);
  const at::Tensor d2 = (xs - sigma_to_x0(pred_, out, xs, sigma_next)) / sigma_next;
  const at::Tensor prev = prev_sample_ + (prev_derivative_ + d2) / 2 * prev_dt_;
  reset();
  return prev.to(model_output.scalar_type());
}

}  // namespace mmref::diffusion
