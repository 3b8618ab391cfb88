// Unit tests for src/models/diffusion/noise_schedule.h and samplers.h: beta-schedule endpoints, timestep
// spacing tables, training helpers, prediction-type round trips, every sampler's single step against
// its published update written out with scalars, CFG, img2img, inpainting, determinism and errors.
// Run: build/cpu/tests/mmref_models_tests --gtest_filter='DiffusionSchedule.*:DiffusionSampler.*'
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include "core/config.h"
#include "core/error.h"
#include "models/diffusion/noise_schedule.h"
#include "models/diffusion/samplers.h"

namespace {

using namespace mmref::diffusion;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR_HAS(stmt, text)                                              \
  do {                                                                            \
    const std::string msg_ = error_of([&] { stmt; });                             \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: '" << msg_ << "'"; \
  } while (0)

at::Generator gen(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

// A (1, 2, 2, 2) tensor filled with v: steps are elementwise, so one scalar equation checks them.
at::Tensor filled(double v) { return at::full({1, 2, 2, 2}, v, at::kFloat); }

// Max |t - v| over the tensor.
double dev(const at::Tensor& t, double v) { return (t.to(at::kDouble) - v).abs().max().item<double>(); }

SamplerOptions sd_options(const std::string& name, int64_t steps, const std::string& spacing = "leading") {
  SamplerOptions o;
  o.name = name;
  o.num_inference_steps = steps;
  o.schedule.beta_schedule = "scaled_linear";
  o.schedule.beta_start = 0.00085;
  o.schedule.beta_end = 0.012;
  o.steps_offset = 1;
  o.timestep_spacing = spacing;
  return o;
}

std::vector<double> to_vec(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

// ================================================================ schedules
// T = 1000. beta_k by the schedule's formula; abar_{999} = prod_k (1 - beta_k) in double:
//   schedule            beta_0        beta_999   abar_0       abar_999
//   linear 1e-4..0.02   1.0e-4        0.02       0.9999       4.0358e-5
//   scaled_linear       8.5e-4        0.012      0.99915      4.6601e-3   (sqrt-linear: Stable Diffusion)
//   squaredcos_cap_v2   4.1284e-5     0.999 cap  0.99995872   2.4287e-9   beta_0 = 1 - abar(1/T)/abar(0)
TEST(DiffusionSchedule, BetaEndpointsForEachSchedule) {
  struct Row {
    const char* schedule;
    double start, end;
  };
  const double pi = std::acos(-1.0);
  const auto cos_abar = [&](double s) { return std::pow(std::cos((s + 0.008) / 1.008 * pi / 2), 2); };
  for (const Row& r :
       {Row{"linear", 1e-4, 0.02}, Row{"scaled_linear", 0.00085, 0.012}, Row{"squaredcos_cap_v2", 0, 0}}) {
    BetaScheduleOptions o;
    o.beta_schedule = r.schedule;
    if (r.start > 0) {
      o.beta_start = r.start;
      o.beta_end = r.end;
    }
    const NoiseSchedule s(o);
    std::vector<double> beta(1000);
    for (int k = 0; k < 1000; ++k) {
      const double f = k / 999.0;
      if (std::string(r.schedule) == "linear") beta[k] = r.start + f * (r.end - r.start);
      if (std::string(r.schedule) == "scaled_linear")
        beta[k] = std::pow(std::sqrt(r.start) + f * (std::sqrt(r.end) - std::sqrt(r.start)), 2);
      if (std::string(r.schedule) == "squaredcos_cap_v2")
        beta[k] = std::min(1 - cos_abar((k + 1) / 1000.0) / cos_abar(k / 1000.0), 0.999);
    }
    double prod = 1;
    for (double b : beta) prod *= 1 - b;
    const auto betas = to_vec(s.betas());
    ASSERT_EQ(betas.size(), 1000u) << r.schedule;
    EXPECT_NEAR(betas[0], beta[0], 1e-7 * beta[0] + 1e-12) << r.schedule;
    EXPECT_NEAR(betas[999], beta[999], 1e-6 * beta[999]) << r.schedule;
    EXPECT_NEAR(s.alpha_bar(0), 1 - beta[0], 1e-7) << r.schedule;
    EXPECT_NEAR(s.alpha_bar(999), prod, 1e-4 * prod) << r.schedule;
  }
  // The literal endpoints of the table.
  BetaScheduleOptions lin;
  EXPECT_NEAR(NoiseSchedule(lin).alpha_bar(999), 4.0358e-5, 1e-8);
  BetaScheduleOptions sd{1000, 0.00085, 0.012, "scaled_linear", false};
  EXPECT_NEAR(NoiseSchedule(sd).alpha_bar(999), 4.6601e-3, 1e-7);
  BetaScheduleOptions cosine;
  cosine.beta_schedule = "squaredcos_cap_v2";
  EXPECT_NEAR(NoiseSchedule(cosine).betas()[999].item<double>(), 0.999, 1e-7);
}

// Zero terminal SNR (Lin et al. 2023): sqrt(abar) shifted to end at 0 and scaled to keep sqrt(abar_0):
// abar_999 = 0 exactly, abar_0 unchanged, beta_999 = 1.
TEST(DiffusionSchedule, ZeroTerminalSnrRescale) {
  BetaScheduleOptions o{1000, 0.00085, 0.012, "scaled_linear", false};
  const NoiseSchedule plain(o);
  o.rescale_betas_zero_snr = true;
  const NoiseSchedule zero(o);
  EXPECT_EQ(zero.alpha_bar(999), 0.0);
  EXPECT_NEAR(zero.alpha_bar(0), plain.alpha_bar(0), 1e-6);
  EXPECT_NEAR(zero.betas()[999].item<double>(), 1.0, 1e-7);
  EXPECT_TRUE((zero.alphas_cumprod().narrow(0, 1, 999) <= zero.alphas_cumprod().narrow(0, 0, 999))
                  .all()
                  .item<bool>());
}

// T = 1000 (diffusers set_timesteps, numpy's round-half-to-even):
//   n   offset  leading               trailing                      linspace (rounded | fractional)
//   10  1       901 801 ... 101 1     999 899 ... 199 99            999 888 777 ... 111 0
//   3   0       666 333 0             999 666 332                   999 500 0  | 999 499.5 0
//   16  0       930 868 ... (r = 62)  999 937 874 811 749 ...       (937.5 -> 938, 812.5 -> 812)
TEST(DiffusionSchedule, TimestepSpacingTables) {
  using TS = TimestepSpacing;
  const auto expect_seq = [](const std::vector<double>& got, const std::vector<double>& want,
                             const char* what) {
    ASSERT_GE(got.size(), want.size()) << what;
    for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k], want[k]) << what << " at " << k;
  };
  expect_seq(spaced_timesteps(TS::kLeading, 1000, 10, 1, true),
             {901, 801, 701, 601, 501, 401, 301, 201, 101, 1}, "leading 10");
  expect_seq(spaced_timesteps(TS::kTrailing, 1000, 10, 1, true),
             {999, 899, 799, 699, 599, 499, 399, 299, 199, 99}, "trailing 10");
  expect_seq(spaced_timesteps(TS::kLinspace, 1000, 10, 1, true),
             {999, 888, 777, 666, 555, 444, 333, 222, 111, 0}, "linspace 10");
  expect_seq(spaced_timesteps(TS::kLeading, 1000, 3, 0, true), {666, 333, 0}, "leading 3");
  expect_seq(spaced_timesteps(TS::kTrailing, 1000, 3, 0, true), {999, 666, 332}, "trailing 3");
  expect_seq(spaced_timesteps(TS::kLinspace, 1000, 3, 0, true), {999, 500, 0}, "linspace 3 rounded");
  expect_seq(spaced_timesteps(TS::kLinspace, 1000, 3, 0, false), {999, 499.5, 0}, "linspace 3 fractional");
  expect_seq(spaced_timesteps(TS::kTrailing, 1000, 16, 0, true), {999, 937, 874, 811, 749}, "trailing 16");
  EXPECT_EQ(spaced_timesteps(TS::kLeading, 1000, 16, 0, true).front(), 930);  // 15 * 62
  EXPECT_EQ(spaced_timesteps(TS::kLeading, 1000, 1000, 0, true).size(), 1000u);
  EXPECT_EQ(spaced_timesteps(TS::kLinspace, 1000, 1, 0, true), std::vector<double>{0});
  EXPECT_ERROR_HAS(spaced_timesteps(TS::kLeading, 1000, 0, 0, true),
                   "num_inference_steps must be >= 1, got 0");
  EXPECT_ERROR_HAS(spaced_timesteps(TS::kLeading, 1000, 1001, 0, true), "more than num_train_timesteps 1000");
  EXPECT_ERROR_HAS(spaced_timesteps(TS::kLeading, 1000, 1000, 1, true), "gives timestep 1000");
  EXPECT_THROW(parse_timestep_spacing("leadin"), mmref::ConfigError);
}

// add_noise: x_t = sqrt(abar) x0 + sqrt(1 - abar) n; v = sqrt(abar) n - sqrt(1 - abar) x0, per sample.
TEST(DiffusionSchedule, AddNoiseVelocityAndTargets) {
  const NoiseSchedule s;  // linear 1e-4..0.02
  const at::Tensor t = at::tensor(std::vector<int64_t>{0, 500}, at::kLong);
  const at::Tensor x0 = at::full({2, 3, 4}, 0.8, at::kFloat), noise = at::full({2, 3, 4}, -0.3, at::kFloat);
  const at::Tensor xt = s.add_noise(x0, noise, t), v = s.get_velocity(x0, noise, t);
  for (int b = 0; b < 2; ++b) {
    const double a = s.alpha_bar(b == 0 ? 0 : 500);
    EXPECT_LT(dev(xt[b], std::sqrt(a) * 0.8 + std::sqrt(1 - a) * -0.3), 1e-6);
    EXPECT_LT(dev(v[b], std::sqrt(a) * -0.3 - std::sqrt(1 - a) * 0.8), 1e-6);
  }
  EXPECT_TRUE(at::equal(s.training_target(PredictionType::kEpsilon, x0, noise, t), noise));
  EXPECT_TRUE(at::equal(s.training_target(PredictionType::kSample, x0, noise, t), x0));
  EXPECT_TRUE(at::allclose(s.training_target(PredictionType::kVPrediction, x0, noise, t), v));
  // Video-shaped (B, C, F, H, W) broadcasts the same way.
  EXPECT_EQ(s.add_noise(at::zeros({2, 1, 3, 2, 2}), at::ones({2, 1, 3, 2, 2}), t).sizes(),
            (at::IntArrayRef{2, 1, 3, 2, 2}));
  EXPECT_ERROR_HAS(s.add_noise(x0, noise, at::tensor(std::vector<int64_t>{0, 1000})),
                   "must lie in [0, 1000)");
  EXPECT_ERROR_HAS(s.add_noise(x0, noise, at::tensor(std::vector<float>{0, 1})), "must be integer");
  EXPECT_ERROR_HAS(s.add_noise(x0, noise.narrow(0, 0, 1), t), "they must match");
  const at::Tensor ts = s.sample_timesteps(64, gen(3));
  EXPECT_TRUE(at::equal(ts, s.sample_timesteps(64, gen(3))));
  EXPECT_GE(ts.min().item<int64_t>(), 0);
  EXPECT_LT(ts.max().item<int64_t>(), 1000);
}

// Round trip: (x0, eps) -> model output of each type -> (x0, eps), at a VP level and in sigma form
// (x = x_t / alpha, sigma = sigma_vp / alpha).
TEST(DiffusionSchedule, PredictionTypeConversionsRoundTrip) {
  const at::Tensor x0 = at::randn({2, 3, 4, 4}, gen(1)), eps = at::randn({2, 3, 4, 4}, gen(2));
  const double ab = 0.37, a = std::sqrt(ab), s = std::sqrt(1 - ab);
  const at::Tensor xt = a * x0 + s * eps;
  for (const auto p : {PredictionType::kEpsilon, PredictionType::kVPrediction, PredictionType::kSample}) {
    const at::Tensor pred = vp_from_x0_eps(p, x0, eps, a, s);
    const X0Eps back = vp_to_x0_eps(p, pred, xt, a, s);
    EXPECT_TRUE(at::allclose(back.x0, x0, 1e-5, 1e-5)) << to_string(p);
    EXPECT_TRUE(at::allclose(back.eps, eps, 1e-5, 1e-5)) << to_string(p);
    const X0Eps tens = vp_to_x0_eps(p, pred, xt, at::scalar_tensor(a), at::scalar_tensor(s));
    EXPECT_TRUE(at::allclose(tens.x0, back.x0, 1e-6, 1e-6)) << to_string(p);
    EXPECT_TRUE(at::allclose(sigma_to_x0(p, pred, xt / a, s / a), x0, 1e-5, 1e-5)) << to_string(p);
    EXPECT_EQ(parse_prediction_type(to_string(p)), p);
  }
  const X0Eps f = flow_to_x0_noise(eps - x0, 0.3 * eps + 0.7 * x0, 0.3);
  EXPECT_TRUE(at::allclose(f.x0, x0, 1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(f.eps, eps, 1e-5, 1e-5));
  EXPECT_ERROR_HAS(parse_prediction_type("v"), "use epsilon, v_prediction or sample");
}

// Min-SNR-gamma (gamma 5), SNR = abar / (1 - abar):
//   SNR    epsilon min/SNR   v min/(SNR+1)   sample min(SNR, g)
//   > 5    5 / SNR           5 / (SNR + 1)   5
//   < 5    1                 SNR / (SNR + 1) SNR
//   0      1 (limit)         0               0
TEST(DiffusionSchedule, MinSnrGammaWeights) {
  BetaScheduleOptions o{1000, 0.00085, 0.012, "scaled_linear", true};
  const NoiseSchedule s(o);
  const at::Tensor t = at::tensor(std::vector<int64_t>{10, 800, 999}, at::kLong);
  const auto snr = to_vec(s.snr(t));
  ASSERT_GT(snr[0], 5);
  ASSERT_LT(snr[1], 5);
  EXPECT_EQ(snr[2], 0);
  for (int k = 0; k < 3; ++k)
    EXPECT_NEAR(snr[k], s.alpha_bar(t[k].item<int64_t>()) / (1 - s.alpha_bar(t[k].item<int64_t>())),
                1e-3 * snr[k]);
  const auto we = to_vec(s.min_snr_weights(t, 5, PredictionType::kEpsilon));
  const auto wv = to_vec(s.min_snr_weights(t, 5, PredictionType::kVPrediction));
  const auto wx = to_vec(s.min_snr_weights(t, 5, PredictionType::kSample));
  EXPECT_NEAR(we[0], 5 / snr[0], 1e-6);
  EXPECT_NEAR(wv[0], 5 / (snr[0] + 1), 1e-6);
  EXPECT_NEAR(wx[0], 5, 1e-6);
  EXPECT_NEAR(we[1], 1, 1e-6);
  EXPECT_NEAR(wv[1], snr[1] / (snr[1] + 1), 1e-6);
  EXPECT_NEAR(wx[1], snr[1], 1e-6);
  EXPECT_EQ(we[2], 1);
  EXPECT_EQ(wv[2], 0);
  EXPECT_EQ(wx[2], 0);
  EXPECT_ERROR_HAS(s.min_snr_weights(t, 0, PredictionType::kEpsilon), "gamma must be > 0");
}

// Flow matching: shift(s) = 3s / (1 + 2s) for shift 3: shift(0.5) = 0.75, shift(0) = 0, shift(1) = 1.
// x_s = (1 - s) x0 + s n: s = 0 -> x0, 0.25 -> 0.75 x0 + 0.25 n, 1 -> n; target n - x0.
TEST(DiffusionSchedule, FlowMatchingHelpers) {
  EXPECT_DOUBLE_EQ(flow_shift(0.5, 3.0), 0.75);
  EXPECT_DOUBLE_EQ(flow_shift(0.0, 3.0), 0.0);
  EXPECT_DOUBLE_EQ(flow_shift(1.0, 3.0), 1.0);
  EXPECT_DOUBLE_EQ(flow_shift(0.3, 1.0), 0.3);
  const at::Tensor x0 = at::full({3, 2, 2}, 2.0), n = at::full({3, 2, 2}, -1.0);
  const at::Tensor xs = flow_add_noise(x0, n, at::tensor(std::vector<float>{0, 0.25, 1}));
  EXPECT_LT(dev(xs[0], 2.0), 1e-7);
  EXPECT_LT(dev(xs[1], 0.75 * 2.0 + 0.25 * -1.0), 1e-7);
  EXPECT_LT(dev(xs[2], -1.0), 1e-7);
  EXPECT_LT(dev(flow_velocity_target(x0, n), -3.0), 1e-7);
  FlowTimestepSampling ln;
  const at::Tensor a = sample_flow_sigmas(4096, ln, gen(5));
  EXPECT_TRUE(at::equal(a, sample_flow_sigmas(4096, ln, gen(5))));
  EXPECT_GT(a.min().item<double>(), 0);
  EXPECT_LT(a.max().item<double>(), 1);
  EXPECT_NEAR(a.median().item<double>(), 0.5, 0.03);  // sigmoid(N(0, 1)) has median 1/2
  FlowTimestepSampling uni;
  uni.kind = "uniform";
  const at::Tensor u = sample_flow_sigmas(8, uni, gen(6));
  uni.shift = 3.0;
  EXPECT_TRUE(at::allclose(sample_flow_sigmas(8, uni, gen(6)), 3 * u / (1 + 2 * u)));
  uni.kind = "beta";
  EXPECT_ERROR_HAS(sample_flow_sigmas(8, uni, gen(6)), "use logit_normal or uniform");
}

// ================================================================ samplers: one step by hand
// DDIM (Song et al. eq. 12, 16), linear schedule, 10 leading steps, offset 0: t = 900, 800, ..., 0.
// Step 0 (t 900 -> 800), eps-model output e = 0.2 at x = 0.7:
//   x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t); sigma = eta sqrt((1 - a_p)/(1 - a_t)) sqrt(1 - a_t/a_p)
//   x' = sqrt(a_p) x0 + sqrt(1 - a_p - sigma^2) e + sigma z         (z = -0.4 injected)
// The last step (t 0 -> before 0) with set_alpha_to_one uses a_p = 1: x' = x0.
TEST(DiffusionSampler, DdimStepMatchesEquation) {
  SamplerOptions o;
  o.num_inference_steps = 10;
  for (double eta : {0.0, 1.0}) {
    o.eta = eta;
    auto s = make_sampler("ddim", o);
    ASSERT_EQ(to_vec(s->timesteps()), (std::vector<double>{900, 800, 700, 600, 500, 400, 300, 200, 100, 0}));
    const double a_t = s->noise_schedule()->alpha_bar(900), a_p = s->noise_schedule()->alpha_bar(800);
    const double x = 0.7, e = 0.2, z = -0.4;
    const double x0 = (x - std::sqrt(1 - a_t) * e) / std::sqrt(a_t);
    const double sig = eta * std::sqrt((1 - a_p) / (1 - a_t)) * std::sqrt(1 - a_t / a_p);
    const double want = std::sqrt(a_p) * x0 + std::sqrt(1 - a_p - sig * sig) * e + sig * z;
    const at::Tensor got = s->step(filled(e), 0, filled(x), StepNoise{std::nullopt, filled(z)});
    EXPECT_LT(dev(got, want), 1e-5) << "eta " << eta;
    const double a0 = s->noise_schedule()->alpha_bar(0);
    const double x0_last = (x - std::sqrt(1 - a0) * e) / std::sqrt(a0);
    EXPECT_LT(dev(s->step(filled(e), 9, filled(x), StepNoise{std::nullopt, filled(z)}), x0_last), 1e-5);
    EXPECT_EQ(s->stochastic(), eta > 0);
  }
  EXPECT_ERROR_HAS(make_sampler("ddim", o)->step(filled(0.2), 0, filled(0.7)),
                   "draws noise; pass a generator");
}

// DDPM ancestral (Ho et al. eq. 7), same schedule, t 900 -> 800, epsilon e at x, noise z:
//   beta = 1 - a_t / a_p;  mean = sqrt(a_p) beta / (1 - a_t) x0 + sqrt(1 - beta) (1 - a_p) / (1 - a_t) x
//   fixed_small var = (1 - a_p) / (1 - a_t) beta;  fixed_large var = beta;  x' = mean + sqrt(var) z
// The final step (t 0, a_p = 1) gives mean = x0 and adds no noise.
TEST(DiffusionSampler, DdpmStepMatchesEquation) {
  SamplerOptions o;
  o.num_inference_steps = 10;
  for (const char* vt : {"fixed_small", "fixed_large"}) {
    o.variance_type = vt;
    auto s = make_sampler("ddpm", o);
    const double a_t = s->noise_schedule()->alpha_bar(900), a_p = s->noise_schedule()->alpha_bar(800);
    const double x = -0.5, e = 0.9, z = 1.3;
    const double x0 = (x - std::sqrt(1 - a_t) * e) / std::sqrt(a_t), beta = 1 - a_t / a_p;
    const double mean =
        std::sqrt(a_p) * beta / (1 - a_t) * x0 + std::sqrt(1 - beta) * (1 - a_p) / (1 - a_t) * x;
    const double var = std::string(vt) == "fixed_small" ? (1 - a_p) / (1 - a_t) * beta : beta;
    EXPECT_LT(
        dev(s->step(filled(e), 0, filled(x), StepNoise{std::nullopt, filled(z)}), mean + std::sqrt(var) * z),
        1e-5)
        << vt;
    const double a0 = s->noise_schedule()->alpha_bar(0);
    // t = 0: no draw is needed at all (diffusers draws only for t > 0).
    EXPECT_LT(dev(s->step(filled(e), 9, filled(x)), (x - std::sqrt(1 - a0) * e) / std::sqrt(a0)), 1e-5) << vt;
  }
}

// Euler (k-diffusion), SD schedule, 10 leading steps: sigma_i = sqrt((1 - abar_t) / abar_t) at t_i.
//   input scaling x / sqrt(sigma^2 + 1); init_noise_sigma sqrt(sigma_max^2 + 1) (leading), sigma_max
//   (trailing) epsilon: x' = x + e (sigma' - sigma) v:       x0 = v (-sigma / sqrt(sigma^2 + 1)) + x /
//   (sigma^2 + 1);  x' = x + (x - x0) / sigma (sigma' - sigma)
TEST(DiffusionSampler, EulerStepMatchesEquation) {
  auto s = make_sampler("euler", sd_options("euler", 10));
  const NoiseSchedule* ns = s->noise_schedule();
  const double sig0 = std::sqrt((1 - ns->alpha_bar(901)) / ns->alpha_bar(901));
  const double sig1 = std::sqrt((1 - ns->alpha_bar(801)) / ns->alpha_bar(801));
  ASSERT_EQ(s->sigmas().numel(), 11);
  EXPECT_NEAR(s->sigmas()[0].item<double>(), sig0, 1e-5 * sig0);
  EXPECT_NEAR(s->sigmas()[1].item<double>(), sig1, 1e-5 * sig1);
  EXPECT_EQ(s->sigmas()[10].item<double>(), 0.0);
  EXPECT_NEAR(s->init_noise_sigma(), std::sqrt(sig0 * sig0 + 1), 1e-5);
  EXPECT_NEAR(make_sampler("euler", sd_options("euler", 10, "trailing"))->init_noise_sigma(),
              std::sqrt((1 - ns->alpha_bar(999)) / ns->alpha_bar(999)), 1e-4);
  const double x = 3.0, e = 0.25;
  EXPECT_LT(dev(s->scale_model_input(filled(x), 0), x / std::sqrt(sig0 * sig0 + 1)), 1e-6);
  EXPECT_LT(dev(s->step(filled(e), 0, filled(x)), x + e * (sig1 - sig0)), 1e-5);
  SamplerOptions vo = sd_options("euler", 10);
  vo.prediction_type = "v_prediction";
  auto sv = make_sampler("euler", vo);
  const double x0 = e * (-sig0 / std::sqrt(sig0 * sig0 + 1)) + x / (sig0 * sig0 + 1);
  EXPECT_LT(dev(sv->step(filled(e), 0, filled(x)), x + (x - x0) / sig0 * (sig1 - sig0)), 1e-5);
  EXPECT_LT(dev(s->add_noise(filled(0.5), filled(2.0), 3), 0.5 + 2.0 * s->sigmas()[3].item<double>()), 1e-5);
}

// Euler ancestral: sigma_up = sqrt(s'^2 (s^2 - s'^2) / s^2), sigma_down = sqrt(s'^2 - sigma_up^2),
//   x' = x + e (sigma_down - s) + z sigma_up   (epsilon e, z injected)
TEST(DiffusionSampler, EulerAncestralStepMatchesEquation) {
  auto s = make_sampler("euler_a", sd_options("euler_a", 10));
  const double s0 = s->sigmas()[2].item<double>(), s1 = s->sigmas()[3].item<double>();
  const double up = std::sqrt(s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0)), down = std::sqrt(s1 * s1 - up * up);
  const double x = 1.5, e = -0.6, z = 0.8;
  EXPECT_LT(
      dev(s->step(filled(e), 2, filled(x), StepNoise{std::nullopt, filled(z)}), x + e * (down - s0) + z * up),
      1e-5);
  EXPECT_TRUE(s->stochastic());
}

// Heun (EDM Algorithm 1, no churn), 3 steps: sigmas [s0, s1, s1, s2, s2, 0], 5 evaluations.
//   predictor (eval 0): d = e0, x~ = x + d (s1 - s0);  corrector (eval 1, model at x~, s1): d~ = e1,
//   x' = x + (d + d~)/2 (s1 - s0). The last evaluation (4) is Euler to 0: x - s2 e.
TEST(DiffusionSampler, HeunStepMatchesEquation) {
  auto s = make_sampler("heun", sd_options("heun", 3));
  ASSERT_EQ(s->num_evaluations(), 5);
  ASSERT_EQ(s->sigmas().numel(), 6);
  const auto sig = to_vec(s->sigmas());
  const auto ts = to_vec(s->timesteps());
  EXPECT_EQ(sig[1], sig[2]);
  EXPECT_EQ(sig[3], sig[4]);
  EXPECT_EQ(sig[5], 0.0);
  EXPECT_EQ(ts, (std::vector<double>{667, 334, 334, 1, 1}));  // leading r = 333, offset 1
  const double x = 2.0, e0 = 0.5, e1 = 0.3;
  const at::Tensor xp = s->step(filled(e0), 0, filled(x));
  EXPECT_LT(dev(xp, x + e0 * (sig[1] - sig[0])), 1e-5);
  EXPECT_LT(dev(s->step(filled(e1), 1, xp), x + (e0 + e1) / 2 * (sig[1] - sig[0])), 1e-5);
  EXPECT_LT(dev(s->step(filled(e0), 4, filled(x)), x - sig[3] * e0), 1e-5);
  EXPECT_ERROR_HAS(s->step(filled(e1), 3, filled(x)), "needs the predictor step 2");
  EXPECT_EQ(s->order(), 2);
}

// DPM-Solver++ 2M, SD schedule, 4 leading steps (n + 1 = 5 points, r = 200, smallest dropped):
// t = 801, 601, 401, 201.
// With alpha = 1/sqrt(s^2+1), sv = s alpha, lambda = log(alpha / sv), h = lambda' - lambda:
//   step 0 (1st order):  x' = (sv'/sv) x - alpha' (e^-h - 1) m0,      m0 = (x - sv e) / alpha
//   step 1 (2M):         r = (lambda - lambda_prev) / h, D1 = (m0 - m1) / r,
//                        x' = (sv'/sv) x - alpha' (e^-h - 1) (m0 + D1 / 2)
//   step 3 (last, final sigma 0): x' = m0
TEST(DiffusionSampler, DpmSolverPlusPlus2mMatchesEquation) {
  auto s = make_sampler("dpmpp_2m", sd_options("dpmpp_2m", 4));
  ASSERT_EQ(to_vec(s->timesteps()), (std::vector<double>{801, 601, 401, 201}));
  auto* dpm = dynamic_cast<DpmSolverMultistepSampler*>(s.get());
  ASSERT_NE(dpm, nullptr);
  const auto sig = to_vec(s->sigmas());
  const auto al = [](double v) { return 1 / std::sqrt(v * v + 1); };
  const auto lam = [&](double v) { return std::log(al(v)) - std::log(v * al(v)); };
  const double x = 4.0, e0 = 0.7, e1 = -0.2;
  const double m0 = (x - sig[0] * al(sig[0]) * e0) / al(sig[0]);
  const double h0 = lam(sig[1]) - lam(sig[0]);
  const double x1 = (sig[1] * al(sig[1])) / (sig[0] * al(sig[0])) * x - al(sig[1]) * (std::exp(-h0) - 1) * m0;
  const at::Tensor got1 = s->step(filled(e0), 0, filled(x));
  EXPECT_LT(dev(got1, x1), 1e-4);
  EXPECT_EQ(dpm->last_order(), 1);
  const double m1 = (x1 - sig[1] * al(sig[1]) * e1) / al(sig[1]);
  const double h1 = lam(sig[2]) - lam(sig[1]), r = (lam(sig[1]) - lam(sig[0])) / h1;
  const double x2 = (sig[2] * al(sig[2])) / (sig[1] * al(sig[1])) * x1 -
                    al(sig[2]) * (std::exp(-h1) - 1) * (m1 + 0.5 * (m1 - m0) / r);
  const at::Tensor got2 = s->step(filled(e1), 1, got1);
  EXPECT_LT(dev(got2, x2), 1e-4);
  EXPECT_EQ(dpm->last_order(), 2);
  const at::Tensor got3 = s->step(filled(e0), 2, got2);
  EXPECT_EQ(dpm->last_order(), 2);
  const double m3 = (got3[0][0][0][0].item<double>() - sig[3] * al(sig[3]) * e1) / al(sig[3]);
  EXPECT_LT(dev(s->step(filled(e1), 3, got3), m3), 1e-4);
  EXPECT_EQ(dpm->last_order(), 1);  // lower_order_final (final sigma 0)
  s->step(filled(e0), 1, got1);     // not the previous index + 1: a new chain, first order
  EXPECT_EQ(dpm->last_order(), 1);
}

// Flow matching, shift 1, T 1000, 10 steps: s = linspace(1000, 1, 10) / 1000 = 1, 0.889, ..., 0.001, then 0;
// timesteps = 1000 s. Euler: x' = x + (s' - s) v. Heun: x' = x + (v + v~)/2 (s' - s), the last step Euler.
// Shift 3 turns s = 0.5 into 0.75 (and shifts the already shifted sigma_min again, as diffusers).
TEST(DiffusionSampler, FlowEulerAndHeunMatchEquations) {
  SamplerOptions o;
  o.num_inference_steps = 10;
  auto e = make_sampler("flow_euler", o);
  const auto sig = to_vec(e->sigmas());
  ASSERT_EQ(sig.size(), 11u);
  EXPECT_EQ(sig[0], 1.0);
  EXPECT_NEAR(sig[1], 0.889, 1e-7);
  EXPECT_NEAR(sig[9], 0.001, 1e-9);
  EXPECT_EQ(sig[10], 0.0);
  EXPECT_NEAR(e->timesteps()[1].item<double>(), 889.0, 1e-4);
  EXPECT_EQ(e->noise_schedule(), nullptr);
  const double x = 0.4, v = -1.2, v2 = 0.5;
  EXPECT_LT(dev(e->step(filled(v), 1, filled(x)), x + (sig[2] - sig[1]) * v), 1e-6);
  EXPECT_LT(dev(e->add_noise(filled(2.0), filled(-1.0), 1), sig[1] * -1.0 + (1 - sig[1]) * 2.0), 1e-6);
  auto h = make_sampler("flow_heun", o);
  ASSERT_EQ(h->num_evaluations(), 19);
  const at::Tensor xp = h->step(filled(v), 0, filled(x));
  EXPECT_LT(dev(xp, x + (sig[1] - sig[0]) * v), 1e-6);
  EXPECT_LT(dev(h->step(filled(v2), 1, xp), x + (v + v2) / 2 * (sig[1] - sig[0])), 1e-6);
  o.shift = 3.0;
  auto e3 = make_sampler("flow_euler", o);
  const double smin = 3 * 0.001 / (1 + 2 * 0.001);
  EXPECT_NEAR(e3->sigmas()[9].item<double>(), 3 * smin / (1 + 2 * smin), 1e-7);
  o.num_inference_steps = 3;  // linspace(1000, 1000 smin, 3)[1] / 1000 = (1 + smin) / 2, then shifted
  const double mid = (1 + smin) / 2;
  EXPECT_NEAR(make_sampler("flow_euler", o)->sigmas()[1].item<double>(), 3 * mid / (1 + 2 * mid), 1e-6);
}

// ================================================================ loops, guidance, img2img, inpaint
// For data that is a single point m the exact model is known in closed form, and every sampler must end
// on m: eps = (x_vp - sqrt(abar_t) m) / sqrt(1 - abar_t) (or its v / x0 form), flow v = (x - m) / s.
TEST(DiffusionSampler, EverySamplerRecoversAPointMassWithTheExactModel) {
  const double m = 0.6;
  for (const std::string& name : sampler_names()) {
    for (const char* pred : {"epsilon", "v_prediction"}) {
      const bool flow = name.rfind("flow_", 0) == 0;
      if (flow && std::string(pred) != "epsilon") continue;
      SamplerOptions o = flow ? SamplerOptions{} : sd_options(name, 12);
      o.num_inference_steps = 12;
      if (!flow) o.prediction_type = pred;
      if (name == "ddim") o.eta = 0.5;
      auto s = make_sampler(name, o);
      const NoiseSchedule* ns = s->noise_schedule();
      const PredictionType p = flow ? PredictionType::kEpsilon : parse_prediction_type(pred);
      const Denoiser model = [&](const at::Tensor& x, const at::Tensor& t) {
        const double tv = t[0].item<double>();
        if (flow) return ((x - m) / (tv / 1000.0)).to(x.scalar_type());
        const double ab = ns->alpha_bar(static_cast<int64_t>(tv)), a = std::sqrt(ab), sg = std::sqrt(1 - ab);
        const at::Tensor x0 = at::full_like(x, m);
        return vp_from_x0_eps(p, x0, (x - a * x0) / sg, a, sg);
      };
      SampleOptions so;
      so.generator = gen(11);
      const at::Tensor xT = s->prepare_latents(at::randn({2, 3, 4, 4}, gen(10)));
      const at::Tensor out = s->sample(model, xT, so);
      EXPECT_LT(dev(out, m), 2e-3) << name << " " << pred;
    }
  }
}

// CFG: uncond 1, cond 3, scale 7.5 -> 1 + 7.5 (3 - 1) = 16, from ONE batched call on 2B rows.
// guidance_rescale phi with cond c = [1, 2, 3, 4] and guided g = 2c + 1 (std ratio 1/2):
//   phi (g / 2) + (1 - phi) g = 0.7 (c + 0.5) + 0.3 (2c + 1) = 1.3 c + 0.65 for phi 0.7.
TEST(DiffusionSampler, ClassifierFreeGuidance) {
  EXPECT_LT(dev(cfg_combine(filled(1), filled(3), 7.5), 16), 1e-6);
  int calls = 0;
  const Denoiser batched = [&](const at::Tensor& x, const at::Tensor& t) {
    ++calls;
    EXPECT_EQ(x.size(0), 4);
    EXPECT_EQ(t.size(0), 4);
    const at::Tensor rows = at::cat({at::full({2, 2, 2, 2}, 1.0), at::full({2, 2, 2, 2}, 3.0)});
    return rows + 0 * x;
  };
  const at::Tensor out = cfg_denoiser(batched, 7.5)(at::zeros({2, 2, 2, 2}), at::zeros({2}));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(out.size(0), 2);
  EXPECT_LT(dev(out, 16), 1e-6);
  const at::Tensor c = at::tensor(std::vector<float>{1, 2, 3, 4}).reshape({1, 4});
  const at::Tensor g = 2 * c + 1;
  EXPECT_TRUE(at::allclose(rescale_noise_cfg(g, c, 0.7), 1.3 * c + 0.65, 1e-5, 1e-5));
  // cfg_combine with rescale: uncond u = c - (g - c)/(s - 1) for scale s gives guided g.
  const at::Tensor u = c - (g - c) / 6.5;
  EXPECT_TRUE(at::allclose(cfg_combine(u, c, 7.5, 0.7), 1.3 * c + 0.65, 1e-4, 1e-4));
  EXPECT_ERROR_HAS(cfg_combine(filled(1), at::zeros({2}), 7.5), "must have the same shape");
}

// img2img (diffusers get_timesteps): start = n - min(floor(n strength), n).
//   n   strength  start         n   strength  start
//   10  0.75      3             50  0.8       10
//   10  1.0       0             10  0.99      1
TEST(DiffusionSampler, Img2ImgStartStepAndLatents) {
  EXPECT_EQ(img2img_start_step(10, 0.75), 3);
  EXPECT_EQ(img2img_start_step(10, 1.0), 0);
  EXPECT_EQ(img2img_start_step(50, 0.8), 10);
  EXPECT_EQ(img2img_start_step(10, 0.99), 1);
  EXPECT_ERROR_HAS(img2img_start_step(10, 0.05), "leaves no denoising step");
  EXPECT_ERROR_HAS(img2img_start_step(10, 1.5), "strength must be in (0, 1]");
  auto d = make_sampler("ddim", sd_options("ddim", 10));
  const double a = d->noise_schedule()->alpha_bar(601);  // timesteps[3]
  EXPECT_LT(dev(img2img_latents(*d, filled(0.5), filled(-1), 3), std::sqrt(a) * 0.5 - std::sqrt(1 - a)),
            1e-6);
  auto h = make_sampler("heun", sd_options("heun", 10));
  const double sig = h->sigmas()[6].item<double>();  // evaluation 2 * 3
  EXPECT_LT(dev(img2img_latents(*h, filled(0.5), filled(-1), 3), 0.5 - sig), 1e-5);
  // The loop runs the remaining evaluations only: 7 steps -> 7 * 2 - 1 Heun evaluations.
  int calls = 0;
  SampleOptions so;
  so.start_step = 3;
  h->sample(
      [&](const at::Tensor& x, const at::Tensor&) {
        ++calls;
        return 0 * x;
      },
      filled(0.1), so);
  EXPECT_EQ(calls, 13);
}

// Inpainting keeps the known region (mask 0) exactly and generates the rest (mask 1).
TEST(DiffusionSampler, InpaintKeepsKnownRegion) {
  auto s = make_sampler("euler_a", sd_options("euler_a", 8));
  const at::Tensor known = at::randn({1, 4, 6, 6}, gen(20));
  at::Tensor mask = at::zeros({1, 1, 6, 6});
  mask.narrow(3, 3, 3).fill_(1);
  InpaintMask im{known, mask, at::Tensor()};
  SampleOptions so;
  so.generator = gen(21);
  so.inpaint = &im;
  const at::Tensor out = s->sample([](const at::Tensor& x, const at::Tensor&) { return 0.1 * x; },
                                   s->prepare_latents(at::randn({1, 4, 6, 6}, gen(22))), so);
  EXPECT_TRUE(at::equal(out.narrow(3, 0, 3), known.narrow(3, 0, 3)));
  EXPECT_GT((out.narrow(3, 3, 3) - known.narrow(3, 3, 3)).abs().max().item<double>(), 1e-3);
  InpaintMask bad{known.narrow(2, 0, 3), mask, at::Tensor()};
  so.inpaint = &bad;
  EXPECT_ERROR_HAS(s->sample([](const at::Tensor& x, const at::Tensor&) { return x; }, filled(0), so),
                   "inpaint known has shape");
}

// Same seed, same samples; the draws are the documented stream (euler_a: one randn of the output's
// shape per evaluation), so a manual loop that injects them reproduces sample().
TEST(DiffusionSampler, DeterministicGivenTheGenerator) {
  const Denoiser model = [](const at::Tensor& x, const at::Tensor& t) {
    return 0.3 * x + 1e-4 * t.view({-1, 1, 1, 1});
  };
  for (const char* name : {"euler_a", "ddpm", "ddim"}) {
    SamplerOptions o = sd_options(name, 6);
    o.eta = std::string(name) == "ddim" ? 1.0 : 0.0;
    auto s = make_sampler(name, o);
    const at::Tensor xT = s->prepare_latents(at::randn({2, 4, 4, 4}, gen(1)));
    SampleOptions a, b, c;
    a.generator = gen(42);
    b.generator = gen(42);
    c.generator = gen(43);
    const at::Tensor ya = s->sample(model, xT, a), yb = s->sample(model, xT, b), yc = s->sample(model, xT, c);
    EXPECT_TRUE(at::equal(ya, yb)) << name;
    EXPECT_FALSE(at::equal(ya, yc)) << name;
  }
  auto s = make_sampler("euler_a", sd_options("euler_a", 6));
  const at::Tensor xT = at::randn({2, 4, 4, 4}, gen(1));
  SampleOptions a;
  a.generator = gen(42);
  const at::Tensor ya = s->sample(model, xT, a);
  at::Generator g = gen(42);
  at::Tensor x = xT;
  for (int64_t i = 0; i < s->num_evaluations(); ++i) {
    const at::Tensor out = model(s->scale_model_input(x, i), s->model_time(i, x));
    x = s->step(out, i, x, StepNoise{std::nullopt, at::randn(x.sizes(), g)});
  }
  EXPECT_TRUE(at::equal(ya, x));
  EXPECT_ERROR_HAS(s->sample(model, xT), "is stochastic; pass SampleOptions.generator");
}

// ================================================================ registry, options, errors
TEST(DiffusionSampler, RegistryAndOptionErrors) {
  for (const std::string& n : sampler_names()) EXPECT_EQ(make_sampler(n)->name(), n);
  EXPECT_ERROR_HAS(make_sampler("eulr"),
                   "unknown sampler 'eulr' (did you mean 'euler'?); valid: ddim, ddpm, euler");
  EXPECT_THROW(make_sampler("dpm++"), mmref::ConfigError);
  SamplerOptions o;
  o.num_inference_steps = 0;
  EXPECT_ERROR_HAS(make_sampler("ddim", o), "num_inference_steps must be >= 1, got 0");
  o.num_inference_steps = 1001;
  EXPECT_ERROR_HAS(make_sampler("euler", o),
                   "num_inference_steps 1001 is more than num_train_timesteps 1000");
  auto s = make_sampler("ddim");
  EXPECT_ERROR_HAS(s->set_timesteps(0), "must be >= 1");
  EXPECT_ERROR_HAS(s->step(filled(0), 50, filled(0)), "step index 50 is outside [0, 50)");
  EXPECT_ERROR_HAS(s->step(at::zeros({2}), 0, filled(0)), "must match");
  SamplerOptions z = sd_options("ddim", 10);
  z.schedule.rescale_betas_zero_snr = true;
  EXPECT_ERROR_HAS(make_sampler("ddim", z), "needs prediction_type v_prediction or sample");
  z.prediction_type = "v_prediction";
  EXPECT_NO_THROW(make_sampler("ddim", z));
  SamplerOptions d = sd_options("dpmpp_2m", 1000);
  EXPECT_ERROR_HAS(make_sampler("dpmpp_2m", d), "supports at most 999 steps");
  auto e = make_sampler("euler");
  EXPECT_ERROR_HAS(e->sample(Denoiser(), filled(0)), "needs a denoiser");
  EXPECT_ERROR_HAS(e->sample([](const at::Tensor&, const at::Tensor&) { return at::zeros({3}); }, filled(0)),
                   "the denoiser returned shape [3]");
}

TEST(DiffusionSampler, ParsesOptionsFromYaml) {
  using mmref::config::Reader;
  const auto n = mmref::config::parse_yaml(
      "name: dpmpp_2m\nnum_inference_steps: 25\nbeta_schedule: scaled_linear\nbeta_start: 0.00085\n"
      "beta_end: 0.012\nsteps_offset: 1\ntimestep_spacing: trailing\nprediction_type: v_prediction\n"
      "solver_order: 2\nfinal_sigmas_type: sigma_min\n",
      "sampler.yaml");
  Reader r(&n, "", nullptr);
  SamplerOptions o;
  parse(r, o);
  EXPECT_EQ(o.name, "dpmpp_2m");
  EXPECT_EQ(o.num_inference_steps, 25);
  EXPECT_EQ(o.schedule.beta_schedule, "scaled_linear");
  EXPECT_EQ(o.timestep_spacing, "trailing");
  EXPECT_EQ(o.final_sigmas_type, "sigma_min");
  auto s = make_sampler(o);
  EXPECT_EQ(s->num_inference_steps(), 25);
  EXPECT_GT(s->sigmas()[25].item<double>(), 0);  // sigma_min, not 0
  struct Bad {
    const char* yaml;
    const char* text;
  };
  for (const Bad& b :
       {Bad{"name: eulr\n", "did you mean 'euler'"}, Bad{"name: euler\neta: 0.5\n", "applies only to ddim"},
        Bad{"name: ddim\nshift: 3\n", "applies only to flow_euler, flow_heun"},
        Bad{"name: flow_euler\nbeta_schedule: linear\n", "the non-flow samplers"},
        Bad{"name: ddim\netaa: 0.5\n", "etaa"}, Bad{"name: ddim\neta: 2\n", "eta"},
        Bad{"name: dpmpp_2m\nsolver_order: 3\n", "solver_order"},
        Bad{"name: ddim\ntimestep_spacing: lead\n", "timestep_spacing"},
        Bad{"name: ddpm\nvariance_type: learned\n", "variance_type"},
        Bad{"name: ddim\nnum_inference_steps: 2000\n", "more than num_train_timesteps"}}) {
    const auto nb = mmref::config::parse_yaml(b.yaml, "bad.yaml");
    Reader rb(&nb, "", nullptr);
    SamplerOptions ob;
    const std::string msg = error_of([&] { parse(rb, ob); });
    EXPECT_NE(msg.find(b.text), std::string::npos) << b.yaml << " -> '" << msg << "'";
    EXPECT_THROW(parse(rb, ob), mmref::ConfigError) << b.yaml;
  }
}

}  // namespace
