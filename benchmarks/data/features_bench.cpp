// Throughput of the audio features (src/data/features/) on one intra-op thread:
//   BM_KaldiFbank10s              Kaldi fbank (80 mels, 25/10 ms, povey) of 10 s at 16 kHz: frames/s
//   BM_KaldiFbankTorchaudio10s    the same through torchaudio.compliance.kaldi.fbank, timed by
//                                 benchmarks/data/fbank_torchaudio.py (/usr/bin/python3, timeit best of 5;
//                                 found via $MMREF_SOURCE_DIR or the binary's parent folders)
//                                 side by side; counter mmref_speedup = torchaudio time / ours
//   BM_KaldiMfcc10s, BM_LogMel10s (HiFi-GAN mel at 22.05 kHz), BM_Resample44k16k10s
// Run: build/<dir>/benchmarks/mmref_bench_data --benchmark_filter='Kaldi|LogMel|Resample'
#include <benchmark/benchmark.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "data/features/kaldi_fbank.h"
#include "data/features/mel.h"
#include "data/features/resample.h"

namespace {

using namespace mmref::data;

at::Tensor noise_wave(int64_t n) {
  at::set_num_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  return (at::randn({1, n}, gen, at::kFloat) * 2000.0).round();
}

KaldiFbankOptions fbank80() {
  KaldiFbankOptions o;
  o.num_mel_bins = 80;
  o.energy_floor = 0.0;
  return o;
}

void BM_KaldiFbank10s(benchmark::State& state) {
  const at::Tensor wave = noise_wave(160000);
  const KaldiFbankOptions o = fbank80();
  int64_t frames = 0;
  for (auto _ : state) {
    at::Tensor f = kaldi_fbank(wave, 16000, o);
    frames += f.size(0);
    benchmark::DoNotOptimize(f.data_ptr());
  }
  state.counters["frames_per_s"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  state.counters["audio_x_realtime"] =
      benchmark::Counter(10.0 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KaldiFbank10s)->Unit(benchmark::kMillisecond);

// benchmarks/data/fbank_torchaudio.py: under $MMREF_SOURCE_DIR, else the first parent of this binary
// (build/<dir>/bin/) that holds it, else relative to the working directory.
std::string torchaudio_script() {
  namespace stdfs = std::filesystem;
  const std::string rel = "benchmarks/data/fbank_torchaudio.py";
  if (const char* env = std::getenv("MMREF_SOURCE_DIR"); env && *env) return std::string(env) + "/" + rel;
  std::error_code ec;
  stdfs::path dir = stdfs::read_symlink("/proc/self/exe", ec).parent_path();
  for (int i = 0; !ec && i < 6 && !dir.empty(); ++i, dir = dir.parent_path()) {
    if (stdfs::exists(dir / rel)) return (dir / rel).string();
    if (dir == dir.parent_path()) break;
  }
  return rel;
}

// Best-of-5 seconds per call of ours, 20 calls each (what timeit.repeat does on the python side).
double best_seconds_ours(const at::Tensor& wave, const KaldiFbankOptions& o) {
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) benchmark::DoNotOptimize(kaldi_fbank(wave, 16000, o).data_ptr());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 20);
  }
  return best;
}

void BM_KaldiFbankTorchaudio10s(benchmark::State& state) {
  const std::string cmd = "/usr/bin/python3 " + torchaudio_script() + " --threads 1 --seconds 10 2>&1";
  double seconds = 0, frames = 0;
  {
    FILE* p = popen(cmd.c_str(), "r");
    char buf[512] = {0};
    std::string out;
    while (p && fgets(buf, sizeof buf, p)) out += buf;
    const int rc = p ? pclose(p) : -1;
    const auto at = out.find("\"seconds_per_call\":");
    const auto af = out.find("\"frames\":");
    if (rc != 0 || at == std::string::npos || af == std::string::npos) {
      state.SkipWithError(("torchaudio run failed: " + cmd + ": " + out).c_str());
      return;
    }
    seconds = std::stod(out.substr(at + 19));
    frames = std::stod(out.substr(af + 9));
  }
  const double ours = best_seconds_ours(noise_wave(160000), fbank80());
  for (auto _ : state) state.SetIterationTime(seconds);
  state.counters["frames_per_s"] = frames / seconds;
  state.counters["mmref_frames_per_s"] = frames / ours;
  state.counters["mmref_speedup"] = seconds / ours;
}
BENCHMARK(BM_KaldiFbankTorchaudio10s)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_KaldiMfcc10s(benchmark::State& state) {
  const at::Tensor wave = noise_wave(160000);
  KaldiMfccOptions o;
  o.fbank = fbank80();
  int64_t frames = 0;
  for (auto _ : state) {
    at::Tensor f = kaldi_mfcc(wave, 16000, o);
    frames += f.size(0);
    benchmark::DoNotOptimize(f.data_ptr());
  }
  state.counters["frames_per_s"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KaldiMfcc10s)->Unit(benchmark::kMillisecond);

void BM_LogMel10s(benchmark::State& state) {
  const at::Tensor wave = noise_wave(220500)[0] / 32768.0;
  LogMelOptions o;
  int64_t frames = 0;
  for (auto _ : state) {
    at::Tensor m = log_mel_spectrogram(wave, o);
    frames += m.size(1);
    benchmark::DoNotOptimize(m.data_ptr());
  }
  state.counters["frames_per_s"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LogMel10s)->Unit(benchmark::kMillisecond);

void BM_Resample44k16k10s(benchmark::State& state) {
  const at::Tensor wave = noise_wave(441000) / 32768.0;
  for (auto _ : state) benchmark::DoNotOptimize(resample(wave, 44100, 16000).data_ptr());
  state.counters["audio_x_realtime"] =
      benchmark::Counter(10.0 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Resample44k16k10s)->Unit(benchmark::kMillisecond);

}  // namespace
