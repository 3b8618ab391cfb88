// Beta schedules, prediction-type conversions, timestep spacing and flow-matching helpers (see the header).
#include "models/diffusion/noise_schedule.h"

#include <algorithm>
#include <cmath>

#include <ATen/Functions.h>
#include <c10/util/StringUtil.h>
#include <fmt/format.h>

#include "core/error.h"

namespace mmref::diffusion {
namespace {

constexpr double kPi = 3.14159265358979323846;  // math.pi

[[noreturn]] void config_fail(const std::string& what) { throw ConfigError(what); }

// Shape (B, 1, ..., 1) for broadcasting a per-sample value against x of rank x.dim().
std::vector<int64_t> per_sample_shape(const at::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  return shape;
}

void check_same_shape(const at::Tensor& a, const at::Tensor& b, const char* an, const char* bn) {
  if (a.sizes() != b.sizes()) {
    MMREF_FAIL("diffusion: {} has shape {} but {} has shape {}; they must match", an, c10::str(a.sizes()), bn,
               c10::str(b.sizes()));
  }
}

}  // namespace

BetaSchedule parse_beta_schedule(const std::string& name) {
  if (name == "linear") return BetaSchedule::kLinear;
  if (name == "scaled_linear") return BetaSchedule::kScaledLinear;
  if (name == "squaredcos_cap_v2") return BetaSchedule::kSquaredCosCapV2;
  config_fail(
      fmt::format("beta_schedule '{}' is unknown; use linear, scaled_linear or squaredcos_cap_v2", name));
}

PredictionType parse_prediction_type(const std::string& name) {
  if (name == "epsilon") return PredictionType::kEpsilon;
  if (name == "v_prediction") return PredictionType::kVPrediction;
  if (name == "sample") return PredictionType::kSample;
  config_fail(fmt::format("prediction_type '{}' is unknown; use epsilon, v_prediction or sample", name));
}

TimestepSpacing parse_timestep_spacing(const std::string& name) {
  if (name == "leading") return TimestepSpacing::kLeading;
  if (name == "trailing") return TimestepSpacing::kTrailing;
  if (name == "linspace") return TimestepSpacing::kLinspace;
  config_fail(fmt::format("timestep_spacing '{}' is unknown; use leading, trailing or linspace", name));
}

const char* to_string(PredictionType p) {
  switch (p) {
    case PredictionType::kEpsilon:
      return "epsilon";
    case PredictionType::kVPrediction:
      return "v_prediction";
    case PredictionType::kSample:
      return "sample";
  }
  return "?";
}

void BetaScheduleOptions::validate() const {
  if (num_train_timesteps < 2) {
    config_fail(fmt::format("num_train_timesteps must be >= 2, got {}", num_train_timesteps));
  }
  const BetaSchedule s = parse_beta_schedule(beta_schedule);
  if (s != BetaSchedule::kSquaredCosCapV2) {
    if (!(beta_start > 0 && beta_start < 1) || !(beta_end > 0 && beta_end < 1)) {
      config_fail(fmt::format("beta_start {} and beta_end {} must lie in (0, 1)", beta_start, beta_end));
    }
    if (beta_end < beta_start) {
      config_fail(
          fmt::format("beta_end {} is below beta_start {}; betas must not decrease", beta_end, beta_start));
    }
  }
}

at::Tensor make_betas(const BetaScheduleOptions& o) {
  o.validate();
  const int64_t n = o.num_train_timesteps;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor betas;
  switch (parse_beta_schedule(o.beta_schedule)) {
    case BetaSchedule::kLinear:
      betas = at::linspace(o.beta_start, o.beta_end, n, f32);
      break;
    case BetaSchedule::kScaledLinear:
      // The latent-diffusion schedule: linear in sqrt(beta), computed in float32 exactly as diffusers.
      betas = at::linspace(std::sqrt(o.beta_start), std::sqrt(o.beta_end), n, f32).pow(2);
      break;
    case BetaSchedule::kSquaredCosCapV2: {
      // betas_for_alpha_bar: double precision, capped at max_beta 0.999, stored as float32.
      const auto abar = [](double s) {
        const double c = std::cos((s + 0.008) / 1.008 * kPi / 2);
        return c * c;
      };
      std::vector<float> b(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        const double t1 = static_cast<double>(i) / static_cast<double>(n);
        const double t2 = static_cast<double>(i + 1) / static_cast<double>(n);
        b[static_cast<size_t>(i)] = static_cast<float>(std::min(1 - abar(t2) / abar(t1), 0.999));
      }
      betas = at::tensor(b, f32);
      break;
    }
  }
  if (o.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  return betas;
}

at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas) {
  TORCH_CHECK(betas.dim() == 1 && betas.numel() >= 2,
              "rescale_zero_terminal_snr: betas must be 1-D with >= 2 entries, got shape ", betas.sizes());
  const at::Tensor alphas_cumprod = at::cumprod(1.0 - betas, 0);
  at::Tensor sqrt_ab = alphas_cumprod.sqrt();
  const at::Tensor first = sqrt_ab[0].clone();
  const at::Tensor last = sqrt_ab[-1].clone();
  sqrt_ab = (sqrt_ab - last) * (first / (first - last));  // abar_0 kept, abar_{T-1} = 0
  const at::Tensor ab = sqrt_ab.pow(2);
  const at::Tensor alphas =
      at::cat({ab.narrow(0, 0, 1), ab.narrow(0, 1, ab.size(0) - 1) / ab.narrow(0, 0, ab.size(0) - 1)});
  return 1 - alphas;
}

// ---------------------------------------------------------------- NoiseSchedule
NoiseSchedule::NoiseSchedule(const BetaScheduleOptions& o) : num_train_timesteps_(o.num_train_timesteps) {
  betas_ = make_betas(o);
  alphas_cumprod_ = at::cumprod(1.0 - betas_, 0);
}

double NoiseSchedule::alpha_bar(int64_t t) const {
  if (t < 0 || t >= num_train_timesteps_) {
    MMREF_FAIL("diffusion: timestep {} is outside [0, {}); timesteps index the train schedule", t,
               num_train_timesteps_);
  }
  return static_cast<double>(alphas_cumprod_.data_ptr<float>()[t]);
}

at::Tensor NoiseSchedule::sigmas() const { return ((1 - alphas_cumprod_) / alphas_cumprod_).pow(0.5); }

at::Tensor NoiseSchedule::gather(const at::Tensor& t, int64_t batch) const {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == batch, "diffusion: timesteps t must have shape (B,) = (", batch,
              ",), got ", t.sizes());
  TORCH_CHECK(!at::isFloatingType(t.scalar_type()),
              "diffusion: timesteps t must be integer (int64) indices, got ", t.scalar_type());
  const at::Tensor tc = t.to(at::kCPU, at::kLong);
  const int64_t lo = tc.min().item<int64_t>(), hi = tc.max().item<int64_t>();
  if (lo < 0 || hi >= num_train_timesteps_) {
    MMREF_FAIL("diffusion: timesteps span [{}, {}] but must lie in [0, {})", lo, hi, num_train_timesteps_);
  }
  return alphas_cumprod_.index_select(0, tc);
}

at::Tensor NoiseSchedule::coef(const at::Tensor& t, const at::Tensor& like) const {
  return gather(t, like.size(0)).to(like.device(), like.scalar_type()).reshape(per_sample_shape(like));
}

at::Tensor NoiseSchedule::add_noise(const at::Tensor& x0, const at::Tensor& noise,
                                    const at::Tensor& t) const {
  check_same_shape(x0, noise, "x0", "noise");
  const at::Tensor ab = coef(t, x0);  // (B, 1, ...)
  return ab.sqrt() * x0 + (1 - ab).sqrt() * noise;
}

at::Tensor NoiseSchedule::get_velocity(const at::Tensor& x0, const at::Tensor& noise,
                                       const at::Tensor& t) const {
  check_same_shape(x0, noise, "x0", "noise");
  const at::Tensor ab = coef(t, x0);
  return ab.sqrt() * noise - (1 - ab).sqrt() * x0;
}

at::Tensor NoiseSchedule::training_target(PredictionType p, const at::Tensor& x0, const at::Tensor& noise,
                                          const at::Tensor& t) const {
  switch (p) {
    case PredictionType::kEpsilon:
      return noise;
    case PredictionType::kVPrediction:
      return get_velocity(x0, noise, t);
    case PredictionType::kSample:
      return x0;
  }
  return {};
}

at::Tensor NoiseSchedule::snr(const at::Tensor& t) const {
  const at::Tensor ab = gather(t, t.dim() == 1 ? t.size(0) : -1);
  return (ab / (1 - ab)).to(t.device());
}

at::Tensor NoiseSchedule::min_snr_weights(const at::Tensor& t, double gamma, PredictionType p) const {
  if (!(gamma > 0))
    MMREF_FAIL("diffusion: min-SNR gamma must be > 0 (5 is the paper's choice), got {}", gamma);
  const at::Tensor s = snr(t);
  const at::Tensor clipped = at::clamp_max(s, gamma);
  switch (p) {
    case PredictionType::kEpsilon:
      return at::where(s > 0, clipped / s, at::ones_like(s));
    case PredictionType::kVPrediction:
      return clipped / (s + 1);
    case PredictionType::kSample:
      return clipped;
  }
  return {};
}

at::Tensor NoiseSchedule::sample_timesteps(int64_t batch, at::Generator gen) const {
  TORCH_CHECK(batch >= 1, "diffusion: sample_timesteps batch must be >= 1, got ", batch);
  return at::randint(num_train_timesteps_, {batch}, c10::optional<at::Generator>(gen),
                     at::TensorOptions().dtype(at::kLong));
}

// ---------------------------------------------------------------- conversions
X0Eps vp_to_x0_eps(PredictionType p, const at::Tensor& pred, const at::Tensor& x_t, const at::Tensor& alpha,
                   const at::Tensor& sigma) {
  check_same_shape(pred, x_t, "model output", "sample");
  switch (p) {
    case PredictionType::kEpsilon:
      return {(x_t - sigma * pred) / alpha, pred};
    case PredictionType::kVPrediction:
      return {alpha * x_t - sigma * pred, sigma * x_t + alpha * pred};
    case PredictionType::kSample:
      return {pred, (x_t - alpha * pred) / sigma};
  }
  return {};
}

X0Eps vp_to_x0_eps(PredictionType p, const at::Tensor& pred, const at::Tensor& x_t, double alpha,
                   double sigma) {
  check_same_shape(pred, x_t, "model output", "sample");
  switch (p) {
    case PredictionType::kEpsilon:
      return {(x_t - sigma * pred) / alpha, pred};
    case PredictionType::kVPrediction:
      return {alpha * x_t - sigma * pred, sigma * x_t + alpha * pred};
    case PredictionType::kSample:
      return {pred, (x_t - alpha * pred) / sigma};
  }
  return {};
}

at::Tensor vp_from_x0_eps(PredictionType p, const at::Tensor& x0, const at::Tensor& eps, double alpha,
                          double sigma) {
  switch (p) {
    case PredictionType::kEpsilon:
      return eps;
    case PredictionType::kVPrediction:
      return alpha * eps - sigma * x0;
    case PredictionType::kSample:
      return x0;
  }
  return {};
}

at::Tensor sigma_to_x0(PredictionType p, const at::Tensor& pred, const at::Tensor& x, double sigma) {
  check_same_shape(pred, x, "model output", "sample");
  switch (p) {
    case PredictionType::kEpsilon:
      return x - sigma * pred;
    case PredictionType::kVPrediction:
      return pred * (-sigma / std::sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
    case PredictionType::kSample:
      return pred;
  }
  return {};
}

// ---------------------------------------------------------------- spacing
void check_num_inference_steps(int64_t n, int64_t num_train_timesteps, const std::string& who) {
  if (n < 1) config_fail(fmt::format("{}: num_inference_steps must be >= 1, got {}", who, n));
  if (n > num_train_timesteps) {
    config_fail(
        fmt::format("{}: num_inference_steps {} is more than num_train_timesteps {}; the model was trained "
                    "on {} timesteps, use at most that many steps",
                    who, n, num_train_timesteps, num_train_timesteps));
  }
}

std::vector<double> spaced_timesteps(TimestepSpacing spacing, int64_t num_train_timesteps, int64_t n,
                                     int64_t steps_offset, bool round_linspace) {
  check_num_inference_steps(n, num_train_timesteps, "timestep spacing");
  const double T = static_cast<double>(num_train_timesteps);
  std::vector<double> ts(static_cast<size_t>(n));
  switch (spacing) {
    case TimestepSpacing::kLeading: {
      const int64_t ratio = num_train_timesteps / n;
      for (int64_t k = 0; k < n; ++k)
        ts[static_cast<size_t>(k)] = static_cast<double>((n - 1 - k) * ratio + steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing: {
      const double ratio = T / static_cast<double>(n);
      for (int64_t k = 0; k < n; ++k)
        ts[static_cast<size_t>(k)] = std::nearbyint(T - static_cast<double>(k) * ratio) - 1;
      break;
    }
    case TimestepSpacing::kLinspace: {
      // np.linspace(0, T - 1, n): k * step, the last point exactly T - 1 (a single point is 0).
      const double step = n > 1 ? (T - 1) / static_cast<double>(n - 1) : 0.0;
      for (int64_t k = 0; k < n; ++k) {
        double v = (k == n - 1 && n > 1) ? T - 1 : static_cast<double>(k) * step;
        if (round_linspace) v = std::nearbyint(v);
        ts[static_cast<size_t>(n - 1 - k)] = v;
      }
      break;
    }
  }
  for (double t : ts) {
    if (t < 0 || t > T - 1) {
      config_fail(
          fmt::format("timestep spacing gives timestep {} for {} steps (steps_offset {}), outside [0, {}); "
                      "lower steps_offset or num_inference_steps",
                      t, n, steps_offset, num_train_timesteps));
    }
  }
  return ts;
}

double interp_table(const at::Tensor& table, double x) {
  TORCH_CHECK(table.dim() == 1 && table.numel() >= 1, "interp_table: table must be 1-D and non-empty");
  const at::Tensor t = table.to(at::kCPU, at::kDouble).contiguous();
  const double* v = t.data_ptr<double>();
  const int64_t n = t.numel();
  if (x <= 0) return v[0];
  if (x >= static_cast<double>(n - 1)) return v[n - 1];
  const auto i = static_cast<int64_t>(std::floor(x));
  const double f = x - static_cast<double>(i);
  return f == 0 ? v[i] : v[i] + (v[i + 1] - v[i]) * f;
}

// ---------------------------------------------------------------- flow matching
double flow_shift(double s, double shift) { return shift * s / (1 + (shift - 1) * s); }

at::Tensor flow_shift(const at::Tensor& s, double shift) { return shift * s / (1 + (shift - 1) * s); }

at::Tensor flow_add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& s) {
  check_same_shape(x0, noise, "x0", "noise");
  TORCH_CHECK(s.dim() == 1 && s.size(0) == x0.size(0), "flow_add_noise: s must have shape (B,) = (",
              x0.size(0), ",), got ", s.sizes());
  const at::Tensor c = s.to(x0.device(), x0.scalar_type()).reshape(per_sample_shape(x0));
  return (1 - c) * x0 + c * noise;
}

at::Tensor flow_velocity_target(const at::Tensor& x0, const at::Tensor& noise) {
  check_same_shape(x0, noise, "x0", "noise");
  return noise - x0;
}

X0Eps flow_to_x0_noise(const at::Tensor& v, const at::Tensor& x_s, double s) {
  check_same_shape(v, x_s, "model output", "sample");
  return {x_s - s * v, x_s + (1 - s) * v};
}

at::Tensor sample_flow_sigmas(int64_t batch, const FlowTimestepSampling& o, at::Generator gen) {
  TORCH_CHECK(batch >= 1, "sample_flow_sigmas: batch must be >= 1, got ", batch);
  if (!(o.shift > 0)) config_fail(fmt::format("flow timestep sampling: shift must be > 0, got {}", o.shift));
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor s;
  if (o.kind == "logit_normal") {
    if (!(o.logit_std > 0))
      config_fail(fmt::format("flow timestep sampling: logit_std must be > 0, got {}", o.logit_std));
    s = at::sigmoid(at::randn({batch}, c10::optional<at::Generator>(gen), f32) * o.logit_std + o.logit_mean);
  } else if (o.kind == "uniform") {
    s = at::rand({batch}, c10::optional<at::Generator>(gen), f32);
  } else {
    config_fail(fmt::format("flow timestep sampling '{}' is unknown; use logit_normal or uniform", o.kind));
  }
  return flow_shift(s, o.shift);
}

}  // namespace mmref::diffusion
