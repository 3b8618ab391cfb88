// The training engine's overhead: the same MLP step as a bare libtorch loop and through the Trainer
// (src/train/step_bench.h). Each iteration reports the median step of 100 (manual time), so the two
// rows compare directly; the target is engine <= 1.03 x bare. The Python eager peer runs through
// `mmref bench train-step`.
//   build/cpu/bin/mmref_bench_train --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdlib>

#include <ATen/Parallel.h>

#include "core/fs.h"
#include "train/step_bench.h"

namespace {

mmref::train::StepBenchConfig config(const benchmark::State& state) {
  mmref::train::StepBenchConfig c;
  c.hidden = state.range(0);
  c.batch_size = state.range(1);
  c.steps = 100, c.warmup = 10, c.threads = 1;
  at::set_num_threads(1);
  return c;
}

void BM_TrainStepBare(benchmark::State& state) {
  const auto c = config(state);
  for (auto _ : state) state.SetIterationTime(mmref::train::median(mmref::train::time_bare_steps(c)));
}

void BM_TrainStepEngine(benchmark::State& state) {
  const auto c = config(state);
  const std::string dir = mmref::fs::make_temp_dir("mmref_bench_engine_");
  for (auto _ : state) state.SetIterationTime(mmref::train::median(mmref::train::time_engine_steps(c, dir)));
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace

// Args: hidden width, batch. 512/256 is the `mmref bench train-step` default; 128/64 is a step so small
// that per-step bookkeeping shows most.
BENCHMARK(BM_TrainStepBare)->Args({512, 256})->Args({128, 64})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_TrainStepEngine)->Args({512, 256})->Args({128, 64})->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
