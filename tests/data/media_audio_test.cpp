// Audio I/O tests (suite MediaAudio*): wav/flac round trips, resampling, channel mixing, ranges,
// streaming, and decoding of mp3/ogg-vorbis/opus made with the ffmpeg CLI from a wav we wrote.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='MediaAudio*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/Functions.h>

#include "media_test_util.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"

namespace mmref::data {
namespace {

using testing::have_ffmpeg;
using testing::run_ffmpeg;

constexpr double kPi = 3.14159265358979323846;

class MediaAudio : public testing::MediaTest {};



// Linear sweep f0 -> f1 Hz over the clip, amplitude amp; channel c is phase-shifted by c * 0.5 rad.
at::Tensor sweep(int64_t channels, int64_t n, int sr, double f0, double f1, double amp) {
  at::Tensor out = at::empty({channels, n}, at::kFloat);
  auto a = out.accessor<float, 2>();
  const double dur = static_cast<double>(n) / sr;
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t i = 0; i < n; ++i) {
      double t = static_cast<double>(i) / sr;
      double phase = 2 * kPi * (f0 * t + 0.5 * (f1 - f0) * t * t / dur);
      a[c][i] = static_cast<float>(amp * std::sin(phase + 0.5 * c));
    }
  }
  return out;
}

at::Tensor tone(int64_t n, int sr, double hz, double amp) {
  at::Tensor t = at::arange(n, at::kDouble).div(sr).mul(2 * kPi * hz).sin().mul(amp);
  return t.to(at::kFloat).unsqueeze(0);
}

double snr_db(const at::Tensor& ref, const at::Tensor& x) {
  at::Tensor r = ref.to(at::kDouble), e = x.to(at::kDouble) - r;
  return 10 * std::log10(r.pow(2).sum().item<double>() / std::max(1e-30, e.pow(2).sum().item<double>()));
}

TEST_F(MediaAudio, WavRoundTripSnrAbove90dB) {
  const int sr = 16000;
  at::Tensor x = sweep(2, 24000, sr, 50, 7000, 0.8);
  save_audio(path("a.wav"), x, sr);
  int got_sr = 0;
  at::Tensor y = load_audio(path("a.wav"), {}, &got_sr);
  EXPECT_EQ(got_sr, sr);
  ASSERT_EQ(y.sizes(), x.sizes());
  EXPECT_EQ(y.scalar_type(), at::kFloat);
  EXPECT_GT(snr_db(x, y), 90.0);
  // The quantization is round(x * 32768) / 32768, so the error is at most half a step.
  EXPECT_LE((y - x).abs().max().item<float>(), 0.5f / 32768 + 1e-7f);
  MediaInfo info = probe_media(path("a.wav"));
  EXPECT_EQ(info.format, "wav");
  EXPECT_EQ(info.codec, "pcm_s16le");
  EXPECT_EQ(info.sample_rate, sr);
  EXPECT_EQ(info.channels, 2);
  EXPECT_NEAR(info.duration_s, 1.5, 1e-3);
  EXPECT_TRUE(info.has_audio);
  EXPECT_FALSE(info.has_video);
}

TEST_F(MediaAudio, FlacIsLosslessAt16Bit) {
  const int sr = 22050;
  at::Tensor x = sweep(1, 33333, sr, 100, 9000, 0.9);  // odd length: last flac block is partial
  save_audio(path("a.flac"), x, sr);
  save_audio(path("a.wav"), x, sr);
  at::Tensor f = load_audio(path("a.flac"));
  at::Tensor w = load_audio(path("a.wav"));
  ASSERT_EQ(f.sizes(), x.sizes());
  EXPECT_TRUE(at::equal(f, w));
  at::Tensor q = x.mul(32768).round().clamp(-32768, 32767).div(32768);
  EXPECT_TRUE(at::equal(f, q));
  EXPECT_EQ(probe_media(path("a.flac")).codec, "flac");
  // (T) input is written as mono.
  save_audio(path("b.flac"), x[0], sr);
  EXPECT_TRUE(at::equal(load_audio(path("b.flac")), f));
}

TEST_F(MediaAudio, Resample22050To16000KeepsA440Tone) {
  const int64_t n = 2 * 22050;
  save_audio(path("t.wav"), tone(n, 22050, 440, 0.5), 22050);
  int sr = 0;
  at::Tensor y = load_audio(path("t.wav"), AudioOptions{/*sample_rate=*/16000}, &sr);
  EXPECT_EQ(sr, 16000);
  ASSERT_EQ(y.size(0), 1);
  EXPECT_NEAR(y.size(1), 32000, 1);
  at::Tensor ref = tone(y.size(1), 16000, 440, 0.5);
  // Skip the first/last 64 samples (resampler edge transients).
  const int64_t m = y.size(1);
  EXPECT_GT(snr_db(ref.slice(1, 64, m - 64), y.slice(1, 64, m - 64)), 40.0);
}

TEST_F(MediaAudio, MonoDownmixIsChannelMeanAndUpmixRepeats) {
  const int sr = 8000;
  at::Tensor x = sweep(2, 8000, sr, 200, 3000, 0.4);
  save_audio(path("s.wav"), x, sr);
  at::Tensor full = load_audio(path("s.wav"));
  AudioOptions mono;
  mono.channels = 1;
  at::Tensor m = load_audio(path("s.wav"), mono);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{1, 8000}));
  EXPECT_TRUE(at::allclose(m, full.mean(0, true), 0, 1e-7));
  save_audio(path("m.wav"), x[0], sr);
  AudioOptions stereo;
  stereo.channels = 2;
  at::Tensor up = load_audio(path("m.wav"), stereo);
  ASSERT_EQ(up.size(0), 2);
  EXPECT_TRUE(at::equal(up[0], up[1]));
  AudioOptions bad;
  bad.channels = 3;
  EXPECT_THROW(load_audio(path("s.wav"), bad), Error);
}

TEST_F(MediaAudio, StartAndDurationAreSampleExact) {
  const int sr = 16000;
  save_audio(path("r.flac"), sweep(1, 3 * sr, sr, 100, 4000, 0.7), sr);
  at::Tensor full = load_audio(path("r.flac"));
  AudioOptions o;
  o.start_s = 1.25;
  o.duration_s = 0.5;
  at::Tensor part = load_audio(path("r.flac"), o);
  ASSERT_EQ(part.size(1), 8000);
  EXPECT_TRUE(at::equal(part, full.slice(1, 20000, 28000)));
  o.duration_s = -1;  // to the end
  EXPECT_TRUE(at::equal(load_audio(path("r.flac"), o), full.slice(1, 20000)));
  o.start_s = 10;  // past the end
  EXPECT_THROW(load_audio(path("r.flac"), o), Error);
}

TEST_F(MediaAudio, StreamReaderYieldsTheSameSamplesAsLoadAudio) {
  const int sr = 16000;
  save_audio(path("long.flac"), sweep(2, 30 * sr, sr, 30, 7900, 0.6), sr);  // 30 s
  for (int out_sr : {0, 11025}) {
    AudioOptions o;
    o.sample_rate = out_sr;
    at::Tensor ref = load_audio(path("long.flac"), o);
    AudioStreamReader reader(path("long.flac"), o);
    EXPECT_EQ(reader.sample_rate(), out_sr ? out_sr : sr);
    EXPECT_EQ(reader.channels(), 2);
    std::vector<at::Tensor> chunks;
    at::Tensor c;
    while (reader.read(c, 4000)) {
      ASSERT_EQ(c.size(0), 2);
      ASSERT_GE(c.size(1), 1);
      ASSERT_LE(c.size(1), 4000);
      chunks.push_back(c);
    }
    EXPECT_FALSE(c.defined());
    EXPECT_FALSE(reader.read(c, 4000));  // stays at the end
    at::Tensor all = at::cat(chunks, 1);
    ASSERT_EQ(all.sizes(), ref.sizes()) << "rate " << out_sr;
    EXPECT_TRUE(at::equal(all, ref)) << "rate " << out_sr;
  }
}

TEST_F(MediaAudio, DecodesMp3OggVorbisAndOpusMadeByFfmpeg) {
  if (!have_ffmpeg()) GTEST_SKIP() << "the ffmpeg binary is not installed (apt-get install ffmpeg)";
  const int sr = 48000;
  // A chord of three tones: stable enough for lossy codecs to keep SNR high.
  at::Tensor x = tone(2 * sr, sr, 440, 0.3) + tone(2 * sr, sr, 660, 0.2) + tone(2 * sr, sr, 1250, 0.1);
  save_audio(path("src.wav"), x, sr);
  struct Case {
    const char* file;
    const char* codec_args;
    const char* codec;
  };
  for (const Case& k :
       {Case{"a.mp3", "-c:a libmp3lame -b:a 192k", "mp3"}, Case{"a.ogg", "-c:a libvorbis -q:a 6", "vorbis"},
        Case{"a.opus", "-c:a libopus -b:a 128k", "opus"}}) {
    SCOPED_TRACE(k.file);
    ASSERT_TRUE(run_ffmpeg("-i " + path("src.wav") + " " + k.codec_args + " " + path(k.file)));
    EXPECT_EQ(probe_media(path(k.file)).codec, k.codec);
    int got_sr = 0;
    at::Tensor y = load_audio(path(k.file), {}, &got_sr);
    EXPECT_EQ(got_sr, sr);
    ASSERT_EQ(y.size(0), 1);
    // Gapless decoding (encoder delay and padding removed): the length is the source's, within one
    // codec frame (mp3 1152, vorbis/opus up to 1024 at 48 kHz).
    EXPECT_NEAR(y.size(1), x.size(1), 1152);
    // Align (the codecs may shift by a few samples) and compare the middle second.
    const int64_t mid = sr / 2, len = sr;
    at::Tensor ref = x.slice(1, mid, mid + len);
    double best = -1e9;
    int best_lag = 0;
    for (int lag = -1200; lag <= 1200; ++lag) {
      if (mid + lag < 0 || mid + lag + len > y.size(1)) continue;
      double s = snr_db(ref, y.slice(1, mid + lag, mid + lag + len));
      if (s > best) best = s, best_lag = lag;
    }
    EXPECT_GT(best, 20.0) << "lag " << best_lag;
    // Seeking: start_s / duration_s give the same samples as slicing the full decode.
    AudioOptions o;
    o.start_s = 0.75;
    o.duration_s = 0.5;
    at::Tensor part = load_audio(path(k.file), o);
    ASSERT_EQ(part.size(1), sr / 2);
    at::Tensor same = y.slice(1, sr * 3 / 4, sr * 5 / 4);
    EXPECT_GT(snr_db(same, part), 100.0);  // measured ~330 dB: sample-exact after the pre-roll
  }
}

TEST_F(MediaAudio, SaveRejectsBadArguments) {
  at::Tensor x = at::zeros({1, 100});
  EXPECT_THROW(save_audio(path("a.mp3"), x, 16000), Error);
  EXPECT_THROW(save_audio(path("a.wav"), x, 0), Error);
  EXPECT_THROW(save_audio(path("a.wav"), at::zeros({1, 0}), 16000), Error);
  EXPECT_THROW(save_audio(path("a.wav"), at::zeros({2, 3, 4}), 16000), Error);
  EXPECT_THROW(save_audio(dir_ + "/no/such/dir/a.wav", x, 16000), Error);
  EXPECT_FALSE(fs::exists(path("a.wav")));
  // Values outside [-1, 1] are clipped, not wrapped.
  save_audio(path("c.wav"), at::full({1, 10}, 3.0f), 8000);
  EXPECT_NEAR(load_audio(path("c.wav")).min().item<float>(), 32767.0f / 32768, 1e-6);
}

}  // namespace
}  // namespace mmref::data
