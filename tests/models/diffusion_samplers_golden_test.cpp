// mmref's samplers against diffusers' schedulers (../shared/golden/diffusers_schedulers, README there):
// for every variant of case.json (DDIM eta 0/1, DPM-Solver++ 2M, Euler, Euler ancestral with leading
// and trailing spacing; FlowMatch Euler shift 1 and 3) the sampler is built from the variant's diffusers
// config through parse(), then timesteps (exact), sigmas and alphas_cumprod (atol 1e-6, rtol 1e-5),
// init_noise_sigma, and per step the scaled model input and the sample (atol 1e-4, rtol 1e-4, chained
// from mmref's own previous sample) are compared. Stochastic variants inject the recorded noise, and
// separately run from the recorded seed through an at::Generator to show the draw order is diffusers'.
// Run: MMREF_GOLDEN_DIR=../shared/golden build/cpu/tests/mmref_models_tests
// --gtest_filter='DiffusersSchedulersGolden.*'
#include <gtest/gtest.h>

#include "../golden_test_util.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/safetensors.h"
#include "models/diffusion/samplers.h"

namespace {

using namespace mmref::diffusion;

struct Tol {
  double atol, rtol;
};
constexpr Tol kScheduleTol{1e-6, 1e-5};  // case.json suggested_tolerance
constexpr Tol kSampleTol{1e-4, 1e-4};

// max(|got - want| - (atol + rtol |want|)): <= 0 passes.
double excess(const at::Tensor& got, const at::Tensor& want, Tol t) {
  const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
  return ((g - w).abs() - (t.atol + t.rtol * w.abs())).max().item<double>();
}

double max_abs(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
}

std::string sampler_for(const std::string& cls) {
  if (cls == "DDIMScheduler") return "ddim";
  if (cls == "DPMSolverMultistepScheduler") return "dpmpp_2m";
  if (cls == "EulerDiscreteScheduler") return "euler";
  if (cls == "EulerAncestralDiscreteScheduler") return "euler_a";
  if (cls == "FlowMatchEulerDiscreteScheduler") return "flow_euler";
  return "";
}

// The variant's diffusers constructor config (plus step eta) as a sampler YAML map, through parse().
SamplerOptions options_from(const nlohmann::json& v, int64_t steps) {
  namespace config = mmref::config;
  config::Node n = config::Node::map();
  n.set("name", config::Node::scalar(sampler_for(v.at("class").get<std::string>())));
  n.set("num_inference_steps", config::Node::scalar(std::to_string(steps)));
  for (const auto& [k, val] : v.at("config").items()) {
    if (k == "algorithm_type") {
      EXPECT_EQ(val.get<std::string>(), "dpmsolver++");  // the only DPM algorithm mmref implements
      continue;
    }
    n.set(k, config::Node::scalar(val.is_string() ? val.get<std::string>() : val.dump()));
  }
  for (const auto& [k, val] : v.at("step_kwargs").items()) n.set(k, config::Node::scalar(val.dump()));
  config::Reader r(&n, "", nullptr);
  SamplerOptions o;
  parse(r, o);
  return o;
}

struct Fixture {
  std::string dir;
  nlohmann::json j;
  std::map<std::string, at::Tensor> io;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.dir = mmref::test::golden_path("diffusers_schedulers");
    std::ifstream in(x.dir + "/case.json");
    x.j = nlohmann::json::parse(in);
    x.io = mmref::load_safetensors(x.dir + "/io.safetensors");
    return x;
  }();
  return f;
}

struct Errors {
  double sigmas = 0, alphas_cumprod = 0, init_noise_sigma = 0, scaled = 0, samples = 0;
};

// Steps the sampler through the recorded model outputs; `noise_of(i)` gives step i's StepNoise.
Errors run_variant(const std::string& v, Sampler& s, const std::function<StepNoise(int64_t)>& noise_of) {
  const Fixture& f = fixture();
  const std::string p = "output." + v + ".";
  const at::Tensor outs = f.io.at("input.model_outputs"), scaled = f.io.at(p + "scaled_inputs"),
                   samples = f.io.at(p + "samples");
  Errors e;
  at::Tensor x = f.io.at("input.sample");
  for (int64_t i = 0; i < s.num_evaluations(); ++i) {
    const at::Tensor in = s.scale_model_input(x, i);
    EXPECT_LE(excess(in, scaled[i], kSampleTol), 0) << v << " scaled input " << i;
    e.scaled = std::max(e.scaled, max_abs(in, scaled[i]));
    x = s.step(outs[i], i, x, noise_of(i));
    EXPECT_LE(excess(x, samples[i], kSampleTol), 0) << v << " sample after step " << i;
    e.samples = std::max(e.samples, max_abs(x, samples[i]));
  }
  return e;
}

TEST(DiffusersSchedulersGolden, EveryVariantMatchesStepByStep) {
  const std::string dir = mmref::test::golden_path("diffusers_schedulers");
  MMREF_REQUIRE_GOLDEN(dir);
  const Fixture& f = fixture();
  const auto& variants = f.j.at("variants");
  ASSERT_EQ(variants.size(), 12u);
  for (const auto& [v, spec] : variants.items()) {
    SCOPED_TRACE(v);
    const SamplerOptions o = options_from(spec, 10);
    auto s = make_sampler(o);
    const std::string p = "output." + v + ".";
    Errors e;
    // Timesteps: exact, in diffusers' dtype (int64 for DDIM/DPM, float32 for Euler-type and FlowMatch).
    const at::Tensor want_t = f.io.at(p + "timesteps");
    EXPECT_EQ(s->timesteps().scalar_type(), want_t.scalar_type());
    EXPECT_TRUE(at::equal(s->timesteps(), want_t)) << s->timesteps() << "\nwant\n" << want_t;
    const auto json_t = spec.at("timesteps").get<std::vector<double>>();
    for (size_t k = 0; k < json_t.size(); ++k) EXPECT_EQ(s->timesteps()[k].item<double>(), json_t[k]) << k;
    if (f.io.count(p + "sigmas")) {
      ASSERT_TRUE(s->sigmas().defined());
      EXPECT_LE(excess(s->sigmas(), f.io.at(p + "sigmas"), kScheduleTol), 0);
      e.sigmas = max_abs(s->sigmas(), f.io.at(p + "sigmas"));
    }
    if (f.io.count(p + "alphas_cumprod")) {
      ASSERT_NE(s->noise_schedule(), nullptr);
      const at::Tensor& ac = s->noise_schedule()->alphas_cumprod();
      EXPECT_LE(excess(ac, f.io.at(p + "alphas_cumprod"), kScheduleTol), 0);
      e.alphas_cumprod = max_abs(ac, f.io.at(p + "alphas_cumprod"));
    }
    const double want_ins = f.io.at(p + "init_noise_sigma").item<double>();
    EXPECT_NEAR(s->init_noise_sigma(), want_ins, kScheduleTol.atol + kScheduleTol.rtol * want_ins);
    e.init_noise_sigma = std::abs(s->init_noise_sigma() - want_ins);
    const bool stochastic = spec.at("stochastic").get<bool>();
    EXPECT_EQ(s->stochastic(), stochastic);
    const at::Tensor noise = stochastic ? f.io.at(p + "noise") : at::Tensor();
    const Errors r = run_variant(v, *s, [&](int64_t i) {
      return StepNoise{std::nullopt, stochastic ? noise[i] : at::Tensor()};
    });
    e.scaled = r.scaled;
    e.samples = r.samples;
    std::cout << fmt::format(
        "[golden] {:<26} max|d| sigmas {:.2e}  alphas_cumprod {:.2e}  init_noise_sigma {:.2e}  "
        "scaled_inputs {:.2e}  samples {:.2e} (ref max {:.1f})\n",
        v, e.sigmas, e.alphas_cumprod, e.init_noise_sigma, e.scaled, e.samples,
        f.io.at(p + "samples").abs().max().item<double>());
  }
}

// The stochastic variants again, drawing through at::Generator seeded as diffusers was (one generator
// passed to every step): the draws are the recorded noise exactly, so the samples match too.
TEST(DiffusersSchedulersGolden, SeededGeneratorReproducesDiffusersNoise) {
  const std::string dir = mmref::test::golden_path("diffusers_schedulers");
  MMREF_REQUIRE_GOLDEN(dir);
  const Fixture& f = fixture();
  int checked = 0;
  for (const auto& [v, spec] : f.j.at("variants").items()) {
    if (!spec.at("stochastic").get<bool>()) continue;
    SCOPED_TRACE(v);
    std::smatch m;
    const std::string text = spec.at("noise").get<std::string>();
    ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(manual_seed\((\d+)\))"))) << text;
    const uint64_t seed = std::stoull(m[1].str());
    at::Generator check = at::detail::createCPUGenerator(seed);
    const at::Tensor recorded = f.io.at("output." + v + ".noise");
    for (int64_t i = 0; i < recorded.size(0); ++i) {
      EXPECT_TRUE(at::equal(at::randn(recorded[i].sizes(), check), recorded[i])) << "draw " << i;
    }
    auto s = make_sampler(options_from(spec, 10));
    at::Generator g = at::detail::createCPUGenerator(seed);
    const Errors e = run_variant(v, *s, [&](int64_t) { return StepNoise{g, at::Tensor()}; });
    std::cout << fmt::format("[golden] {:<26} seeded generator: samples max|d| {:.2e}\n", v, e.samples);
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

}  // namespace
