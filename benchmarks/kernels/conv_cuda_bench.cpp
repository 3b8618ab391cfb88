// GPU conv-family kernels vs the libtorch ops they replace, in the same run (builds with the CUDA binding
// only: the `cuda` preset). CUDA events time each iteration (UseManualTime); a 256 MiB buffer is written
// between iterations to flush L2. Counters: GB/s of the minimal traffic and its fraction of the device's
// measured copy bandwidth (kernels/common/cuda_device.h), bf16:
//   GpuDepthwiseConv1d  K 31, B*T 16k (B 8, T 2048), C 512 and 1024, "same": fwd and fwd+bwd
//   GpuGroupNormSilu    UNet shapes (8, 320, 64, 64), (8, 640, 32, 32), (8, 1280, 16, 16), 32 groups
//   build/cuda/bin/mmref_bench_kernels --benchmark_filter=Gpu
#ifdef MMREF_CUDA_BINDINGS
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/common/cuda_device.h"
#include "cuda_timing.h"
#include "kernels/dispatch.h"

namespace {

using mmref::kernels::ConvBackend;

double copy_ceiling_gbs() {
  static const double gbs = mmref::kernels::measure_copy_bandwidth_gbs(0, size_t(1) << 30, 20);
  return gbs;
}

using mmref::bench::run_cuda_timed;

void report(benchmark::State& state, double bytes, const char* label) {
  state.SetLabel(label);
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["copy_GB/s"] = copy_ceiling_gbs();
}

// args: C, backend (1 mmref, 0 torch), backward
void BM_GpuDepthwiseConv1d(benchmark::State& state) {
  if (!at::hasCUDA()) return state.SkipWithError("no CUDA device");
  const int64_t B = 8, T = 2048, C = state.range(0), K = 31;
  const bool mmref = state.range(1) == 1, backward = state.range(2) == 1;
  const auto o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
  const at::Tensor x = at::randn({B, C, T}, o).requires_grad_(backward), w = at::randn({C, 1, K}, o).requires_grad_(backward);
  const at::Tensor b = at::randn({C}, o).requires_grad_(backward), dout = at::randn({B, C, T}, o);
  const auto opt = mmref::kernels::DepthwiseConv1dOptions::padding("same", K);
  run_cuda_timed(state, [&] {
    at::Tensor y = mmref::kernels::depthwise_conv1d(x, w, b, opt, mmref ? ConvBackend::kMmref : ConvBackend::kTorch);
    if (backward) torch::autograd::grad({y}, {x, w, b}, {dout});
  });
  report(state, 2.0 * B * C * T * (backward ? 4 : 2), mmref ? "mmref" : "torch");
}
BENCHMARK(BM_GpuDepthwiseConv1d)->ArgsProduct({{512, 1024}, {1, 0}, {0, 1}})->UseManualTime()->Unit(benchmark::kMicrosecond);

// args: shape index, backend, backward
void BM_GpuGroupNormSilu(benchmark::State& state) {
  if (!at::hasCUDA()) return state.SkipWithError("no CUDA device");
  const std::vector<std::vector<int64_t>> shapes = {{8, 320, 64, 64}, {8, 640, 32, 32}, {8, 1280, 16, 16}};
  const auto& shape = shapes[state.range(0)];
  const bool mmref = state.range(1) == 1, backward = state.range(2) == 1;
  const auto o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
  const at::Tensor x = at::randn(shape, o).requires_grad_(backward);
  const at::Tensor g = at::randn({shape[1]}, o).requires_grad_(backward), be = at::randn({shape[1]}, o).requires_grad_(backward);
  const at::Tensor dout = at::randn(shape, o);
  mmref::kernels::GroupNormOptions opt;
  run_cuda_timed(state, [&] {
    at::Tensor y = mmref::kernels::group_norm_silu(x, g, be, opt, mmref ? ConvBackend::kMmref : ConvBackend::kTorch);
    if (backward) torch::autograd::grad({y}, {x, g, be}, {dout});
  });
  report(state, 2.0 * x.numel() * (backward ? 4 : 2), mmref ? "mmref" : "torch");
}
BENCHMARK(BM_GpuGroupNormSilu)->ArgsProduct({{0, 1, 2}, {1, 0}, {0, 1}})->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace
#endif  // MMREF_CUDA_BINDINGS
