// CPU attention: the fused mmref kernel (kernels/attention/attention_cpu.cpp) vs libtorch's composition
// (matmul + softmax + matmul, the kTorch backend) in the same run. B 1, H 8, D 64, fp32, all cores.
// Counters: GFLOP/s (forward 4*B*H*Lq*Lk*D; forward+backward counted as 3.5x that: 2 forward + 5 backward
// gemms, the kernel's recompute not counted), extra_MiB: analytic bytes beyond inputs/outputs -- the
// composition's Lq x Lk score and probability matrices vs the kernel's per-thread tiles (O(N)) -- and, at
// seq 8192, peak_MiB: the resident memory the call really touched (VmHWM, reset before the call).
//   build/<dir>/bin/mmref_bench_kernels --benchmark_filter=Attention
#include <benchmark/benchmark.h>

#include <fstream>
#include <string>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/attention/attention.h"
#include "kernels/dispatch.h"

namespace {

using mmref::kernels::AttentionBackend;

constexpr int64_t kB = 1, kH = 8, kD = 64;

double fwd_flops(int64_t L) { return 4.0 * kB * kH * L * L * kD; }

// Extra bytes beyond q/k/v/out. Composition: scores + probabilities (B,H,L,L) fp32 (forward), and for
// backward also their gradients. Kernel: per thread a 128x128 tile and a 128xD accumulator (forward);
// backward adds 2 more tiles per thread and nthreads x |q| dQ buffers.
double extra_bytes(bool mmref, bool backward, int64_t L) {
  const double threads = at::get_num_threads();
  if (!mmref) return (backward ? 4.0 : 2.0) * kB * kH * L * L * 4;
  const double fwd = threads * (128.0 * 128 + 128.0 * kD + 4 * 128) * 4 + kB * kH * L * 4 /*lse*/;
  return backward ? fwd + threads * 2 * 128.0 * 128 * 4 + threads * kB * kH * L * kD * 4 : fwd;
}

void BM_AttentionForward(benchmark::State& state) {
  const int64_t L = state.range(0);
  const bool mmref = state.range(1) == 1;
  at::manual_seed(0);
  const at::Tensor q = at::randn({kB, kH, L, kD}), k = at::randn({kB, kH, L, kD}), v = at::randn({kB, kH, L, kD});
  const auto backend = mmref ? AttentionBackend::kMmref : AttentionBackend::kTorch;
  for (auto _ : state) {
    at::Tensor out = mmref::kernels::attention(q, k, v, {}, backend);
    benchmark::DoNotOptimize(out.data_ptr<float>());
  }
  state.SetLabel(mmref ? "mmref" : "torch");
  state.counters["GFLOP/s"] = benchmark::Counter(fwd_flops(L), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["extra_MiB"] = extra_bytes(mmref, false, L) / (1 << 20);
}

void BM_AttentionForwardBackward(benchmark::State& state) {
  const int64_t L = state.range(0);
  const bool mmref = state.range(1) == 1;
  at::manual_seed(0);
  const at::Tensor q = at::randn({kB, kH, L, kD}).requires_grad_(), k = at::randn({kB, kH, L, kD}).requires_grad_(),
                   v = at::randn({kB, kH, L, kD}).requires_grad_();
  const at::Tensor dout = at::randn({kB, kH, L, kD});
  const auto backend = mmref ? AttentionBackend::kMmref : AttentionBackend::kTorch;
  for (auto _ : state) {
    at::Tensor out = mmref::kernels::attention(q, k, v, {}, backend);
    auto g = torch::autograd::grad({out}, {q, k, v}, {dout});
    benchmark::DoNotOptimize(g[0].data_ptr<float>());
  }
  state.SetLabel(mmref ? "mmref" : "torch");
  state.counters["GFLOP/s"] = benchmark::Counter(3.5 * fwd_flops(L), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["extra_MiB"] = extra_bytes(mmref, true, L) / (1 << 20);
}

// Peak memory at seq 8192 (forward), measured: the process' peak resident set (VmHWM) is reset through
// /proc/self/clear_refs after q/k/v exist, so peak_MiB = VmHWM after the call - VmRSS before it (what the
// call itself touched: libtorch's CPU allocator returns large blocks to the OS, so nothing is cached).
// extra_MiB is the analytic figure beside it.
int64_t proc_status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(k, 0) == 0) return std::stoll(line.substr(k.size()));
  }
  return -1;
}
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  return static_cast<bool>(out);
}

void BM_AttentionMemory8192(benchmark::State& state) {
  const bool mmref = state.range(0) == 1;
  const int64_t L = 8192;
  double peak_mib = -1;
  for (auto _ : state) {
    state.PauseTiming();
    const at::Tensor q = at::randn({kB, kH, L, kD}), k = at::randn({kB, kH, L, kD}), v = at::randn({kB, kH, L, kD});
    const bool reset = reset_peak_rss();
    const int64_t before = proc_status_kib("VmRSS");
    state.ResumeTiming();
    at::Tensor out = mmref::kernels::attention(q, k, v, {}, mmref ? AttentionBackend::kMmref : AttentionBackend::kTorch);
    benchmark::DoNotOptimize(out.data_ptr<float>());
    state.PauseTiming();
    const int64_t after = proc_status_kib("VmHWM");
    // without clear_refs (some kernels forbid it) the figure would include earlier peaks: report none
    if (reset && before >= 0 && after >= 0) peak_mib = (after - before) / 1024.0;
    state.ResumeTiming();
  }
  state.SetLabel(mmref ? "mmref" : "torch");
  state.counters["peak_MiB"] = peak_mib;
  state.counters["extra_MiB"] = extra_bytes(mmref, false, L) / (1 << 20);
  state.counters["GFLOP/s"] = benchmark::Counter(fwd_flops(L), benchmark::Counter::kIsIterationInvariantRate);
}

// Args: {seq, 1 = mmref kernel / 0 = libtorch composition}.
BENCHMARK(BM_AttentionForward)->ArgsProduct({{1024, 4096}, {1, 0}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionForwardBackward)->ArgsProduct({{1024, 4096}, {1, 0}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionMemory8192)->Arg(1)->Arg(0)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
