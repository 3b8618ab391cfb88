// Hand-checked mel scale points and log-mel shapes (torchaudio comparisons: features_torchaudio_test.cpp).
//
//   scale    hz        mel
//   htk      1000      2595 log10(1 + 1000/700) = 999.9855 (the scale is built so mel(1 kHz) ~ 1000)
//   htk      700       2595 log10(2) = 781.17...
//   slaney   1000      1000 / (200/3) = 15 (the linear/log break)
//   slaney   500       7.5 (linear part)
//   slaney   6400      15 + ln(6.4) / (ln(6.4) / 27) = 42 (one "logstep" decade of 6.4x = 27 mel)
//   frames: hifigan padding 384 each side: 1 + (22050 + 768 - 1024) / 256 = 86; center: 1 + 22050/256 = 87
//   build/<dir>/tests/mmref_data_tests --gtest_filter='LogMel*'
#include <gtest/gtest.h>

#include <ATen/Functions.h>

#include <cmath>

#include "core/error.h"
#include "data/features/mel.h"

namespace mmref::data {
namespace {

TEST(LogMelUnit, MelScalePoints) {
  EXPECT_NEAR(hz_to_mel(1000.0, "htk"), 999.9855, 1e-4);
  EXPECT_NEAR(hz_to_mel(700.0, "htk"), 2595.0 * std::log10(2.0), 1e-9);
  EXPECT_NEAR(hz_to_mel(1000.0, "slaney"), 15.0, 1e-12);
  EXPECT_NEAR(hz_to_mel(500.0, "slaney"), 7.5, 1e-12);
  EXPECT_NEAR(hz_to_mel(6400.0, "slaney"), 42.0, 1e-9);
  // Continuous at the break, and the inverse round-trips on both sides.
  EXPECT_NEAR(hz_to_mel(999.999, "slaney"), hz_to_mel(1000.001, "slaney"), 1e-4);
  for (double hz : {0.0, 123.0, 999.0, 1000.0, 1001.0, 4321.0, 11025.0}) {
    EXPECT_NEAR(mel_to_hz(hz_to_mel(hz, "slaney"), "slaney"), hz, 1e-6) << hz;
    EXPECT_NEAR(mel_to_hz(hz_to_mel(hz, "htk"), "htk"), hz, 1e-6) << hz;
  }
  EXPECT_THROW(hz_to_mel(1.0, "mel"), mmref::Error);
}

TEST(LogMelUnit, FilterbankShapeAndNorm) {
  const at::Tensor fb = mel_filterbank(513, 0.0, 8000.0, 80, 22050, "slaney", "none");
  ASSERT_EQ(fb.sizes(), (at::IntArrayRef{80, 513}));
  EXPECT_GE(fb.min().item<double>(), 0.0);
  EXPECT_LE(fb.max().item<double>(), 1.0 + 1e-6);
  // Above fmax (8000 Hz = bin 8000 / (22050/1024) = 371.5) every weight is 0.
  EXPECT_EQ(fb.slice(1, 372).abs().max().item<double>(), 0.0);
  // Slaney norm divides each triangle by half its width in Hz: 2 / (f[i+2] - f[i]).
  const at::Tensor fn = mel_filterbank(513, 0.0, 8000.0, 80, 22050, "slaney", "slaney");
  const double m_max = hz_to_mel(8000.0, "slaney");
  const double f0 = mel_to_hz(0.0, "slaney"), f2 = mel_to_hz(2 * m_max / 81, "slaney");
  EXPECT_TRUE(at::allclose(fn[0], fb[0] * (2.0 / (f2 - f0)), 1e-5, 1e-7));
}

TEST(LogMelUnit, SpectrogramShapesAndSilence) {
  LogMelOptions o;
  const at::Tensor wave = at::zeros({22050});
  const at::Tensor m = log_mel_spectrogram(wave, o);
  EXPECT_EQ(m.sizes(), (at::IntArrayRef{80, 86}));
  EXPECT_EQ(log_mel_num_frames(22050, o), 86);
  // Silence: sqrt(0 + 1e-9) per bin, so values stay >= log(1e-5) and equal it where the mel sum is small.
  EXPECT_NEAR(m.min().item<double>(), std::log(1e-5), 1e-5);
  o.padding = "center";
  EXPECT_EQ(log_mel_spectrogram(wave, o).sizes(), (at::IntArrayRef{80, 87}));
  EXPECT_EQ(log_mel_num_frames(22050, o), 87);
  const at::Tensor batch = log_mel_spectrogram(at::zeros({3, 22050}), o);
  EXPECT_EQ(batch.sizes(), (at::IntArrayRef{3, 80, 87}));
}

TEST(LogMelUnit, ToneLandsInItsMelBin) {
  LogMelOptions o;
  o.mel_scale = "htk";
  const double hz = 1000.0;
  const at::Tensor t = at::arange(22050, at::kDouble) / 22050.0;
  const at::Tensor wave = (0.5 * at::sin(2 * M_PI * hz * t)).to(at::kFloat);
  const at::Tensor m = log_mel_spectrogram(wave, o);
  const int64_t best = m.mean(1).argmax().item<int64_t>();
  // Centres are equally spaced in mel between 0 and mel(8000): centre i at (i+1) * mel(8000) / 81.
  const double centre = mel_to_hz((best + 1) * hz_to_mel(8000.0, "htk") / 81.0, "htk");
  const double spacing = mel_to_hz((best + 2) * hz_to_mel(8000.0, "htk") / 81.0, "htk") - centre;
  EXPECT_LT(std::abs(centre - hz), spacing) << "bin " << best << " centre " << centre;
}

}  // namespace
}  // namespace mmref::data
