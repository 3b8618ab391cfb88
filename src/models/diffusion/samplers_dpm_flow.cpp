// DPM-Solver++ multistep (1st and 2nd order) and the rectified-flow Euler / Heun ODE samplers.
//
// DPM-Solver++ (data prediction, Lu et al. 2022 "DPM-Solver++", Algorithm 2 with the midpoint 2M
// variant diffusers defaults to). With alpha = 1 / sqrt(sigma^2 + 1), sigma_vp = sigma alpha,
// lambda = log(alpha) - log(sigma_vp), h = lambda_next - lambda_cur and the model's x0 estimates m0 (now)
// and m1 (the step before):
//   1st order: x' = (sigma_vp_next / sigma_vp_cur) x - alpha_next (e^{-h} - 1) m0
//   2M:        r0 = (lambda_cur - lambda_prev) / h,  D1 = (m0 - m1) / r0
//              x' = (sigma_vp_next / sigma_vp_cur) x - alpha_next (e^{-h} - 1) (m0 + D1 / 2)
// The first step of a chain is 1st order, and so is the last when lower_order_final (< 15 steps),
// euler_at_final, or final_sigmas_type zero (sigma 0: lambda = +inf, e^{-h} = 0, x' = m0).
//
// Flow matching (diffusers' FlowMatchEulerDiscreteScheduler): the train schedule s_k = k / T shifted
// gives sigma_max = 1 and sigma_min = shift(1 / T) (float32); set_timesteps(n) takes
// linspace(sigma_max T, sigma_min T, n) / T and shifts AGAIN (diffusers applies the shift to the already
// shifted ends; kept for bit-compatibility), timesteps = s * T, final s = 0. Euler: x' = x + (s' - s) v.
// Heun: predictor with v, corrector with the average of v and v~ at (x~, s'); the step to 0 is Euler.
// Ref: diffusers scheduling_dpmsolver_multistep.py, scheduling_flow_match_euler_discrete.py,
// scheduling_flow_match_heun_discrete.py.
#include <cmath>
#include <utility>

#include <ATen/Functions.h>
#include <fmt/format.h>

#include "core/error.h"
#include "models/diffusion/samplers.h"

namespace mmref::diffusion {
namespace {

// (alpha, sigma_vp) of the VP sample at k-diffusion sigma s.
std::pair<double, double> vp_of_sigma(double s) {
  const double a = 1 / std::sqrt(s * s + 1);
  return {a, s * a};
}

}  // namespace

// ---------------------------------------------------------------- DPM-Solver++
DpmSolverMultistepSampler::DpmSolverMultistepSampler(SamplerOptions o)
    : Sampler(std::move(o)), schedule_(o_.schedule), pred_(parse_prediction_type(o_.prediction_type)) {
  at::Tensor ac = schedule_.alphas_cumprod().clone();
  if (o_.schedule.rescale_betas_zero_snr) ac[-1] = std::pow(2.0, -24);  // as diffusers: finite sigma_{T-1}
  train_sigmas_ = ((1 - ac) / ac).pow(0.5);
}

void DpmSolverMultistepSampler::build_schedule(int64_t n) {
  const int64_t T = o_.schedule.num_train_timesteps;
  const TimestepSpacing spacing = parse_timestep_spacing(o_.timestep_spacing);
  std::vector<double> ts;
  if (spacing == TimestepSpacing::kTrailing) {
    ts = spaced_timesteps(spacing, T, n, o_.steps_offset, /*round_linspace=*/true);
  } else {
    // diffusers spaces n + 1 points and drops the smallest (t = 0 before the offset).
    if (n + 1 > T) {
      throw ConfigError(
          fmt::format("sampler 'dpmpp_2m': {} spacing supports at most {} steps (it spaces n + 1 "
                      "points), got {}; use trailing or fewer steps",
                      o_.timestep_spacing, T - 1, n));
    }
    ts = spaced_timesteps(spacing, T, n + 1, o_.steps_offset, /*round_linspace=*/true);
    ts.pop_back();
  }
  std::vector<int64_t> ti(ts.size());
  std::vector<float> s(ts.size() + 1);
  for (size_t k = 0; k < ts.size(); ++k) {
    ti[k] = static_cast<int64_t>(ts[k]);
    s[k] = static_cast<float>(interp_table(train_sigmas_, ts[k]));
  }
  s.back() = o_.final_sigmas_type == "zero" ? 0.0f : train_sigmas_[0].item<float>();
  timesteps_ = at::tensor(ti, at::TensorOptions().dtype(at::kLong));
  sigmas_ = at::tensor(s, at::TensorOptions().dtype(at::kFloat));
}

void DpmSolverMultistepSampler::reset() {
  x0_history_.clear();
  lower_order_nums_ = 0;
  last_index_ = -1;
  last_order_ = 0;
}

at::Tensor DpmSolverMultistepSampler::add_noise(const at::Tensor& x0, const at::Tensor& noise,
                                                int64_t i) const {
  check_index(i, "add_noise");
  TORCH_CHECK(x0.sizes() == noise.sizes(), "add_noise: x0 ", x0.sizes(), " and noise ", noise.sizes(),
              " must have the same shape");
  const auto [alpha, sigma] = vp_of_sigma(sigma_at(i));
  return alpha * x0 + sigma * noise;
}

at::Tensor DpmSolverMultistepSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                                           const StepNoise&) {
  check_index(i, "step");
  if (x0_history_.empty() || i != last_index_ + 1) reset();  // a new chain (e.g. img2img from step i)
  const int64_t e = num_evaluations();
  const bool lower_final =
      i == e - 1 && (o_.euler_at_final || (o_.lower_order_final && e < 15) || o_.final_sigmas_type == "zero");
  const at::Tensor xs = upcast(x);
  const auto [alpha_s0, sigma_s0] = vp_of_sigma(sigma_at(i));
  const auto [alpha_t, sigma_t] = vp_of_sigma(sigma_at(i + 1));
  x0_history_.push_back(vp_to_x0_eps(pred_, upcast(model_output), xs, alpha_s0, sigma_s0).x0);
  if (static_cast<int64_t>(x0_history_.size()) > o_.solver_order) x0_history_.erase(x0_history_.begin());
  const double lambda_t = std::log(alpha_t) - std::log(sigma_t);  // +inf at sigma 0
  const double lambda_s0 = std::log(alpha_s0) - std::log(sigma_s0);
  const double h = lambda_t - lambda_s0;
  const double phi = alpha_t * (std::exp(-h) - 1.0);
  const at::Tensor& m0 = x0_history_.back();
  at::Tensor prev;
  if (o_.solver_order == 1 || lower_order_nums_ < 1 || lower_final) {
    prev = (sigma_t / sigma_s0) * xs - phi * m0;
    last_order_ = 1;
  } else {
    const auto [alpha_s1, sigma_s1] = vp_of_sigma(sigma_at(i - 1));
    const double lambda_s1 = std::log(alpha_s1) - std::log(sigma_s1);
    const double r0 = (lambda_s0 - lambda_s1) / h;
    const at::Tensor d1 = (1.0 / r0) * (m0 - x0_history_[x0_history_.size() - 2]);
    prev = (sigma_t / sigma_s0) * xs - phi * m0 - 0.5 * phi * d1;
    last_order_ = 2;
  }
  if (lower_order_nums_ < o_.solver_order) ++lower_order_nums_;
  last_index_ = i;
  return prev.to(model_output.scalar_type());
}

// ---------------------------------------------------------------- flow matching
FlowSampler::FlowSampler(SamplerOptions o) : Sampler(std::move(o)) {
  // The train schedule's ends in float32 as diffusers' __init__ computes them: s = t / T for t = T .. 1.
  const auto T = static_cast<float>(o_.schedule.num_train_timesteps);
  const auto sh = static_cast<float>(o_.shift), sh1 = static_cast<float>(o_.shift - 1);
  const float lo = 1.0f / T, hi = T / T;
  sigma_min_ = sh * lo / (1.0f + sh1 * lo);
  sigma_max_ = sh * hi / (1.0f + sh1 * hi);
}

void FlowSampler::build_schedule(int64_t n) {
  const auto T = static_cast<double>(o_.schedule.num_train_timesteps);
  const double start = static_cast<double>(sigma_max_) * T, stop = static_cast<double>(sigma_min_) * T;
  const double step = n > 1 ? (stop - start) / static_cast<double>(n - 1) : 0.0;
  std::vector<float> s(static_cast<size_t>(n) + 1, 0.0f), t(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const double v = (n > 1 && k == n - 1) ? stop : static_cast<double>(k) * step + start;  // np.linspace
    s[static_cast<size_t>(k)] = static_cast<float>(flow_shift(v / T, o_.shift));
    t[static_cast<size_t>(k)] = s[static_cast<size_t>(k)] * static_cast<float>(T);  // float32, as diffusers
  }
  timesteps_ = at::tensor(t, at::TensorOptions().dtype(at::kFloat));
  sigmas_ = at::tensor(s, at::TensorOptions().dtype(at::kFloat));
}

at::Tensor FlowSampler::add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t i) const {
  check_index(i, "add_noise");
  TORCH_CHECK(x0.sizes() == noise.sizes(), "add_noise: x0 ", x0.sizes(), " and noise ", noise.sizes(),
              " must have the same shape");
  const double s = sigma_at(i);
  return s * noise + (1.0 - s) * x0;
}

at::Tensor FlowEulerSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                                  const StepNoise&) {
  check_index(i, "step");
  const double dt = sigma_at(i + 1) - sigma_at(i);
  return (upcast(x) + dt * upcast(model_output)).to(model_output.scalar_type());
}

void FlowHeunSampler::build_schedule(int64_t n) {
  FlowSampler::build_schedule(n);
  const at::Tensor s = sigmas_, t = timesteps_;
  sigmas_ = at::cat({s.narrow(0, 0, 1), s.narrow(0, 1, n - 1).repeat_interleave(2), s.narrow(0, n, 1)});
  timesteps_ = at::cat({t.narrow(0, 0, 1), t.narrow(0, 1, n - 1).repeat_interleave(2)});
}

void FlowHeunSampler::reset() {
  pending_ = -1;
  prev_velocity_ = at::Tensor();
  prev_sample_ = at::Tensor();
  prev_dt_ = 0;
}

at::Tensor FlowHeunSampler::step(const at::Tensor& model_output, int64_t i, const at::Tensor& x,
                                 const StepNoise&) {
  check_index(i, "step");
  const at::Tensor xs = upcast(x), v = upcast(model_output);
  if (i % 2 == 0) {  // predictor
    const double dt = sigma_at(i + 1) - sigma_at(i);
    if (i + 1 < num_evaluations()) {
      pending_ = i;
      prev_velocity_ = v;
      prev_sample_ = xs;
      prev_dt_ = dt;
    } else {
      reset();
    }
    return (xs + dt * v).to(model_output.scalar_type());
  }
  if (pending_ != i - 1) {
    MMREF_FAIL(
        "sampler 'flow_heun': evaluation {} is a corrector and needs the predictor step {} just before it", i,
        i - 1);
  }
  const at::Tensor prev = prev_sample_ + prev_dt_ * ((prev_velocity_ + v) / 2);
  reset();
  return prev.to(model_output.scalar_type());
}

}  // namespace mmref::diffusion
