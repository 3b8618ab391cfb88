// CUDA-event timing shared by the GPU benchmarks (builds with the CUDA binding only): one warm-up call,
// then per iteration a 256 MiB buffer is written to flush L2 and fn() is timed between two events on the
// current stream; the time goes to Google Benchmark through SetIterationTime (use UseManualTime()).
#pragma once
#ifdef MMREF_CUDA_BINDINGS
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <ATen/Functions.h>

namespace mmref::bench {

template <typename F>
void run_cuda_timed(benchmark::State& state, F fn) {
  static at::Tensor flush = at::empty({64 << 20}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  fn();  // warm-up
  for (auto _ : state) {
    flush.zero_();
    cudaEventRecord(start);
    fn();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

}  // namespace mmref::bench
#endif  // MMREF_CUDA_BINDINGS
