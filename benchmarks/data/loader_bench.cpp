// DataLoader throughput and "does the loader keep training fed" on a synthetic dataset whose get()
// costs about 1 ms of busy compute (a (T, 400) x (400, 80) fbank-like projection in plain loops, T
// calibrated once so that one get() takes ~1 ms on this machine; counter get_ms reports it).
//   BM_LoaderThroughput/workers:W   one epoch of 256 examples, batch 8: batches/s, examples/s
//   BM_LoaderFed/workers:W          the consumer "trains" 10 ms per batch (sleep: like a host thread
//                                   waiting on the GPU); counter wait_fraction = wait_seconds / total
// Run: build/<dir>/benchmarks/mmref_bench_data --benchmark_filter=Loader
#include <benchmark/benchmark.h>

#include <ATen/Functions.h>

#include <chrono>
#include <thread>

#include "data/dataset/loader.h"

namespace {

using namespace mmref::data;
using Clock = std::chrono::steady_clock;

constexpr int64_t kIn = 400, kOut = 80;

// Busy compute: frames (rows, kIn) of a fixed pattern times a (kIn, kOut) weight.
void project(int64_t rows, float* out) {
  static const std::vector<float> weight = [] {
    std::vector<float> w(kIn * kOut);
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 2654435761u) % 1000) * 1e-3f;
    return w;
  }();
  std::vector<float> frame(kIn);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < kIn; ++k) frame[k] = static_cast<float>((r * 31 + k) % 97) * 0.01f;
    float* o = out + r * kOut;
    for (int64_t j = 0; j < kOut; ++j) o[j] = 0;
    for (int64_t k = 0; k < kIn; ++k) {
      const float x = frame[k];
      const float* w = weight.data() + k * kOut;
      for (int64_t j = 0; j < kOut; ++j) o[j] += x * w[j];
    }
  }
}

// Rows for ~1 ms per get(), measured once.
int64_t rows_for_1ms() {
  static const int64_t rows = [] {
    std::vector<float> out(1000 * kOut);
    project(1000, out.data());  // warm up
    const auto t0 = Clock::now();
    project(1000, out.data());
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    return std::max<int64_t>(1, static_cast<int64_t>(1000.0 / ms));
  }();
  return rows;
}

class SyntheticDataset : public Dataset {
 public:
  explicit SyntheticDataset(int64_t n) : n_(n), rows_(rows_for_1ms()) {}
  int64_t size() const override { return n_; }
  int64_t length(int64_t i) const override { return rows_ - i % 8; }
  Example get(int64_t i) const override {
    Example ex;
    ex.id = "syn" + std::to_string(i);
    ex.length = length(i);
    at::Tensor feats = at::empty({ex.length, kOut}, at::kFloat);
    project(ex.length, feats.data_ptr<float>());
    ex.tensors["feats"] = feats;
    ex.tensors["tokens"] = at::full({1 + i % 20}, i, at::kLong);
    return ex;
  }

 private:
  int64_t n_, rows_;
};

double get_ms(const Dataset& ds) {
  const auto t0 = Clock::now();
  for (int i = 0; i < 20; ++i) benchmark::DoNotOptimize(ds.get(i));
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / 20;
}

LoaderOptions options(int workers) {
  LoaderOptions o;
  o.sampler.batch_size = 8;
  o.sampler.seed = 1;
  o.num_workers = workers;
  o.prefetch_batches = 4;
  return o;
}

void BM_LoaderThroughput(benchmark::State& state) {
  auto ds = std::make_shared<SyntheticDataset>(256);
  const int workers = static_cast<int>(state.range(0));
  int64_t batches = 0, examples = 0;
  for (auto _ : state) {
    DataLoader loader(ds, options(workers));
    while (auto b = loader.next()) {
      ++batches;
      examples += b->size();
    }
  }
  state.counters["batches_per_s"] =
      benchmark::Counter(static_cast<double>(batches), benchmark::Counter::kIsRate);
  state.counters["examples_per_s"] =
      benchmark::Counter(static_cast<double>(examples), benchmark::Counter::kIsRate);
  state.counters["get_ms"] = get_ms(*ds);
}
BENCHMARK(BM_LoaderThroughput)
    ->ArgName("workers")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_LoaderFed(benchmark::State& state) {
  auto ds = std::make_shared<SyntheticDataset>(256);
  const int workers = static_cast<int>(state.range(0));
  double wait = 0, total = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    DataLoader loader(ds, options(workers));
    while (auto b = loader.next()) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // "train"
    total += std::chrono::duration<double>(Clock::now() - t0).count();
    wait += loader.wait_seconds();
  }
  state.counters["wait_fraction"] = wait / total;
  state.counters["get_ms"] = get_ms(*ds);
}
BENCHMARK(BM_LoaderFed)
    ->ArgName("workers")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

}  // namespace
