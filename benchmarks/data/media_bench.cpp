// Decode throughput of the FFmpeg media readers (src/data/media/): audio seconds decoded per wall
// second for wav / flac / mp3 (and wav resampled 44.1k -> 16k mono), and video frames per second
// for a 320x240 h264 mp4. The inputs are generated once per process in a temp folder (mp3 with the
// ffmpeg CLI; skipped with a message when it is missing).
// Run: build/<dir>/benchmarks/mmref_bench_data --benchmark_filter=Media
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include "core/fs.h"
#include "data/media/audio_io.h"
#include "data/media/video_io.h"

namespace {

using namespace mmref;
using namespace mmref::data;

constexpr int kAudioRate = 44100;
constexpr double kAudioSeconds = 30;
constexpr int kVideoFrames = 120;

struct MediaFiles {
  std::string dir, wav, flac, mp3, mp4;
  bool has_mp3 = false;
  MediaFiles() {
    at::set_num_threads(1);
    dir = fs::make_temp_dir("media_bench");
    wav = dir + "/a.wav", flac = dir + "/a.flac", mp3 = dir + "/a.mp3", mp4 = dir + "/v.mp4";
    const int64_t n = static_cast<int64_t>(kAudioRate * kAudioSeconds);
    at::Tensor t = at::arange(n, at::kDouble).div(kAudioRate);
    // Stereo sweep 100 Hz -> 8 kHz plus a little noise (keeps flac/mp3 from being trivially small).
    at::Tensor s = (t * t * (3.14159 * 7900 / kAudioSeconds) + t * (2 * 3.14159 * 100)).sin().mul(0.5);
    at::manual_seed(0);
    at::Tensor wav_t = at::stack({s, s.roll(100)}, 0).to(at::kFloat) + 0.01 * at::randn({2, n});
    save_audio(wav, wav_t, kAudioRate);
    save_audio(flac, wav_t, kAudioRate);
    has_mp3 = std::system(("ffmpeg -hide_banner -loglevel error -nostdin -y -i " + wav +
                           " -c:a libmp3lame -b:a 192k " + mp3 + " > /dev/null 2>&1")
                              .c_str()) == 0;
    // 320x240 frames: a moving gradient with noise.
    at::Tensor y = at::arange(240, at::kFloat).view({1, 1, 240, 1});
    at::Tensor x = at::arange(320, at::kFloat).view({1, 1, 1, 320});
    at::Tensor k = at::arange(kVideoFrames, at::kFloat).view({kVideoFrames, 1, 1, 1});
    at::Tensor c = at::arange(3, at::kFloat).view({1, 3, 1, 1});
    at::Tensor frames = ((x + 2 * k + 40 * c).sin() * 60 + (y - k).cos() * 60 + 128 +
                         at::randn({kVideoFrames, 3, 240, 320}) * 8)
                            .clamp(0, 255)
                            .to(at::kByte);
    save_video(mp4, frames, 30);
  }
  ~MediaFiles() { std::filesystem::remove_all(dir); }
};

const MediaFiles& files() {
  static MediaFiles f;
  return f;
}

void decode_audio(benchmark::State& state, const std::string& path, const AudioOptions& opt) {
  double seconds = 0;
  for (auto _ : state) {
    int sr = 0;
    at::Tensor a = load_audio(path, opt, &sr);
    seconds = static_cast<double>(a.size(1)) / sr;
    benchmark::DoNotOptimize(a.data_ptr<float>());
  }
  state.counters["audio_s_per_s"] =
      benchmark::Counter(seconds, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["audio_s"] = seconds;
}

void BM_MediaDecodeWav(benchmark::State& state) { decode_audio(state, files().wav, {}); }
void BM_MediaDecodeFlac(benchmark::State& state) { decode_audio(state, files().flac, {}); }
void BM_MediaDecodeMp3(benchmark::State& state) {
  if (!files().has_mp3) {
    state.SkipWithError("ffmpeg CLI with libmp3lame not found: no mp3 input");
    return;
  }
  decode_audio(state, files().mp3, {});
}
void BM_MediaDecodeWavTo16kMono(benchmark::State& state) {
  AudioOptions o;
  o.sample_rate = 16000;
  o.channels = 1;
  decode_audio(state, files().wav, o);
}
void BM_MediaStreamFlac(benchmark::State& state) {  // 1 s chunks through AudioStreamReader
  double seconds = 0;
  for (auto _ : state) {
    AudioStreamReader r(files().flac);
    at::Tensor c;
    int64_t n = 0;
    while (r.read(c, kAudioRate)) n += c.size(1);
    seconds = static_cast<double>(n) / kAudioRate;
  }
  state.counters["audio_s_per_s"] =
      benchmark::Counter(seconds, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MediaDecodeMp4(benchmark::State& state) {
  int64_t frames = 0;
  for (auto _ : state) {
    at::Tensor v = load_video(files().mp4);
    frames = v.size(0);
    benchmark::DoNotOptimize(v.data_ptr<uint8_t>());
  }
  state.counters["frames_per_s"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["frames"] = static_cast<double>(frames);
}

BENCHMARK(BM_MediaDecodeWav)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MediaDecodeFlac)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MediaDecodeMp3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MediaDecodeWavTo16kMono)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MediaStreamFlac)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MediaDecodeMp4)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
