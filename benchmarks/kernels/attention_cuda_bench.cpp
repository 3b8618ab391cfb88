// GPU attention: mmref's CUDA kernel vs libtorch 2.x's scaled_dot_product_attention (its FlashAttention-2 /
// cuDNN backends, whichever libtorch picks) in the same run; builds with the CUDA binding only (`cuda`
// preset). bf16, batch x heads filling the chip (B * L = 16384 tokens, H * D = 2048), CUDA events per
// iteration with L2 flushed in between (cuda_timing.h, UseManualTime). Counter TFLOP/s: forward 4 B H L^2 D (halved when causal), forward+backward
// 3.5x that (FlashAttention's convention).
//   build/cuda/bin/mmref_bench_kernels --benchmark_filter=GpuAttention
#ifdef MMREF_CUDA_BINDINGS
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>

#include "cuda_timing.h"
#include "kernels/dispatch.h"

namespace {

// args: L, D, causal, backward, backend (1 mmref, 0 libtorch sdpa)
void BM_GpuAttention(benchmark::State& state) {
  if (!at::hasCUDA()) return state.SkipWithError("no CUDA device");
  const int64_t L = state.range(0), D = state.range(1);
  const bool causal = state.range(2) == 1, backward = state.range(3) == 1, mmref = state.range(4) == 1;
  const int64_t B = std::max<int64_t>(1, 16384 / L), H = 2048 / D;
  const auto o = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA);
  const at::Tensor q = at::randn({B, H, L, D}, o).requires_grad_(backward);
  const at::Tensor k = at::randn({B, H, L, D}, o).requires_grad_(backward);
  const at::Tensor v = at::randn({B, H, L, D}, o).requires_grad_(backward);
  const at::Tensor dout = at::randn({B, H, L, D}, o);
  mmref::kernels::AttentionOptions opt;
  opt.causal = causal;
  auto step = [&] {
    at::Tensor out;
    if (mmref) {
      out = mmref::kernels::attention(q, k, v, opt, mmref::kernels::AttentionBackend::kMmref);
    } else {
#if TORCH_VERSION_MAJOR >= 2
      out = at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
      out = mmref::kernels::attention(q, k, v, opt, mmref::kernels::AttentionBackend::kTorch);
#endif
    }
    if (backward) torch::autograd::grad({out}, {q, k, v}, {dout});
  };
  mmref::bench::run_cuda_timed(state, step);
  const double flops = 4.0 * B * H * L * L * D * (causal ? 0.5 : 1.0) * (backward ? 3.5 : 1.0);
  state.SetLabel(mmref ? "mmref" : "libtorch sdpa");
  state.counters["TFLOP/s"] = benchmark::Counter(flops / 1e12, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GpuAttention)
    ->ArgsProduct({{1024, 4096, 16384}, {64, 128}, {0, 1}, {0, 1}, {1, 0}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
#endif  // MMREF_CUDA_BINDINGS
