// FID cost at Inception pool3 size (d = 2048), CPU, float64:
//   FrechetDistance/2048        frechet_distance on random SPD covariances (full rank): Eigen LLT of
//                               sigma1, W^T sigma2 W (two triangular products), eigenvalues only
//   FrechetDistanceRank299      the same with rank-299 covariances (300 samples, golden sub-case b's
//                               shape): pivoted Cholesky stops at the rank, a 299 x 299 eigenproblem
//   FrechetTraceSqrtLapack      variant, not used by src/: the eigendecomposition route (sigma1 = V D V^T,
//                               W = V sqrt(D)) through libtorch's LAPACK (linalg_eigh / linalg_eigvalsh)
//   FrechetStats/10000/2048     compute_feature_stats on 10000 x 2048 float32 features (mean, X^T X)
// Measured medians (2 shared cores, load ~5; CPU time in brackets): FrechetDistance 3.4 s (3.3 s),
// Rank299 0.6 s, LAPACK variant 1.8-4.8 s (1.8 s, multi-threaded), Stats 1.1-2.5 s (1.0 s). The first
// version, Eigen's SelfAdjointEigenSolver with eigenvectors for sigma1, took 23 s (11.6 s CPU).
//   build/<dir>/bin/mmref_bench_eval --benchmark_filter=Frechet
#include <benchmark/benchmark.h>

#include <ATen/ATen.h>

#include "eval/frechet.h"

namespace mmref::eval {
namespace {

struct SpdPair {
  at::Tensor mu1, mu2, s1, s2;
};

// sigma = A A^T / k + 1e-3 I from A (d, k) ~ N(0, 1); k = d gives full rank, k < d rank k (no ridge).
SpdPair spd_pair(int64_t d, int64_t k, bool ridge) {
  at::manual_seed(0);
  SpdPair p;
  auto one = [&]() {
    const at::Tensor a = at::randn({d, k}, at::kDouble);
    at::Tensor s = a.mm(a.t()).div_(static_cast<double>(k));
    if (ridge) s.add_(at::eye(d, at::kDouble).mul_(1e-3));
    return s;
  };
  p.s1 = one();
  p.s2 = one();
  p.mu1 = at::randn({d}, at::kDouble);
  p.mu2 = at::randn({d}, at::kDouble);
  return p;
}

void BM_FrechetDistance(benchmark::State& state) {
  const SpdPair p = spd_pair(state.range(0), state.range(0), /*ridge=*/true);
  for (auto _ : state) benchmark::DoNotOptimize(frechet_distance(p.mu1, p.s1, p.mu2, p.s2).value);
}
BENCHMARK(BM_FrechetDistance)
    ->Name("FrechetDistance")
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true);

void BM_FrechetDistanceRank299(benchmark::State& state) {
  const SpdPair p = spd_pair(2048, 299, /*ridge=*/false);
  for (auto _ : state) benchmark::DoNotOptimize(frechet_distance(p.mu1, p.s1, p.mu2, p.s2).value);
}
BENCHMARK(BM_FrechetDistanceRank299)
    ->Name("FrechetDistanceRank299")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true);

void BM_FrechetTraceSqrtLapack(benchmark::State& state) {
  const SpdPair p = spd_pair(state.range(0), state.range(0), /*ridge=*/true);
  for (auto _ : state) {
    const auto [ev, v] = at::linalg_eigh(p.s1);
    const at::Tensor w = v * ev.clamp_min(0).sqrt();
    const at::Tensor lam = at::linalg_eigvalsh(w.t().mm(p.s2.mm(w)));
    benchmark::DoNotOptimize(lam.clamp_min(0).sqrt().sum().item<double>());
  }
}
BENCHMARK(BM_FrechetTraceSqrtLapack)
    ->Name("FrechetTraceSqrtLapack")
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true);

void BM_FrechetStats(benchmark::State& state) {
  at::manual_seed(0);
  const at::Tensor x = at::randn({state.range(0), state.range(1)});
  for (auto _ : state) benchmark::DoNotOptimize(compute_feature_stats(x).sigma.data_ptr());
}
BENCHMARK(BM_FrechetStats)
    ->Name("FrechetStats")
    ->Args({10000, 2048})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true);

}  // namespace
}  // namespace mmref::eval
