// SpecAugment, speed perturbation and loudness normalisation.
//   SpecAugment on ones(100, 80): the cells at mask_value are exactly the union of the reported masks;
//     counts = num_freq_masks + num_time_masks; widths <= F, <= min(T, ratio * frames); same seed =
//     same output; time warp keeps the shape
//   speed_perturb: T = 16000 -> 0.9: ceil(16000 / 0.9) = 17778, 1.1: ceil(16000 / 1.1) = 14546, 1.0: 16000
//     a 1000 Hz tone played 1.1x faster peaks at 1100 Hz
//   loudness: RMS reaches the target within 0.1 dB (no limiting); the peak limit holds when it binds
//   build/<dir>/tests/mmref_data_tests --gtest_filter='SpecAugment*:Resample*:Loudness*'
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <cmath>

#include "core/config.h"
#include "core/error.h"
#include "data/features/resample.h"
#include "data/features/spec_augment.h"

namespace mmref::data {
namespace {

TEST(SpecAugmentUnit, MasksMatchReportAndLimits) {
  SpecAugmentOptions o;
  o.num_freq_masks = 2;
  o.freq_mask_width = 10;
  o.num_time_masks = 3;
  o.time_mask_width = 40;
  o.time_mask_max_ratio = 0.2;  // 0.2 * 100 = 20 < 40
  o.mask_value = -5.0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(seed);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    std::vector<SpecMask> masks;
    const at::Tensor x = at::ones({100, 80});
    const at::Tensor y = spec_augment(x, o, gen, &masks);
    ASSERT_EQ(y.sizes(), x.sizes());
    ASSERT_EQ(masks.size(), 5u);
    at::Tensor expect = at::zeros({100, 80}, at::kBool);
    int nf = 0, nt = 0;
    for (const auto& m : masks) {
      if (m.axis == 1) {
        ++nf;
        EXPECT_LE(m.width, 10);
        EXPECT_LE(m.start + m.width, 80);
        expect.slice(1, m.start, m.start + m.width).fill_(true);
      } else {
        ++nt;
        EXPECT_LE(m.width, 20);
        EXPECT_LE(m.start + m.width, 100);
        expect.slice(0, m.start, m.start + m.width).fill_(true);
      }
      EXPECT_GE(m.width, 0);
      EXPECT_GE(m.start, 0);
    }
    EXPECT_EQ(nf, 2);
    EXPECT_EQ(nt, 3);
    EXPECT_TRUE(at::equal(y == -5.0, expect));
    EXPECT_TRUE((y.masked_select(expect.logical_not()) == 1.0).all().item<bool>());
    EXPECT_TRUE(at::equal(x, at::ones({100, 80})));  // input untouched
  }
}

TEST(SpecAugmentUnit, DeterministicForSeed) {
  SpecAugmentOptions o;
  o.time_warp = 5;
  auto rnd = at::make_generator<at::CPUGeneratorImpl>(99);
  const at::Tensor x = at::randn({200, 80}, rnd, at::kFloat);
  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(7);
  at::Generator g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  at::Generator g3 = at::make_generator<at::CPUGeneratorImpl>(8);
  const at::Tensor a = spec_augment(x, o, g1), b = spec_augment(x, o, g2), c = spec_augment(x, o, g3);
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::equal(a, c));
}

TEST(SpecAugmentUnit, TimeWarpKeepsShapeAndEnds) {
  auto rnd = at::make_generator<at::CPUGeneratorImpl>(1);
  // A ramp along time: warping keeps it monotone and keeps the first frame.
  const at::Tensor x = at::arange(100, at::kFloat).unsqueeze(1).repeat({1, 8});
  int changed = 0;
  for (uint64_t s = 0; s < 10; ++s) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(s);
    const at::Tensor y = time_warp(x, 10, g);
    ASSERT_EQ(y.sizes(), x.sizes());
    const at::Tensor d = y.select(1, 0).diff();
    EXPECT_TRUE((d >= 0).all().item<bool>());
    EXPECT_NEAR(y[0][0].item<double>(), 0.0, 1.0);
    changed += at::equal(x, y) ? 0 : 1;
  }
  EXPECT_GT(changed, 5);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(0);
  EXPECT_TRUE(at::equal(time_warp(x.slice(0, 0, 20), 10, g), x.slice(0, 0, 20)));  // too short: as is
}

TEST(SpecAugmentUnit, ParsesYaml) {
  const config::Node n = config::parse_yaml("num_time_masks: 4\ntime_mask_max_ratio: 0.05\n", "s.yaml");
  config::Reader r(&n, "", nullptr);
  SpecAugmentOptions o;
  parse(r, o);
  EXPECT_EQ(o.num_time_masks, 4);
  EXPECT_EQ(o.time_mask_max_ratio, 0.05);
  const config::Node bad = config::parse_yaml("time_mask_max_ratio: 2\n", "s.yaml");
  config::Reader rb(&bad, "", nullptr);
  EXPECT_THROW(parse(rb, o), mmref::ConfigError);
}

TEST(ResampleUnit, SpeedPerturbLengthsAndPitch) {
  const at::Tensor t = at::arange(16000, at::kDouble) / 16000.0;
  const at::Tensor x = at::sin(2 * M_PI * 1000.0 * t).to(at::kFloat).unsqueeze(0);  // (1, T)
  EXPECT_EQ(speed_perturb(x, 0.9).size(1), 17778);
  EXPECT_EQ(speed_perturb(x, 1.1).size(1), 14546);
  EXPECT_TRUE(at::equal(speed_perturb(x, 1.0), x));
  // 1.1x faster: 1000 Hz -> 1100 Hz. Peak of the spectrum of 14546 samples at 16 kHz.
  const at::Tensor y = speed_perturb(x, 1.1)[0];
  const at::Tensor spec = at::fft_rfft(y.to(at::kDouble)).abs();
  const double peak_hz = spec.argmax().item<int64_t>() * 16000.0 / y.size(0);
  EXPECT_NEAR(peak_hz, 1100.0, 2.0);
  EXPECT_THROW(speed_perturb(x, 0.0), mmref::Error);
}

TEST(ResampleUnit, LengthAndToneKept) {
  const at::Tensor t = at::arange(44100, at::kDouble) / 44100.0;
  const at::Tensor x = at::sin(2 * M_PI * 440.0 * t).to(at::kFloat);
  const at::Tensor y = resample(x, 44100, 16000);
  EXPECT_EQ(y.size(0), 16000);  // ceil(44100 * 160 / 441)
  const at::Tensor ref = at::sin(2 * M_PI * 440.0 * (at::arange(16000, at::kDouble) / 16000.0));
  // Away from the zero-padded edges the band-limited result is the same tone (filter ripple << 1e-3).
  EXPECT_LT((y.to(at::kDouble) - ref).slice(0, 200, 15800).abs().max().item<double>(), 2e-3);
  EXPECT_TRUE(at::equal(resample(x, 16000, 16000), x));
  EXPECT_EQ(resample(at::zeros({2, 3, 1000}), 8000, 16000).sizes(), (at::IntArrayRef{2, 3, 2000}));
}

TEST(LoudnessUnit, HitsRmsTargetAndPeakLimit) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor x = 0.01 * at::randn({1, 16000}, gen, at::kFloat);
  LoudnessOptions o;
  o.target_dbfs = -20.0;
  o.peak_limit = false;
  const at::Tensor y = normalize_loudness(x, o);
  EXPECT_NEAR(rms_dbfs(y), -20.0, 0.1);
  // With the limit: Gaussian noise at -20 dB RMS peaks about 12 dB higher, so a -10 dBFS limit binds.
  o.peak_limit = true;
  o.peak_dbfs = -10.0;
  const at::Tensor z = normalize_loudness(x, o);
  EXPECT_NEAR(peak_dbfs(z), -10.0, 0.01);
  EXPECT_LT(rms_dbfs(z), -20.0);
  // A loose limit does not bind.
  o.peak_dbfs = -0.1;
  EXPECT_NEAR(rms_dbfs(normalize_loudness(x, o)), -20.0, 0.1);
  // int16 scale: full_scale 32768.
  o.full_scale = 32768.0;
  o.target_dbfs = -26.0;
  const at::Tensor w = normalize_loudness(x * 32768.0, o);
  EXPECT_NEAR(rms_dbfs(w, 32768.0), -26.0, 0.1);
  // Silence stays silence; hand value: a full-scale square wave is 0 dBFS RMS and peak.
  EXPECT_TRUE(at::equal(normalize_loudness(at::zeros({100}), o), at::zeros({100})));
  const at::Tensor sq = at::ones({100}).index_put_({at::arange(0, 100, 2)}, -1.0);
  EXPECT_NEAR(rms_dbfs(sq), 0.0, 1e-9);
  EXPECT_NEAR(peak_dbfs(sq), 0.0, 1e-9);
}

}  // namespace
}  // namespace mmref::data
