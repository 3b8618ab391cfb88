// Feature-statistics metrics in float64: FID (Fréchet distance of Gaussians fitted to features), KID and
// the Inception Score, each computing what its reference computes.
//
//   FID: mseitzer/pytorch-fid 0.3.0 (b9c1811) src/pytorch_fid/fid_score.py:
//        mu = np.mean(act, 0), sigma = np.cov(act, rowvar=False) on float64 copies (unbiased, N-1);
//        calculate_frechet_distance = |mu1-mu2|^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 s2)).
//        pytorch-fid takes scipy.linalg.sqrtm(s1 @ s2); if that is not finite it prints a warning and
//        retries with s1 + eps*I, s2 + eps*I (eps = 1e-6; the trace terms keep the unshifted sigmas); it
//        uses .real of a complex result. We never form that square root: tr(sqrtm(s1 s2)) is the sum of
//        the square roots of the eigenvalues of W^T s2 W with s1 = W W^T (W: s1's Cholesky factor, pivoted
//        and rank-revealing when s1 is semidefinite), a symmetric PSD matrix similar to
//        sqrt(s1) s2 sqrt(s1), so Eigen's SelfAdjointEigenSolver applies; tiny
//        negative eigenvalues are round-off and count as 0, which is what .real of scipy's complex
//        square root contributes for them. Whether pytorch-fid takes the eps path is decided by replaying
//        the one way scipy 1.10's sqrtm fails (scipy_sqrtm_check below), so `eps_path` matches it.
//   KID: toshas/torch-fidelity 0.4.0 (5e211a9) torch_fidelity/metric_kid.py kid_features_to_metric:
//        polynomial kernel (gamma x.y + coef0)^degree with gamma = 1/d, unbiased MMD^2 per subset, mean
//        and std (ddof 0) over subsets; the subsets are drawn exactly as numpy.random.RandomState(seed)
//        .choice(N, m, replace=False) draws them there (seed 2020).
//   IS:  torch-fidelity 0.4.0 torch_fidelity/metric_isc.py isc_features_to_metric: optional shuffle with
//        RandomState(seed).permutation, softmax in float64, `splits` chunks [i*N/splits, (i+1)*N/splits),
//        exp(mean_x KL(p(y|x) || p(y))) per chunk, mean and std (ddof 0).
//
// Tests: tests/eval/frechet_test.cpp (hand-computed cases, numpy/scipy cross-checks),
// tests/eval/frechet_golden_test.cpp (../shared/golden/frechet); timing: benchmarks/eval/frechet_bench.cpp.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mmref::eval {

// Gaussian statistics of a feature set, pytorch-fid's (mu, sigma). The public API is Eigen-free.
struct FeatureStats {
  at::Tensor mu;        // (d) float64
  at::Tensor sigma;     // (d, d) float64, np.cov(rowvar=False): unbiased (N-1), symmetric
  int64_t n = 0;        // rows they came from; -1 when loaded from a file that does not record it
  std::string warning;  // non-empty when sigma is unreliable (N < 2: NaN as numpy's; N < d+1: singular)
};

// mu and sigma of `features` (N, d), any floating dtype or device, computed on a float64 CPU copy.
// N < 2 or N < d+1 sets `warning` (no throw): N < 2 gives a NaN sigma, as numpy.cov does. Up to 256
// rows and columns the results carry numpy's bits (same operation order), which the eps-path replay
// needs; larger inputs go through BLAS (agreeing to ~1e-15 relative). Non-finite features and non-2-D
// input throw mmref::Error naming `name` and the first bad row and column.
FeatureStats compute_feature_stats(const at::Tensor& features, const std::string& name = "features");

// pytorch-fid's .npz layout: float64 "mu" (d) and "sigma" (d, d), plus int64 "n" (ignored by pytorch-fid).
// Paths ending in .h5 / .hdf5 (optionally "file.h5:/group" when loading) use the HDF5 layout of
// eval/stats_hdf5.h instead: datasets mu, sigma and n.
void save_feature_stats(const std::string& path, const FeatureStats& stats);
// Reads "mu" and "sigma" (float32 files are widened) and "n" when present; bad shapes name the file.
FeatureStats load_feature_stats(const std::string& path);

// What scipy.linalg.sqrtm (1.10, _matfuncs_sqrtm.py) does with a real square matrix: it fails (returns
// NaNs, so pytorch-fid retries with the eps offset) only when its Schur-form recursion meets
// R[i,i] + R[j,j] == 0 with T[i,j] - sum_k R[i,k] R[k,j] != 0 inside one of its 64-wide diagonal
// blocks. Exact zeros on the Schur diagonal come from LAPACK dgees' balancing permutation (dgebal 'P'),
// which isolates the zero rows and columns that dead (zero-variance) features leave in s1 @ s2; the
// QR-iterated part has round-off, not exact zeros. So we replay dgebal's permutation (LAPACK 3.11
// order) and, where two such zeros share a block, the recursion itself. The Schur form of a remaining
// 2x2 block is LAPACK's own arithmetic (dlanv2 and OpenBLAS' fused drot); larger remaining blocks use
// Eigen's real Schur form, whose round-off differs from LAPACK's. For s1 @ s2 (a product of two PSD
// matrices: its zero eigenvalue is semisimple) the numerator is 0 in exact arithmetic, so scipy's
// outcome is decided by round-off: measured agreement with scipy 1.10.1 is 3991/4000 on tiny dead-feature
// sets (N=4, d=5) and 1489/1504 on a harder mix (tests/eval/frechet_test.cpp). Matrices without exact-zero
// isolated eigenvalues (all usual FID inputs) are decided in O(d^2) without any factorisation.
struct SqrtmCheck {
  bool fails = false;
  int64_t isolated_zeros = 0;  // exact-zero eigenvalues the permutation isolated
  std::string reason;          // one line: why it fails or why it cannot
};
SqrtmCheck scipy_sqrtm_check(const at::Tensor& a);

struct FrechetResult {
  double value = 0;      // the FID
  double mean_term = 0;  // |mu1 - mu2|^2
  double tr_sigma1 = 0, tr_sigma2 = 0;
  double tr_covmean = 0;  // tr(sqrtm(s1 s2)) (of the eps-shifted sigmas on the eps path)
  bool eps_path = false;  // pytorch-fid's "singular product; adding eps to diagonal" retry was taken
  double eps = 0;         // the offset added on the eps path, else 0
  std::string path;       // "direct" or "eps_offset"
  std::string reason;     // why that path (from scipy_sqrtm_check)
  int64_t rank1 = 0;      // numerical rank of sigma1 (shifted on the eps path): columns of W
  int64_t clamped_eigenvalues = 0;  // negative eigenvalues of W^T s2 W counted as 0
  double min_eigenvalue = 0;        // the most negative (or smallest) of them, for diagnostics
};

// Throws mmref::Error for mismatched or non-square shapes and for NaN/Inf in any input (naming which).
FrechetResult frechet_distance(const at::Tensor& mu1, const at::Tensor& sigma1, const at::Tensor& mu2,
                               const at::Tensor& sigma2, double eps = 1e-6);
FrechetResult frechet_distance(const FeatureStats& a, const FeatureStats& b, double eps = 1e-6);

struct KidOptions {
  int64_t subsets = 100;       // torch-fidelity kid_subsets
  int64_t subset_size = 1000;  // kid_subset_size; clamped to min(N1, N2) (torch-fidelity refuses larger)
  int64_t degree = 3;
  double gamma = 0;  // 0: 1/d
  double coef0 = 1;
  uint32_t seed = 2020;  // torch-fidelity rng_seed
};
struct KidResult {
  double mean = 0, std = 0;    // over subsets, std with ddof 0 (np.std)
  std::vector<double> values;  // unbiased MMD^2 per subset
  int64_t subset_size = 0;     // after clamping
};
// A set whose size equals the (clamped) subset size is used whole and in order, so subsets = 1 with
// subset_size >= N is deterministic; otherwise each subset draws RandomState(seed).choice(N, m, False)
// for set 1 then set 2, as torch-fidelity does. float64 throughout; rows are processed in blocks, so
// memory stays O(block * m) for large m.
KidResult kernel_inception_distance(const at::Tensor& features1, const at::Tensor& features2,
                                    const KidOptions& options = {});

struct InceptionScoreResult {
  double mean = 0, std = 0;
  std::vector<double> per_split;
};
// `logits` (N, C). Terms with p(y|x) == 0 count as 0 (0 log 0 = 0); torch-fidelity gets NaN there when a
// class is absent from a whole split, and the same value everywhere else.
InceptionScoreResult inception_score(const at::Tensor& logits, int64_t splits = 10, bool shuffle = true,
                                     uint32_t seed = 2020);

// numpy.random.RandomState(seed).permutation(n) (MT19937 init_genrand seeding, legacy Fisher-Yates with
// masked rejection sampling); the tests compare it with numpy itself.
std::vector<int64_t> numpy_legacy_permutation(int64_t n, uint32_t seed);

}  // namespace mmref::eval
