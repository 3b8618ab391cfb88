// The BLAS libtorch really uses: 1024x1024 fp32 matmul GFLOP/s at 1 thread and all cores.
// Debian's libtorch calls whatever libblas.so.3 points to; with the reference BLAS this is ~6 GFLOP/s
// on the 2-core machine, with OpenBLAS (scripts/install_deps.sh) ~180.
//   build/cpu/bin/mmref_bench_core --benchmark_filter=Matmul
#include <benchmark/benchmark.h>

#include <thread>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

namespace {

void BM_MatmulF32(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int threads = state.range(1) > 0 ? static_cast<int>(state.range(1))
                                         : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  at::Tensor c = at::matmul(a, b);  // warm-up
  for (auto _ : state) {
    at::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = threads;
}
BENCHMARK(BM_MatmulF32)->Args({1024, 1})->Args({1024, 0})->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
