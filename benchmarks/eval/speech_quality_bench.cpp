// Per-metric time of the speech quality proxies (eval/speech_quality.h, eval/pitch.h) on 10 s of 22.05 kHz
// audio: a harmonic "voice" with vibrato and noise as the reference, a 5 % slower, noisier copy as the
// synthesized signal (so DTW works on 862 x 905 frames), on one libtorch thread:
//   build/cpu/bin/mmref_bench_eval --benchmark_filter='SpeechQuality'
#include <benchmark/benchmark.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "eval/pitch.h"
#include "eval/speech_quality.h"

namespace mmref::eval {
namespace {

constexpr int kRate = 22050;

// 10 s (or `stretch` x 10 s) of a 120 Hz voice-like signal: 8 harmonics, 5 Hz vibrato, syllable envelope.
at::Tensor voice(double stretch, double noise, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(10.0 * stretch * kRate);
  at::Tensor t = at::arange(n, at::kDouble) / (kRate * stretch);
  at::Tensor phase = (t * 120.0 + at::sin(t * (2 * M_PI * 5.0)) * 0.5) * (2 * M_PI * stretch);
  at::Tensor x = at::zeros({n}, at::kDouble);
  for (int h = 1; h <= 8; ++h) x += at::sin(phase * h) / h;
  x *= at::clamp_min(at::sin(t * (2 * M_PI * 2.0)), 0.0) * 0.3;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  x += at::randn({n}, gen, at::TensorOptions().dtype(at::kDouble)) * noise;
  return x.to(at::kFloat);
}

struct Pair {
  Waveform ref, syn, same_length;
};

const Pair& pair() {
  static const Pair p = [] {
    Pair q;
    q.ref = {voice(1.0, 0.003, 1), kRate};
    q.syn = {voice(1.05, 0.01, 2), kRate};
    q.same_length = {q.ref.samples + voice(1.0, 0.02, 3), kRate};
    return q;
  }();
  return p;
}

// Runs one benchmark on one libtorch intra-op thread and restores the previous count afterwards (the
// other benchmarks in this binary keep theirs).
class OneThread {
 public:
  OneThread() : saved_(at::get_num_threads()) { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

void set_counters(benchmark::State& state) {
  state.counters["audio_s_per_s"] =
      benchmark::Counter(10.0, benchmark::Counter::kIsIterationInvariantRate);  // real-time factor
}

void BM_SpeechQuality_SiSdr(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  for (auto _ : state) benchmark::DoNotOptimize(si_sdr(p.ref, p.same_length));
  set_counters(state);
}

void BM_SpeechQuality_MelCepstrum(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  for (auto _ : state) benchmark::DoNotOptimize(mel_cepstrum(p.ref));
  set_counters(state);
}

void BM_SpeechQuality_McdDtw(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  for (auto _ : state) benchmark::DoNotOptimize(mcd(p.ref, p.syn));
  set_counters(state);
}

void BM_SpeechQuality_Yin(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  for (auto _ : state) benchmark::DoNotOptimize(yin(p.ref));
  set_counters(state);
}

void BM_SpeechQuality_F0MetricsDtw(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  for (auto _ : state) benchmark::DoNotOptimize(f0_metrics(p.ref, p.syn));
  set_counters(state);
}

void BM_SpeechQuality_Lsd(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  for (auto _ : state) benchmark::DoNotOptimize(lsd(p.ref, p.same_length));
  set_counters(state);
}

void BM_SpeechQuality_Stoi(benchmark::State& state) {
  OneThread one;
  const Pair& p = pair();
  StoiOptions o;
  o.extended = state.range(0) != 0;
  for (auto _ : state) benchmark::DoNotOptimize(stoi(p.ref, p.same_length, o));
  set_counters(state);
}

BENCHMARK(BM_SpeechQuality_SiSdr)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeechQuality_MelCepstrum)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeechQuality_McdDtw)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeechQuality_Yin)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeechQuality_F0MetricsDtw)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeechQuality_Lsd)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpeechQuality_Stoi)->ArgName("extended")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mmref::eval
