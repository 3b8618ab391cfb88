// Hand-checkable Kaldi fbank / MFCC cases (the torchaudio comparisons live in
// features_torchaudio_test.cpp):
//
//   frames (size 400, shift 160 = 25 ms / 10 ms at 16 kHz)
//     T       snip_edges=true: 1 + (T - 400) / 160     snip_edges=false: (T + 80) / 160
//     16000   1 + 15600 / 160 = 98                     16080 / 160 = 100
//     400     1                                        480 / 160 = 3
//     399     0 (too short: kaldi_fbank throws)        479 / 160 = 2
//   window samples: 16 kHz 25 ms = 400; 8 kHz 25 ms = 200; 22.05 kHz 25 ms = 551.25 -> 551
//   Kaldi mel: 1127 ln(1 + 700/700) = 1127 ln 2 = 781.1739...
//   energy: constant wave 2.0, no DC removal, raw energy, frame 400 -> log(400 * 4) = log 1600
//   MFCC C0 (ortho DCT, lifter(0) = 1) = sum of the log-mel row / sqrt(num_mel_bins)
//   build/<dir>/tests/mmref_data_tests --gtest_filter='KaldiFbank*:KaldiMfcc*'
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <cmath>

#include "core/config.h"
#include "core/error.h"
#include "data/features/kaldi_fbank.h"

namespace mmref::data {
namespace {

at::Tensor noise_wave(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return (at::randn({1, n}, gen, at::kFloat) * 2000.0).round();
}

TEST(KaldiFbankUnit, NumFramesFormula) {
  struct Row {
    int64_t t, snip, nosnip;
  };
  for (const Row& r : {Row{16000, 98, 100}, Row{400, 1, 3}, Row{399, 0, 2}, Row{20800, 128, 130}}) {
    SCOPED_TRACE(r.t);
    EXPECT_EQ(kaldi_num_frames(r.t, 400, 160, /*snip_edges=*/true), r.snip);
    EXPECT_EQ(kaldi_num_frames(r.t, 400, 160, /*snip_edges=*/false), r.nosnip);
  }
  EXPECT_EQ(kaldi_window_size(16000, 25.0), 400);
  EXPECT_EQ(kaldi_window_size(8000, 25.0), 200);
  EXPECT_EQ(kaldi_window_size(22050, 25.0), 551);
  EXPECT_EQ(kaldi_window_shift(16000, 10.0), 160);
}

TEST(KaldiFbankUnit, OutputShapesFollowFormula) {
  const at::Tensor w = noise_wave(16000, 1);
  KaldiFbankOptions o;
  o.num_mel_bins = 40;
  EXPECT_EQ(kaldi_fbank(w, 16000, o).sizes(), (at::IntArrayRef{98, 40}));
  o.snip_edges = false;
  EXPECT_EQ(kaldi_fbank(w, 16000, o).sizes(), (at::IntArrayRef{100, 40}));
  o.use_energy = true;
  EXPECT_EQ(kaldi_fbank(w[0], 16000, o).sizes(), (at::IntArrayRef{100, 41}));
  o.snip_edges = true;
  EXPECT_EQ(kaldi_fbank(w.slice(1, 0, 400), 16000, o).size(0), 1);
  EXPECT_THROW(kaldi_fbank(w.slice(1, 0, 399), 16000, o), mmref::Error);
  EXPECT_THROW(kaldi_fbank(at::zeros({2, 1000}), 16000, o), mmref::Error);
}

TEST(KaldiFbankUnit, MelScaleAndBanks) {
  EXPECT_NEAR(kaldi_mel_scale(700.0), 1127.0 * std::log(2.0), 1e-9);
  EXPECT_NEAR(kaldi_inverse_mel_scale(kaldi_mel_scale(1234.5)), 1234.5, 1e-9);
  const at::Tensor b = kaldi_mel_banks(23, 512, 16000, 20, 0);
  ASSERT_EQ(b.sizes(), (at::IntArrayRef{23, 257}));
  EXPECT_EQ(b.select(1, 256).abs().max().item<double>(), 0.0);  // Nyquist column unused
  EXPECT_GE(b.min().item<double>(), 0.0);
  EXPECT_LE(b.max().item<double>(), 1.0);
  // Every bank is non-empty and banks are ordered by their peak bin.
  const at::Tensor peak = b.argmax(1);
  for (int i = 0; i < 23; ++i) {
    EXPECT_GT(b[i].sum().item<double>(), 0.0) << i;
    if (i > 0) {
      EXPECT_GT(peak[i].item<int64_t>(), peak[i - 1].item<int64_t>()) << i;
    }
  }
  EXPECT_THROW(kaldi_mel_banks(23, 512, 16000, 9000, 0), mmref::Error);
}

TEST(KaldiFbankUnit, RawEnergyOfConstantWave) {
  KaldiFbankOptions o;
  o.remove_dc_offset = false;
  o.use_energy = true;
  o.energy_floor = 0.0;
  const at::Tensor w = at::full({1, 1600}, 2.0, at::kFloat);
  const at::Tensor f = kaldi_fbank(w, 16000, o);
  ASSERT_EQ(f.size(1), 24);
  EXPECT_TRUE(at::allclose(f.select(1, 0), at::full({f.size(0)}, std::log(1600.0)), 1e-6, 1e-5));
  o.htk_compat = true;  // energy goes last
  const at::Tensor h = kaldi_fbank(w, 16000, o);
  EXPECT_TRUE(at::allclose(h.select(1, 23), at::full({h.size(0)}, std::log(1600.0)), 1e-6, 1e-5));
  // energy_floor: log(max(E, floor))
  o.energy_floor = 1e6;
  EXPECT_NEAR(kaldi_fbank(w, 16000, o)[0][23].item<double>(), std::log(1e6), 1e-4);
}

TEST(KaldiFbankUnit, DitherIsSeededAndDeterministic) {
  const at::Tensor w = noise_wave(8000, 2);
  KaldiFbankOptions o;
  o.dither = 1.0;
  o.dither_seed = 5;
  const at::Tensor a = kaldi_fbank(w, 16000, o), b = kaldi_fbank(w, 16000, o);
  EXPECT_TRUE(at::equal(a, b));
  o.dither_seed = 6;
  EXPECT_FALSE(at::equal(a, kaldi_fbank(w, 16000, o)));
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(9), g2 = at::make_generator<at::CPUGeneratorImpl>(9);
  EXPECT_TRUE(at::equal(kaldi_fbank(w, 16000, o, g1), kaldi_fbank(w, 16000, o, g2)));
  o.dither = 0.0;
  const at::Tensor c = kaldi_fbank(w, 16000, o);
  o.dither_seed = 123;
  EXPECT_TRUE(at::equal(c, kaldi_fbank(w, 16000, o)));
  // dither 1 on an int16-scale wave barely moves the features
  EXPECT_LT((a - c).abs().mean().item<double>(), 0.05);
}

TEST(KaldiFbankUnit, SubtractMeanZeroesColumnMeans) {
  KaldiFbankOptions o;
  o.subtract_mean = true;
  const at::Tensor f = kaldi_fbank(noise_wave(8000, 3), 16000, o);
  EXPECT_LT(f.mean(0).abs().max().item<double>(), 1e-4);
}

TEST(KaldiFbankUnit, ParsesYaml) {
  const config::Node n = config::parse_yaml(
      "num_mel_bins: 80\nsnip_edges: false\nwindow_type: hamming\nhigh_freq: -400\ndither: 0.5\n", "t.yaml");
  KaldiFbankOptions o;
  config::Reader r(&n, "", nullptr);
  parse(r, o);
  EXPECT_EQ(o.num_mel_bins, 80);
  EXPECT_FALSE(o.snip_edges);
  EXPECT_EQ(o.window_type, "hamming");
  EXPECT_EQ(o.high_freq, -400.0);
  EXPECT_EQ(o.dither, 0.5);
  EXPECT_EQ(o.frame_length_ms, 25.0);  // default kept

  const config::Node bad = config::parse_yaml("window_type: hann\n", "t.yaml");
  config::Reader rb(&bad, "", nullptr);
  EXPECT_THROW(parse(rb, o), mmref::ConfigError);
  const config::Node unk = config::parse_yaml("num_mel_binz: 3\n", "t.yaml");
  config::Reader ru(&unk, "", nullptr);
  EXPECT_THROW(parse(ru, o), mmref::ConfigError);
}

TEST(KaldiMfccUnit, C0IsScaledLogMelSum) {
  const at::Tensor w = noise_wave(8000, 4);
  KaldiMfccOptions m;
  m.fbank.num_mel_bins = 40;
  const at::Tensor mf = kaldi_mfcc(w, 16000, m);
  const at::Tensor fb = kaldi_fbank(w, 16000, m.fbank);
  ASSERT_EQ(mf.sizes(), (at::IntArrayRef{fb.size(0), 13}));
  EXPECT_TRUE(at::allclose(mf.select(1, 0), fb.sum(1) / std::sqrt(40.0), 1e-4, 1e-3));
  // htk_compat without energy: C0 * sqrt(2) moves last.
  m.fbank.htk_compat = true;
  const at::Tensor h = kaldi_mfcc(w, 16000, m);
  EXPECT_TRUE(at::allclose(h.select(1, 12), mf.select(1, 0) * std::sqrt(2.0), 1e-4, 1e-3));
  EXPECT_TRUE(at::allclose(h.slice(1, 0, 12), mf.slice(1, 1, 13), 1e-4, 1e-3));
}

TEST(KaldiMfccUnit, RejectsTooManyCeps) {
  KaldiMfccOptions m;
  m.num_ceps = 24;  // > 23 mel bins
  EXPECT_THROW(kaldi_mfcc(noise_wave(4000, 5), 16000, m), mmref::Error);
  const config::Node n = config::parse_yaml("num_mel_bins: 10\nnum_ceps: 12\n", "t.yaml");
  config::Reader r(&n, "", nullptr);
  KaldiMfccOptions p;
  EXPECT_THROW(parse(r, p), mmref::ConfigError);
}

}  // namespace
}  // namespace mmref::data
