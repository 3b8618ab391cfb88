// STFT / ISTFT round trip and Griffin-Lim convergence.
//   istft(stft(x), T) == x within 1e-5 (hann, hop n_fft/4; also hamming and a batch)
//   frames with center: 1 + T / hop (16000 / 256 -> 63); bins n_fft / 2 + 1
//   Griffin-Lim: spectral convergence after 32 iterations < after 2 < random phase; seeded = repeatable
//   build/<dir>/tests/mmref_data_tests --gtest_filter='Stft*:GriffinLim*'
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <cmath>

#include "core/error.h"
#include "data/features/stft.h"

namespace mmref::data {
namespace {

at::Tensor test_signal(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor t = at::arange(n, at::kFloat) / 16000.0;
  return 0.4 * at::sin(2 * M_PI * 330.0 * t) + 0.2 * at::sin(2 * M_PI * 1250.0 * t * (1 + t)) +
         0.05 * at::randn({n}, gen, at::kFloat);
}

TEST(StftUnit, ShapeAndRoundTrip) {
  StftOptions o;
  const at::Tensor x = test_signal(16000, 1);
  const at::Tensor s = stft(x, o);
  EXPECT_TRUE(s.is_complex());
  EXPECT_EQ(s.sizes(), (at::IntArrayRef{513, 63}));
  const at::Tensor y = istft(s, o, x.size(0));
  ASSERT_EQ(y.sizes(), x.sizes());
  EXPECT_LT((y - x).abs().max().item<double>(), 1e-5);
}

TEST(StftUnit, RoundTripOtherWindowsAndBatch) {
  StftOptions o;
  o.n_fft = 512;
  o.win_length = 400;
  o.hop_length = 100;
  o.window = "hamming";
  const at::Tensor x = at::stack({test_signal(8000, 2), test_signal(8000, 3)});
  const at::Tensor s = stft(x, o);
  EXPECT_EQ(s.sizes(), (at::IntArrayRef{2, 257, 81}));
  EXPECT_LT((istft(s, o, 8000) - x).abs().max().item<double>(), 1e-5);
  o.window = "blackman";
  EXPECT_LT((istft(stft(x, o), o, 8000) - x).abs().max().item<double>(), 1e-5);
  // Double in, double out.
  const at::Tensor xd = x.to(at::kDouble);
  EXPECT_LT((istft(stft(xd, o), o, 8000) - xd).abs().max().item<double>(), 1e-10);
}

TEST(StftUnit, MagnitudeOfToneAndErrors) {
  StftOptions o;
  o.n_fft = 512;
  o.win_length = 512;
  o.hop_length = 128;
  // A tone on bin 32 (32 * 16000 / 512 = 1000 Hz): that bin dominates every interior frame.
  const at::Tensor t = at::arange(8000, at::kFloat) / 16000.0;
  const at::Tensor s = stft(at::sin(2 * M_PI * 1000.0 * t), o).abs();
  EXPECT_TRUE((s.slice(1, 2, -2).argmax(0) == 32).all().item<bool>());
  o.win_length = 1024;
  EXPECT_THROW(stft(t, o), mmref::Error);
  EXPECT_THROW(make_window("kaiser", 16), mmref::Error);
}

TEST(GriffinLimUnit, ConvergenceImprovesWithIterations) {
  StftOptions so;
  so.n_fft = 512;
  so.win_length = 512;
  so.hop_length = 128;
  const at::Tensor x = test_signal(8000, 4);
  const at::Tensor mag = stft(x, so).abs();
  GriffinLimOptions g;
  g.seed = 3;
  double prev = 1e9;
  for (int iters : {0, 2, 8, 32}) {
    g.n_iter = iters;
    const at::Tensor y = griffin_lim(mag, so, g, x.size(0));
    ASSERT_EQ(y.sizes(), x.sizes());
    const double sc = spectral_convergence(y, mag, so);
    SCOPED_TRACE(iters);
    EXPECT_LT(sc, prev);
    prev = sc;
  }
  EXPECT_LT(prev, 0.2);  // 32 fast-GL iterations on a tone mix get well under 20 %
  // Same seed, same result; power 2 input gives the same as power 1 on |S|^2.
  g.n_iter = 4;
  EXPECT_TRUE(at::equal(griffin_lim(mag, so, g, x.size(0)), griffin_lim(mag, so, g, x.size(0))));
  GriffinLimOptions p = g;
  p.power = 2.0;
  EXPECT_TRUE(at::allclose(griffin_lim(mag.pow(2), so, p, x.size(0)), griffin_lim(mag, so, g, x.size(0)),
                           1e-3, 1e-4));
  g.momentum = 1.0;
  EXPECT_THROW(griffin_lim(mag, so, g), mmref::Error);
}

}  // namespace
}  // namespace mmref::data
