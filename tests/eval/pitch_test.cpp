// YIN F0 tracking and F0 metrics (eval/pitch.h): pure tones, noise, silence, hand-made tracks, espeak-ng
// speech (skipped, with the reason, when espeak-ng is absent).
//   build/cpu/tests/mmref_eval_tests --gtest_filter='Yin*:Pitch*'
//
// Hand-checked metrics table (truncate alignment, 4 pairs):
//   frame   ref f0 (voiced)   syn f0 (voiced)   both voiced   flags differ
//     0       100 (1)           110 (1)           yes            no
//     1       200 (1)           200 (1)           yes            no
//     2         0 (0)           120 (1)           no             yes
//     3       150 (1)             0 (0)           no             yes
//   rmse_hz    = sqrt((10^2 + 0^2) / 2)                   = 7.0710678
//   rmse_cents = sqrt((1200 log2(1.1))^2 / 2) = 165.00423 / sqrt(2) = 116.67561
//   vde = 2 / 4 = 0.5;  gpe = 0 / 2 (10 % < 20 %)
#include <gtest/gtest.h>

#include "eval_test_util.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"
#include "eval/pitch.h"

namespace mmref::eval {
namespace {

constexpr int kRate = 22050;

at::Tensor tone(double hz, double seconds, int rate, double amp = 0.5) {
  at::Tensor t = at::arange(static_cast<int64_t>(seconds * rate), at::kDouble) / rate;
  return at::sin(t * (2 * M_PI * hz)) * amp;
}

bool have_espeak() {
  static const bool ok = std::system("espeak-ng --version >/dev/null 2>&1") == 0;
  return ok;
}

class EspeakSpeech {
 public:
  EspeakSpeech() : dir_(fs::make_temp_dir("mmref_pitch_")) {}
  ~EspeakSpeech() {
    if (!std::getenv("MMREF_KEEP_TMP")) std::filesystem::remove_all(dir_);
  }
  at::Tensor operator()(const std::string& name, const std::string& text, const std::string& args) const {
    const std::string wav = dir_ + "/" + name + ".wav";
    const std::string cmd = "espeak-ng -w " + wav + " " + args + " \"" + text + "\" >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    data::AudioOptions o;
    o.channels = 1;
    return data::load_audio(wav, o)[0].contiguous();
  }

 private:
  std::string dir_;
};


TEST(Yin, FrameGridScalesWithRate) {
  EXPECT_EQ(yin_frame_length({}, 22050), 1024);
  EXPECT_EQ(yin_hop_length({}, 22050), 256);
  EXPECT_EQ(yin_frame_length({}, 16000), 744);
  EXPECT_EQ(yin_hop_length({}, 16000), 186);
  EXPECT_EQ(yin_frame_length({}, 24000), 1114);
  EXPECT_EQ(yin_hop_length({}, 24000), 279);
  at::Tensor x = tone(220, 1.0, kRate);
  EXPECT_EQ(yin({x, kRate}).size(), 1 + x.numel() / 256);
}

TEST(Yin, PureTonesWithinOnePercent) {
  for (int rate : {22050, 16000}) {
    for (double hz : {110.0, 220.0, 440.0}) {
      const F0Track t = yin({tone(hz, 1.0, rate), rate});
      // Frames whose integration window lies fully inside the tone (the first and last are half padding).
      int64_t voiced = 0, checked = 0;
      double worst = 0;
      for (int64_t i = 4; i < t.size() - 4; ++i) {
        ++checked;
        if (!t.voiced[i]) continue;
        ++voiced;
        worst = std::max(worst, std::abs(t.f0_hz[i] / hz - 1.0));
      }
      EXPECT_EQ(voiced, checked) << hz << " Hz at " << rate;
      EXPECT_LT(worst, 0.01) << hz << " Hz at " << rate;
      EXPECT_LT(worst, 0.002) << hz << " Hz at " << rate << " (parabolic interpolation)";
    }
  }
}

TEST(Yin, NoiseIsMostlyUnvoicedAndSilenceIsUnvoiced) {
  at::Generator gen = at::detail::createCPUGenerator(3);
  at::Tensor noise = at::randn({2 * kRate}, gen, at::TensorOptions().dtype(at::kDouble)) * 0.3;
  const F0Track t = yin({noise, kRate});
  int64_t voiced = 0;
  for (uint8_t v : t.voiced) voiced += v;
  EXPECT_LT(static_cast<double>(voiced) / t.size(), 0.05) << voiced << " of " << t.size();
  const F0Track s = yin({at::zeros({kRate}, at::kFloat), kRate});
  for (int64_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s.voiced[i], 0);
    EXPECT_EQ(s.f0_hz[i], 0.0);
  }
}

TEST(Pitch, HandCheckedTable) {
  F0Track ref, syn;
  ref.f0_hz = {100, 200, 0, 150};
  ref.voiced = {1, 1, 0, 1};
  syn.f0_hz = {110, 200, 120, 0};
  syn.voiced = {1, 1, 1, 0};
  const F0Metrics m = f0_metrics(ref, syn, truncate_alignment(4, 4));
  EXPECT_EQ(m.pairs, 4);
  EXPECT_EQ(m.voiced_both, 2);
  EXPECT_NEAR(m.rmse_hz, 7.0710678, 1e-6);
  EXPECT_NEAR(m.rmse_cents, 116.67561, 1e-4);
  EXPECT_DOUBLE_EQ(m.vde, 0.5);
  EXPECT_DOUBLE_EQ(m.gpe, 0.0);
  // A 25 % error counts as gross.
  syn.f0_hz[0] = 125;
  EXPECT_DOUBLE_EQ(f0_metrics(ref, syn, truncate_alignment(4, 4)).gpe, 0.5);
  // No frame voiced in both: RMSE undefined (NaN), VDE still defined.
  syn.voiced = {0, 0, 1, 0};
  const F0Metrics none = f0_metrics(ref, syn, truncate_alignment(4, 4));
  EXPECT_EQ(none.voiced_both, 0);
  EXPECT_TRUE(std::isnan(none.rmse_hz));
  EXPECT_DOUBLE_EQ(none.vde, 1.0);
}

TEST(Pitch, SemitoneApartTones) {
  const double f1 = 220.0, f2 = 220.0 * std::pow(2.0, 1.0 / 12);
  for (const char* align : {"truncate", "dtw"}) {
    F0MetricsOptions o;
    o.alignment = align;
    const F0Metrics m = f0_metrics({tone(f1, 1.0, kRate), kRate}, {tone(f2, 1.2, kRate), kRate}, o);
    EXPECT_NEAR(m.rmse_cents, 100.0, 1.0) << align;
    EXPECT_NEAR(m.rmse_hz, f2 - f1, 0.01 * (f2 - f1)) << align;
    EXPECT_LT(m.vde, 0.05) << align;
    EXPECT_DOUBLE_EQ(m.gpe, 0.0);
    const F0Metrics same = f0_metrics({tone(f1, 1.0, kRate), kRate}, {tone(f1, 1.0, kRate), kRate}, o);
    EXPECT_EQ(same.rmse_hz, 0.0);
    EXPECT_EQ(same.vde, 0.0);
  }
}

TEST(Pitch, EspeakSpeech) {
  if (!have_espeak()) GTEST_SKIP() << "espeak-ng not installed";
  EspeakSpeech speak;
  const std::string text = "we were away a year ago when the rain in spain fell mainly on the plain";
  at::Tensor ref = speak("ref", text, "-s 160 -p 50");
  at::Tensor slow = speak("slow", text, "-s 120 -p 50");
  at::Tensor high = speak("high", text, "-s 160 -p 80");
  const F0Track t = yin({ref, kRate});
  std::vector<double> f0;
  for (int64_t i = 0; i < t.size(); ++i)
    if (t.voiced[i]) f0.push_back(t.f0_hz[i]);
  const double voiced_fraction = static_cast<double>(f0.size()) / t.size();
  EXPECT_GT(voiced_fraction, 0.3);
  EXPECT_LT(voiced_fraction, 0.95);
  std::nth_element(f0.begin(), f0.begin() + f0.size() / 2, f0.end());
  EXPECT_GT(f0[f0.size() / 2], 70.0);
  EXPECT_LT(f0[f0.size() / 2], 250.0);

  F0MetricsOptions dtw_o, trunc_o;
  trunc_o.alignment = "truncate";
  const F0Metrics self = f0_metrics({ref, kRate}, {ref, kRate}, dtw_o);
  EXPECT_EQ(self.rmse_cents, 0.0);
  EXPECT_EQ(self.vde, 0.0);
  // A slower rendering: DTW alignment finds the corresponding frames, truncation does not.
  const F0Metrics d = f0_metrics({ref, kRate}, {slow, kRate}, dtw_o);
  const F0Metrics tr = f0_metrics({ref, kRate}, {slow, kRate}, trunc_o);
  EXPECT_LT(d.vde, tr.vde);
  EXPECT_LT(d.rmse_cents, tr.rmse_cents);
  EXPECT_GT(d.pairs, d.frames_syn - 1);
  // A higher-pitched voice: a large, mostly same-sign F0 error.
  const F0Metrics h = f0_metrics({ref, kRate}, {high, kRate}, dtw_o);
  EXPECT_GT(h.rmse_cents, 150.0);
  EXPECT_GT(h.rmse_cents, 2 * d.rmse_cents);
}

TEST(Pitch, BadInput) {
  at::Tensor x = tone(220, 1.0, kRate).to(at::kFloat);
  at::Tensor nan = x.clone();
  nan[5] = std::numeric_limits<float>::infinity();
  EXPECT_ERROR_HAS(yin({at::empty({0}, at::kFloat), kRate}), "yin: input: empty waveform");
  EXPECT_ERROR_HAS(yin({nan, kRate}), "yin: input: sample 5 of 22050 is inf");
  EXPECT_ERROR_HAS(f0_metrics({x, kRate}, {x, 16000}),
                   "f0_metrics: reference is at 22050 Hz but synthesized at 16000");
  EXPECT_ERROR_HAS(f0_metrics({x, kRate}, {nan, kRate}), "f0_metrics: synthesized: sample 5");
  YinOptions o;
  o.fmin = 300;
  o.fmax = 200;
  EXPECT_ERROR_HAS(yin({x, kRate}, o), "need 0 < fmin < fmax");
  o = {};
  o.frame_length = 64;
  EXPECT_ERROR_HAS(yin({x, kRate}, o), "raise frame_length to at least");
  o = {};
  o.fmax = 12000;
  EXPECT_ERROR_HAS(yin({x, kRate}, o), "below the Nyquist");
  F0MetricsOptions m;
  m.alignment = "nearest";
  EXPECT_ERROR_HAS(f0_metrics({x, kRate}, {x, kRate}, m), "alignment must be 'dtw' or 'truncate'");
  F0Track a, b;
  a.f0_hz = {100};
  a.voiced = {1};
  b = a;
  EXPECT_ERROR_HAS(f0_metrics(a, b, AlignmentPath{{0, 1}}), "outside the tracks");
}

}  // namespace
}  // namespace mmref::eval
