// Noise schedules for image/video diffusion: discrete variance-preserving (DDPM) beta schedules and
// rectified-flow (flow matching) interpolation, with everything the samplers and the trainer share:
//   betas        linear            linspace(beta_start, beta_end, T)                        (float32)
//                scaled_linear     linspace(sqrt(beta_start), sqrt(beta_end), T)^2          (float32)
//                squaredcos_cap_v2 beta_i = min(1 - abar(i+1/T) / abar(i/T), 0.999),
//                                  abar(s) = cos((s + 0.008) / 1.008 * pi/2)^2  (Nichol & Dhariwal)
//                optional rescale to zero terminal SNR (Lin et al. 2023, Algorithm 1)
//   alphas_cumprod abar_t = prod_{i<=t} (1 - beta_i), float32 as diffusers computes it
//   x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps;  v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0
//   k-diffusion form: x = x0 + sigma eps with sigma_t = sqrt((1 - abar_t) / abar_t), x = x_t / sqrt(abar_t)
//   flow matching: x_s = (1 - s) x0 + s noise, velocity target noise - x0, SD3 shift
//                  s' = shift s / (1 + (shift - 1) s), logit-normal or uniform training s
// Prediction types (epsilon, v_prediction, sample) are converted to x0 / eps in ONE place (vp_to_x0_eps
// and sigma_to_x0 below); samplers and training targets go through these.
// Timestep spacing "leading" / "trailing" / "linspace" with steps_offset exactly as diffusers'
// set_timesteps defines them (table in spaced_timesteps' comment).
//
// Ref: huggingface/diffusers 58eb52c0 src/diffusers/schedulers/scheduling_ddim.py (betas_for_alpha_bar,
// rescale_zero_terminal_snr, set_timesteps), scheduling_euler_discrete.py (sigmas, interpolation),
// scheduling_flow_match_euler_discrete.py; examples/text_to_image/train_text_to_image.py (min-SNR);
// Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy" (2023); Esser et al.,
// "Scaling Rectified Flow Transformers" (SD3, 2024: logit-normal sampling, shift).
// Tests: tests/models/diffusion_schedule_test.cpp (DiffusionSchedule.*), diffusion_samplers_golden_test.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace mmref::diffusion {

enum class BetaSchedule { kLinear, kScaledLinear, kSquaredCosCapV2 };
enum class PredictionType { kEpsilon, kVPrediction, kSample };
enum class TimestepSpacing { kLeading, kTrailing, kLinspace };

// Name <-> enum; unknown names throw mmref::ConfigError listing the valid ones.
BetaSchedule parse_beta_schedule(const std::string& name);
PredictionType parse_prediction_type(const std::string& name);
TimestepSpacing parse_timestep_spacing(const std::string& name);
const char* to_string(PredictionType p);

// diffusers' scheduler constructor arguments for the beta schedule (its defaults).
struct BetaScheduleOptions {
  int64_t num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  std::string beta_schedule = "linear";  // linear | scaled_linear | squaredcos_cap_v2
  bool rescale_betas_zero_snr = false;

  // Range checks; throws mmref::ConfigError naming the field.
  void validate() const;
};

// (T,) float32 CPU betas, rescaled to zero terminal SNR when asked.
at::Tensor make_betas(const BetaScheduleOptions& o);
// Lin et al. 2023 Algorithm 1: shifts and scales sqrt(abar) so that abar_{T-1} = 0 and abar_0 is kept.
at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas);

// The discrete VP schedule: betas and alphas_cumprod (float32 CPU, as diffusers), plus the training
// helpers. Timestep tensors `t` are int64 (B,) with values in [0, T); coefficients broadcast over the
// trailing dims of x0 (any rank >= 1: images (B, C, H, W), video (B, C, F, H, W)).
class NoiseSchedule {
 public:
  explicit NoiseSchedule(const BetaScheduleOptions& o = {});

  int64_t num_train_timesteps() const { return num_train_timesteps_; }
  const at::Tensor& betas() const { return betas_; }
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }
  // abar_t as a double (the float32 table value); t in [0, T) or an mmref::Error.
  double alpha_bar(int64_t t) const;
  // (T,) float32 k-diffusion sigmas sqrt((1 - abar) / abar), computed in float32 as diffusers does.
  at::Tensor sigmas() const;

  // Forward process at per-sample timesteps t (B,): sqrt(abar_t) x0 + sqrt(1 - abar_t) noise.
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;
  // v target: sqrt(abar_t) noise - sqrt(1 - abar_t) x0.
  at::Tensor get_velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;
  // What a model of prediction type p is trained to output: noise, v, or x0.
  at::Tensor training_target(PredictionType p, const at::Tensor& x0, const at::Tensor& noise,
                             const at::Tensor& t) const;
  // SNR_t = abar_t / (1 - abar_t), (B,) float32.
  at::Tensor snr(const at::Tensor& t) const;
  // Min-SNR-gamma weights (B,) for an MSE on the prediction type's own target (Hang et al. 2023, as
  // diffusers' train_text_to_image): epsilon min(SNR, g) / SNR, v_prediction min(SNR, g) / (SNR + 1),
  // sample min(SNR, g). At SNR 0 (zero-terminal-SNR schedules) epsilon takes its limit 1.
  at::Tensor min_snr_weights(const at::Tensor& t, double gamma, PredictionType p) const;
  // Uniform training timesteps (B,) int64 in [0, T), drawn through `gen` (one randint call).
  at::Tensor sample_timesteps(int64_t batch, at::Generator gen) const;

 private:
  // alphas_cumprod[t] (B,) float32 CPU after checking t (shape (batch,), integer, in [0, T)).
  at::Tensor gather(const at::Tensor& t, int64_t batch) const;
  // alphas_cumprod[t] as (B, 1, ..., 1) for broadcasting against `like`, on its device and dtype.
  at::Tensor coef(const at::Tensor& t, const at::Tensor& like) const;

  int64_t num_train_timesteps_;
  at::Tensor betas_, alphas_cumprod_;
};

// ---- prediction-type conversions (the one place) ------------------------------------------------
// VP form x_t = alpha x0 + sigma eps (alpha = sqrt(abar), sigma = sqrt(1 - abar); tensors broadcastable
// against x_t, or 0-d):
//   epsilon:       x0 = (x_t - sigma pred) / alpha                eps = pred
//   v_prediction:  x0 = alpha x_t - sigma pred                     eps = sigma x_t + alpha pred
//   sample:        x0 = pred                                       eps = (x_t - alpha pred) / sigma
struct X0Eps {
  at::Tensor x0, eps;
};
X0Eps vp_to_x0_eps(PredictionType p, const at::Tensor& pred, const at::Tensor& x_t, const at::Tensor& alpha,
                   const at::Tensor& sigma);
X0Eps vp_to_x0_eps(PredictionType p, const at::Tensor& pred, const at::Tensor& x_t, double alpha,
                   double sigma);
// The model output a model of type p gives for a known (x0, eps) at (alpha, sigma): the inverse map.
at::Tensor vp_from_x0_eps(PredictionType p, const at::Tensor& x0, const at::Tensor& eps, double alpha,
                          double sigma);
// k-diffusion sigma form x = x0 + sigma eps (the model saw x / sqrt(sigma^2 + 1)), as diffusers' Euler:
//   epsilon:      x0 = x - sigma pred
//   v_prediction: x0 = pred * (-sigma / sqrt(sigma^2 + 1)) + x / (sigma^2 + 1)
//   sample:       x0 = pred
at::Tensor sigma_to_x0(PredictionType p, const at::Tensor& pred, const at::Tensor& x, double sigma);

// ---- timestep spacing ---------------------------------------------------------------------------
// The inference timesteps (descending) for n steps out of T train timesteps, as diffusers:
//   leading:  r = T / n (integer division); t_k = k r + steps_offset, k = n-1 .. 0
//   trailing: r = T / n (real);            t_k = round(T - k r) - 1,  k = 0 .. n-1
//   linspace: t_k = linspace(0, T - 1, n) reversed; rounded when `round_linspace` (DDIM, DDPM,
//             DPM-Solver), fractional for the sigma samplers (Euler, Heun)
// e.g. T 1000, n 10, offset 1: leading 901 801 ... 1; trailing 999 899 ... 99; linspace 999 888 ... 0.
// round() is half-to-even, as numpy. Errors (mmref::ConfigError): n < 1, n > T, a timestep outside
// [0, T) (leading with a steps_offset too large).
std::vector<double> spaced_timesteps(TimestepSpacing spacing, int64_t num_train_timesteps, int64_t n,
                                     int64_t steps_offset, bool round_linspace);
// Throws the n < 1 / n > T errors naming `who`.
void check_num_inference_steps(int64_t n, int64_t num_train_timesteps, const std::string& who);
// np.interp(x, [0, 1, ..., len-1], table) for x in [0, len-1] (clamped outside), in double.
double interp_table(const at::Tensor& table, double x);

// ---- flow matching (rectified flow) ---------------------------------------------------------------
// SD3 time shift s' = shift s / (1 + (shift - 1) s); shift 1 is the identity.
double flow_shift(double s, double shift);
at::Tensor flow_shift(const at::Tensor& s, double shift);
// x_s = (1 - s) x0 + s noise with per-sample s (B,) in [0, 1].
at::Tensor flow_add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& s);
// The velocity target d x_s / d s = noise - x0.
at::Tensor flow_velocity_target(const at::Tensor& x0, const at::Tensor& noise);
// From a velocity v at x_s: x0 = x_s - s v, noise = x_s + (1 - s) v (s a double or broadcastable tensor).
X0Eps flow_to_x0_noise(const at::Tensor& v, const at::Tensor& x_s, double s);

struct FlowTimestepSampling {
  std::string kind = "logit_normal";  // logit_normal | uniform
  double logit_mean = 0.0;            // logit_normal: s = sigmoid(mean + std * N(0, 1))
  double logit_std = 1.0;
  double shift = 1.0;  // applied after drawing (SD3's shift for high resolutions)
};
// Training s (B,) float32 in (0, 1), one randn (logit_normal) or rand (uniform) call through `gen`,
// then flow_shift. Throws mmref::ConfigError for an unknown kind or std <= 0 / shift <= 0.
at::Tensor sample_flow_sigmas(int64_t batch, const FlowTimestepSampling& o, at::Generator gen);

}  // namespace mmref::diffusion
