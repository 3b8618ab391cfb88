// CPU conv-family kernels vs the libtorch ops they replace, in the same run, all cores, fp32:
//   DepthwiseConv1d  Conformer conv module shapes (B 4, C 256, T 1000; K 15 and 31, "same"):
//                    mmref kernel vs at::conv1d(groups=C) (the kTorch backend), forward and fwd+bwd
//   GroupNormSilu    UNet shapes ((2, 256, 32, 32) and (1, 128, 64, 64), 32 groups): fused kernel vs
//                    at::group_norm + at::silu, forward and fwd+bwd
//   Conv1dGeneral    HiFi-GAN resblock shape ((1, 128, 8192), K 7, dilation 3, "same"): libtorch's conv1d
//                    (what kMmref uses on CPU) vs the unfold+matmul reference -- why the dispatch calls
//                    libtorch for the general conv on CPU
// Counters: GB/s of the minimal traffic (read x, write out; backward adds read dout, write dx) and, for the
// convs, GFLOP/s (2 * B * C * T * K per depthwise forward).
//   build/<dir>/bin/mmref_bench_kernels --benchmark_filter='DepthwiseConv1d|GroupNormSilu|Conv1dGeneral'
#include <benchmark/benchmark.h>

#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/dispatch.h"

namespace {

using mmref::kernels::ConvBackend;

ConvBackend backend_of(int64_t v) { return v == 1 ? ConvBackend::kMmref : ConvBackend::kTorch; }
const char* label_of(int64_t v) { return v == 1 ? "mmref" : "torch"; }

// args: K, backend (1 mmref, 0 torch), backward (0/1)
void BM_DepthwiseConv1d(benchmark::State& state) {
  const int64_t B = 4, C = 256, T = 1000, K = state.range(0);
  const bool backward = state.range(2) == 1;
  at::manual_seed(0);
  const at::Tensor x = at::randn({B, C, T}).requires_grad_(backward);
  const at::Tensor w = at::randn({C, 1, K}).requires_grad_(backward), b = at::randn({C}).requires_grad_(backward);
  const at::Tensor dout = at::randn({B, C, T});
  const auto opt = mmref::kernels::DepthwiseConv1dOptions::padding("same", K);
  for (auto _ : state) {
    at::Tensor y = mmref::kernels::depthwise_conv1d(x, w, b, opt, backend_of(state.range(1)));
    if (backward) {
      auto g = torch::autograd::grad({y}, {x, w, b}, {dout});
      benchmark::DoNotOptimize(g[0].data_ptr<float>());
    }
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  const double flops = 2.0 * B * C * T * K * (backward ? 3 : 1);
  const double bytes = 4.0 * B * C * T * (backward ? 4 : 2);
  state.SetLabel(label_of(state.range(1)));
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_DepthwiseConv1d)->ArgsProduct({{15, 31}, {1, 0}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

// args: shape (0: (2,256,32,32), 1: (1,128,64,64)), backend, backward
void BM_GroupNormSilu(benchmark::State& state) {
  const std::vector<int64_t> shape = state.range(0) == 0 ? std::vector<int64_t>{2, 256, 32, 32}
                                                         : std::vector<int64_t>{1, 128, 64, 64};
  const bool backward = state.range(2) == 1;
  at::manual_seed(0);
  const at::Tensor x = at::randn(shape).requires_grad_(backward);
  const at::Tensor g = at::randn({shape[1]}).requires_grad_(backward), b = at::randn({shape[1]}).requires_grad_(backward);
  const at::Tensor dout = at::randn(shape);
  mmref::kernels::GroupNormOptions opt;
  opt.groups = 32;
  for (auto _ : state) {
    at::Tensor y = mmref::kernels::group_norm_silu(x, g, b, opt, backend_of(state.range(1)));
    if (backward) {
      auto gr = torch::autograd::grad({y}, {x, g, b}, {dout});
      benchmark::DoNotOptimize(gr[0].data_ptr<float>());
    }
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  const double bytes = 4.0 * x.numel() * (backward ? 4 : 2);
  state.SetLabel(label_of(state.range(1)));
  state.counters["GB/s"] = benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GroupNormSilu)->ArgsProduct({{0, 1}, {1, 0}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime();

// args: backend (1: kMmref = libtorch conv1d on CPU, 2: reference)
void BM_Conv1dGeneral(benchmark::State& state) {
  const int64_t C = 128, T = 8192, K = 7, dil = 3;
  at::manual_seed(0);
  const at::Tensor x = at::randn({1, C, T}), w = at::randn({C, C, K}), b = at::randn({C});
  mmref::kernels::Conv1dOptions opt;
  opt.dilation = dil;
  opt.padding = dil * (K - 1) / 2;
  const auto backend = state.range(0) == 1 ? ConvBackend::kMmref : ConvBackend::kReference;
  for (auto _ : state) {
    at::Tensor y = mmref::kernels::conv1d(x, w, b, opt, backend);
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.SetLabel(state.range(0) == 1 ? "mmref(libtorch conv1d)" : "reference(unfold+matmul)");
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * C * C * T * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_Conv1dGeneral)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
