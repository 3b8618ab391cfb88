// FID statistics, Fréchet distance, KID and Inception Score; see frechet.h for the references and why
// the square root is taken through a symmetric eigenproblem.
#include "eval/frechet.h"

#include <ATen/Functions.h>

#include <Eigen/Dense>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <complex>
#include <limits>
#include <numeric>
#include <optional>
#include <random>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/npy.h"
#include "eval/stats_hdf5.h"

namespace mmref::eval {
namespace {

using MatX = Eigen::MatrixXd;  // column-major
using VecX = Eigen::VectorXd;
using RowMatX = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Cplx = std::complex<double>;

at::Tensor f64_cpu(const at::Tensor& t) { return t.detach().to(at::kCPU, at::kDouble).contiguous(); }

std::string shape_str(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  return fmt::format("[{}]", fmt::join(t.sizes().vec(), ", "));
}

// Throws naming the first NaN/Inf of a float64 contiguous tensor (row/column for 2-D).
void check_finite(const at::Tensor& t, const std::string& name, const char* hint) {
  const double* p = t.data_ptr<double>();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(p[i])) continue;
    if (t.dim() == 2) {
      const int64_t cols = t.size(1);
      MMREF_FAIL("{}: non-finite value {} at row {}, column {}; {}", name, p[i], i / cols, i % cols, hint);
    }
    MMREF_FAIL("{}: non-finite value {} at index {}; {}", name, p[i], i, hint);
  }
}

MatX to_mat(const at::Tensor& t) {
  return Eigen::Map<const RowMatX>(t.data_ptr<double>(), t.size(0), t.size(1));
}
VecX to_vec(const at::Tensor& t) { return Eigen::Map<const VecX>(t.data_ptr<double>(), t.numel()); }

// ---------------------------------------------------------------------------------------------------
// scipy.linalg.sqrtm replay

// LAPACK 3.11 dgebal(JOB='P'): rows whose off-diagonal entries in columns 1..L are all zero are pushed
// to the bottom (searching J = L..1, restarting after each swap), then columns whose off-diagonal entries
// in rows K..L are zero are pushed to the top (J = K..L). perm[pos] = original index; the active block
// is [k, l]. Counts of nonzero off-diagonals make it O(n^2) instead of O(n^3).
struct Balance {
  std::vector<int64_t> perm;
  int64_t k = 0, l = -1;
};

Balance gebal_permute(const MatX& a) {
  const int64_t n = a.rows();
  Balance b;
  b.perm.resize(static_cast<size_t>(n));
  std::iota(b.perm.begin(), b.perm.end(), int64_t{0});
  if (n == 0) return b;
  auto& perm = b.perm;
  int64_t k = 0, l = n - 1;
  std::vector<int64_t> cnt(static_cast<size_t>(n), 0);
  for (int64_t pos = 0; pos < n; ++pos)
    for (int64_t q = 0; q < n; ++q)
      if (q != pos && a(perm[pos], perm[q]) != 0.0) ++cnt[pos];
  while (true) {
    int64_t found = -1;
    for (int64_t j = l; j >= 0; --j) {
      if (cnt[j] == 0) {
        found = j;
        break;
      }
    }
    if (found < 0) break;
    std::swap(perm[found], perm[l]);
    std::swap(cnt[found], cnt[l]);
    if (l == 0) {
      b.k = 0, b.l = 0;
      return b;
    }
    const int64_t iso = perm[l];
    for (int64_t q = 0; q < l; ++q)
      if (a(perm[q], iso) != 0.0) --cnt[q];
    --l;
  }
  std::fill(cnt.begin(), cnt.end(), 0);
  for (int64_t pos = k; pos <= l; ++pos)
    for (int64_t r = k; r <= l; ++r)
      if (r != pos && a(perm[r], perm[pos]) != 0.0) ++cnt[pos];
  while (true) {
    int64_t found = -1;
    for (int64_t j = k; j <= l; ++j) {
      if (cnt[j] == 0) {
        found = j;
        break;
      }
    }
    if (found < 0) break;
    std::swap(perm[found], perm[k]);
    std::swap(cnt[found], cnt[k]);
    const int64_t iso = perm[k];
    for (int64_t q = k + 1; q <= l; ++q)
      if (a(iso, perm[q]) != 0.0) --cnt[q];
    ++k;
  }
  b.k = k, b.l = l;
  return b;
}

// scipy's within_block_loop on one diagonal block (_matfuncs_sqrtm_triu.pyx), in the same operation
// order. Returns the first failing (i, j) and its numerator.
template <typename S>
std::optional<std::pair<std::pair<int64_t, int64_t>, S>> within_block_fails(
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& t) {
  const int64_t b = t.rows();
  Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> r =
      Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>::Zero(b, b);
  for (int64_t i = 0; i < b; ++i) r(i, i) = std::sqrt(t(i, i));
  for (int64_t j = 0; j < b; ++j) {
    for (int64_t i = j - 1; i >= 0; --i) {
      S s = S(0);
      if (j - i > 1)
        for (int64_t k = i + 1; k < j; ++k) s += r(i, k) * r(k, j);
      const S denom = r(i, i) + r(j, j);
      const S num = t(i, j) - s;
      if (denom != S(0)) {
        r(i, j) = (t(i, j) - s) / denom;
      } else if (num == S(0)) {
        r(i, j) = S(0);
      } else {
        return std::make_pair(std::make_pair(i, j), num);
      }
    }
  }
  return std::nullopt;
}

// scipy.linalg.rsf2csf on a real quasi-triangular T (as a complex matrix), in place.
void rsf2csf(Eigen::MatrixXcd& t) {
  const int64_t n = t.rows();
  for (int64_t m = n - 1; m > 0; --m) {
    if (std::abs(t(m, m - 1)) > DBL_EPSILON * (std::abs(t(m - 1, m - 1)) + std::abs(t(m, m)))) {
      const Cplx a = t(m - 1, m - 1), b = t(m - 1, m), c = t(m, m - 1), d = t(m, m);
      const Cplx mu0 = (a + d) / 2.0 + std::sqrt((a - d) * (a - d) / 4.0 + b * c) - d;
      const double rr = std::hypot(std::abs(mu0), std::abs(c));
      const Cplx cc = mu0 / rr, ss = c / rr;
      Eigen::Matrix2cd g;
      g << std::conj(cc), ss, -ss, cc;
      t.block(m - 1, m - 1, 2, n - m + 1) = (g * t.block(m - 1, m - 1, 2, n - m + 1)).eval();
      t.block(0, m - 1, m + 1, 2) = (t.block(0, m - 1, m + 1, 2) * g.adjoint()).eval();
    }
    t(m, m - 1) = 0.0;
  }
}

// LAPACK 3.11 dlanv2: the Schur factorisation of a real 2x2 block [[a, b], [c, d]] in standard form,
// with the rotation (cs, sn). Ported line by line (no fused multiply-adds: LAPACK is built generic).
void dlanv2(double& a, double& b, double& c, double& d, double& cs, double& sn) {
  constexpr double kMultpl = 4.0, kEps = DBL_EPSILON;  // dlamch('P')
  const double safmn2 = std::ldexp(1.0, static_cast<int>(std::log(DBL_MIN / kEps) / std::log(2.0) / 2.0));
  const double safmx2 = 1.0 / safmn2;
  auto sign1 = [](double x) { return std::copysign(1.0, x); };
  auto dlapy2 = [](double x, double y) {
    const double w = std::max(std::abs(x), std::abs(y)), z = std::min(std::abs(x), std::abs(y));
    return (z == 0.0 || w > DBL_MAX) ? w : w * std::sqrt(1.0 + (z / w) * (z / w));
  };
  if (c == 0.0) {
    cs = 1.0, sn = 0.0;
  } else if (b == 0.0) {
    cs = 0.0, sn = 1.0;
    std::swap(a, d);
    b = -c;
    c = 0.0;
  } else if ((a - d) == 0.0 && sign1(b) != sign1(c)) {
    cs = 1.0, sn = 0.0;
  } else {
    double temp = a - d;
    double p = 0.5 * temp;
    const double bcmax = std::max(std::abs(b), std::abs(c));
    const double bcmis = std::min(std::abs(b), std::abs(c)) * sign1(b) * sign1(c);
    double scale = std::max(std::abs(p), bcmax);
    double z = (p / scale) * p + (bcmax / scale) * bcmis;
    if (z >= kMultpl * kEps) {  // real eigenvalues
      z = p + std::copysign(std::sqrt(scale) * std::sqrt(z), p);
      a = d + z;
      d = d - (bcmax / z) * bcmis;
      const double tau = dlapy2(c, z);
      cs = z / tau;
      sn = c / tau;
      b = b - c;
      c = 0.0;
    } else {  // complex or almost equal real eigenvalues: make the diagonal equal
      double sigma = b + c;
      for (int count = 1;; ++count) {
        scale = std::max(std::abs(temp), std::abs(sigma));
        if (scale >= safmx2) {
          sigma *= safmn2, temp *= safmn2;
          if (count <= 20) continue;
        }
        if (scale <= safmn2) {
          sigma *= safmx2, temp *= safmx2;
          if (count <= 20) continue;
        }
        break;
      }
      p = 0.5 * temp;
      double tau = dlapy2(sigma, temp);
      cs = std::sqrt(0.5 * (1.0 + std::abs(sigma) / tau));
      sn = -(p / (tau * cs)) * sign1(sigma);
      const double aa = a * cs + b * sn, bb = -a * sn + b * cs, cc = c * cs + d * sn, dd = -c * sn + d * cs;
      a = aa * cs + cc * sn;
      b = bb * cs + dd * sn;
      c = -aa * sn + cc * cs;
      d = -bb * sn + dd * cs;
      temp = 0.5 * (a + d);
      a = d = temp;
      if (c != 0.0) {
        if (b != 0.0) {
          if (sign1(b) == sign1(c)) {  // real eigenvalues: reduce to upper triangular form
            const double sab = std::sqrt(std::abs(b)), sac = std::sqrt(std::abs(c));
            p = std::copysign(sab * sac, c);
            tau = 1.0 / std::sqrt(std::abs(b + c));
            a = temp + p;
            d = temp - p;
            b = b - c;
            c = 0.0;
            const double cs1 = sab * tau, sn1 = sac * tau;
            temp = cs * cs1 - sn * sn1;
            sn = cs * sn1 + sn * cs1;
            cs = temp;
          }
        } else {
          b = -c;
          c = 0.0;
          temp = cs;
          cs = -sn;
          sn = temp;
        }
      }
    }
  }
}

// What dgees (dgehrd, dhseqr -> dlahqr) does to an active 2x2 block at rows/columns k, k+1 of the
// permuted matrix t: the Householder step is the identity (tau = 0), so dlahqr either deflates the
// subdiagonal or calls dlanv2 and rotates the rest of t with drot. OpenBLAS' drot kernels contract to
// fused multiply-adds on AVX2/AVX-512 machines; this form reproduced scipy's Schur form bit for bit on
// 143 of 143 such matrices (plain multiply-adds: 32 of 143).
void lapack_schur_2x2(MatX& t, int64_t k) {
  const int64_t n = t.rows(), i = k + 1;
  const double smlnum = DBL_MIN * (2.0 / DBL_EPSILON), ulp = DBL_EPSILON;
  const double h21 = std::abs(t(i, k));
  bool deflate = h21 <= smlnum;
  const double tst = std::abs(t(k, k)) + std::abs(t(i, i));
  if (!deflate && h21 <= ulp * tst) {
    const double ab = std::max(h21, std::abs(t(k, i))), ba = std::min(h21, std::abs(t(k, i)));
    const double aa = std::max(std::abs(t(i, i)), std::abs(t(k, k) - t(i, i)));
    const double bb = std::min(std::abs(t(i, i)), std::abs(t(k, k) - t(i, i)));
    const double s = aa + ab;
    deflate = ba * (ab / s) <= std::max(smlnum, ulp * (bb * (aa / s)));
  }
  if (deflate) {
    t(i, k) = 0.0;
    return;
  }
  double cs = 1, sn = 0;
  dlanv2(t(k, k), t(k, i), t(i, k), t(i, i), cs, sn);
  auto drot = [&](double& x, double& y) {
    const double xn = std::fma(cs, x, sn * y);
    y = std::fma(cs, y, -(sn * x));
    x = xn;
  };
  for (int64_t j = i + 1; j < n; ++j) drot(t(k, j), t(i, j));
  for (int64_t j = 0; j < k; ++j) drot(t(j, k), t(j, i));
}

template <typename S>
std::optional<std::pair<std::pair<int64_t, int64_t>, Cplx>> block_fails_as(
    const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic>& blk) {
  // Real arithmetic when scipy would keep it real for these entries (real, diagonal >= 0); complex
  // arithmetic gives the same bits on real-valued operands, so this choice per block is exact.
  if constexpr (std::is_same_v<S, double>) {
    if (blk.diagonal().minCoeff() >= 0.0) {
      if (auto f = within_block_fails<double>(blk)) return std::make_pair(f->first, Cplx(f->second));
      return std::nullopt;
    }
    return block_fails_as<Cplx>(blk.template cast<Cplx>());
  } else {
    return within_block_fails<Cplx>(blk);
  }
}

SqrtmCheck sqrtm_check_impl(const MatX& a) {
  SqrtmCheck out;
  const int64_t n = a.rows();
  const Balance bal = gebal_permute(a);
  const int64_t k = bal.k, l = bal.l;
  auto h = [&](int64_t i, int64_t j) { return a(bal.perm[i], bal.perm[j]); };
  // Exact zeros on the diagonal of the isolated (already triangular) parts.
  std::vector<int64_t> zeros;
  for (int64_t p = 0; p < n; ++p) {
    const bool isolated = p < k || p > l || k == l;
    if (isolated && h(p, p) == 0.0) zeros.push_back(p);
  }
  out.isolated_zeros = static_cast<int64_t>(zeros.size());
  if (zeros.size() < 2) {
    out.reason = fmt::format(
        "{} exact-zero eigenvalue(s) isolated in sigma1 @ sigma2: scipy's sqrtm has no zero pivot",
        zeros.size());
    return out;
  }
  // scipy's blocks: max(n // 64, 1) of them, the smaller size first.
  const int64_t nblocks = std::max<int64_t>(n / 64, 1);
  const int64_t bsmall = n / nblocks, nlarge = n % nblocks, nsmall = nblocks - nlarge;
  std::vector<std::pair<int64_t, int64_t>> blocks;
  for (int64_t s = 0, i = 0; i < nblocks; ++i) {
    const int64_t size = i < nsmall ? bsmall : bsmall + 1;
    blocks.emplace_back(s, s + size);
    s += size;
  }
  // The full Schur form is needed only for a block holding zeros on both sides of a remaining middle
  // block (which is then small); otherwise T equals the permuted matrix where the recursion reads it.
  std::optional<Eigen::MatrixXcd> full_c;
  std::optional<MatX> full_r;
  auto full_t = [&]() {
    if (full_r || full_c) return;
    MatX t(n, n);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) t(i, j) = h(i, j);
    const int64_t m = l - k + 1;
    bool quasi = false;
    if (m == 2) {
      lapack_schur_2x2(t, k);  // exact LAPACK arithmetic: the common case in tiny feature sets
      quasi = t(k + 1, k) != 0.0;
    } else {
      // Larger blocks: Eigen's real Schur form (the same maths as dhseqr, not the same round-off).
      Eigen::RealSchur<MatX> rs(t.block(k, k, m, m));
      if (rs.info() != Eigen::Success) MMREF_FAIL("scipy_sqrtm_check: Schur decomposition did not converge");
      const MatX& u = rs.matrixU();
      t.block(0, k, k, m) = (t.block(0, k, k, m) * u).eval();
      t.block(k, l + 1, m, n - l - 1) = (u.transpose() * t.block(k, l + 1, m, n - l - 1)).eval();
      t.block(k, k, m, m) = rs.matrixT();
      t.block(k, k, m, m).triangularView<Eigen::StrictlyLower>().setZero();
      for (int64_t i = k; i < l; ++i) {
        t(i + 1, i) = rs.matrixT()(i - k + 1, i - k);
        quasi = quasi || t(i + 1, i) != 0.0;
      }
    }
    if (quasi) {
      Eigen::MatrixXcd tc = t.cast<Cplx>();
      rsf2csf(tc);
      full_c = std::move(tc);
    } else {
      full_r = std::move(t);
    }
  };
  int64_t candidate_blocks = 0;
  for (const auto& [b0, b1] : blocks) {
    int64_t top = 0, bottom = 0;
    for (int64_t z : zeros) {
      if (z < b0 || z >= b1) continue;
      (z < k || k == l ? top : bottom) += 1;
    }
    if (top + bottom < 2) continue;
    ++candidate_blocks;
    std::vector<std::pair<int64_t, int64_t>> ranges;  // sub-ranges whose T entries we need
    bool need_full = top > 0 && bottom > 0 && k < l;
    if (need_full) {
      full_t();
      ranges.emplace_back(b0, b1);
    } else {
      if (top >= 2) ranges.emplace_back(b0, k == l ? b1 : std::min(b1, k));
      if (bottom >= 2) ranges.emplace_back(std::max(b0, l + 1), b1);
    }
    for (const auto& [r0, r1] : ranges) {
      const int64_t sz = r1 - r0;
      std::optional<std::pair<std::pair<int64_t, int64_t>, Cplx>> f;
      if (full_c) {
        f = block_fails_as<Cplx>(full_c->block(r0, r0, sz, sz));
      } else {
        MatX blk(sz, sz);
        for (int64_t i = 0; i < sz; ++i)
          for (int64_t j = 0; j < sz; ++j)
            blk(i, j) = full_r ? (*full_r)(r0 + i, r0 + j) : (j >= i ? h(r0 + i, r0 + j) : 0.0);
        f = block_fails_as<double>(blk);
      }
      if (f) {
        const int64_t i = r0 + f->first.first, j = r0 + f->first.second;
        out.fails = true;
        out.reason = fmt::format(
            "scipy's sqrtm meets a zero pivot: R[i,i] + R[j,j] = 0 for the isolated zero eigenvalues of "
            "features {} and {} of sigma1 @ sigma2, with T[i,j] - s = {:.3g} != 0",
            bal.perm[i], bal.perm[j], std::abs(f->second));
        return out;
      }
    }
  }
  out.reason = candidate_blocks == 0
                   ? fmt::format(
                         "{} isolated zero eigenvalues of sigma1 @ sigma2, no two in one of scipy's "
                         "sqrtm blocks: no zero pivot",
                         zeros.size())
                   : fmt::format(
                         "{} isolated zero eigenvalues of sigma1 @ sigma2; every zero pivot has a zero "
                         "numerator, so scipy's sqrtm succeeds",
                         zeros.size());
  return out;
}

// tr(sqrtm(s1 s2)) = sum sqrt(eig(W^T s2 W)) for any W with W W^T = s1: W^T s2 W is symmetric PSD and
// similar to sqrt(s1) s2 sqrt(s1), so Eigen's SelfAdjointEigenSolver applies. W is s1's Cholesky factor;
// when s1 is semidefinite (N <= d, or a pivot that is round-off), a rank-revealing pivoted Cholesky
// (LAPACK dpstf2 with its default tolerance d * DBL_EPSILON * max diag) stops at the numerical rank r,
// so the eigenproblem is r x r (299 instead of 2048 for 300 samples). Measured at d = 2048 (2 cores,
// shared): eigendecomposition of s1 with vectors 14.6 s, LLT 0.35 s; the r x r eigenvalues 2.2 s.
struct TraceSqrt {
  double tr = 0;
  int64_t rank = 0, clamped = 0;
  double min_eig = 0;
};

// Pivoted Cholesky, left-looking: P s P^T = L L^T on the leading r pivots; returns W = P^T L (d x r).
MatX pivoted_cholesky(const MatX& s) {
  const int64_t n = s.rows();
  MatX a = s;  // columns 0..k-1 become L; the trailing lower triangle stays s (symmetrically permuted)
  std::vector<int64_t> piv(static_cast<size_t>(n));
  std::iota(piv.begin(), piv.end(), int64_t{0});
  VecX work = a.diagonal();  // diagonal of the remaining Schur complement
  const double tol = static_cast<double>(n) * DBL_EPSILON * work.maxCoeff();
  int64_t r = 0;
  for (int64_t k = 0; k < n; ++k) {
    Eigen::Index j = 0;
    const double dmax = work.tail(n - k).maxCoeff(&j);
    j += k;
    if (!(dmax > tol)) break;
    if (j != k) {
      a.row(k).swap(a.row(j));
      a.col(k).swap(a.col(j));
      std::swap(work(k), work(j));
      std::swap(piv[k], piv[j]);
    }
    const double lkk = std::sqrt(dmax);
    a(k, k) = lkk;
    const int64_t rest = n - k - 1;
    if (rest > 0) {
      if (k > 0) a.col(k).tail(rest).noalias() -= a.block(k + 1, 0, rest, k) * a.row(k).head(k).transpose();
      a.col(k).tail(rest) /= lkk;
      work.tail(rest) -= a.col(k).tail(rest).cwiseAbs2();
    }
    ++r;
  }
  MatX w = MatX::Zero(n, r);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < std::min(i + 1, r); ++c) w(piv[i], c) = a(i, c);
  return w;
}

TraceSqrt trace_sqrt_product(const MatX& s1, const MatX& s2) {
  const int64_t d = s1.rows();
  TraceSqrt out;
  MatX m;
  const double tol = static_cast<double>(d) * DBL_EPSILON * s1.diagonal().maxCoeff();
  Eigen::LLT<MatX> llt(s1);
  const bool definite =
      llt.info() == Eigen::Success && llt.matrixLLT().diagonal().cwiseAbs2().minCoeff() > tol;
  if (definite) {
    out.rank = d;
    const MatX s2l = s2 * llt.matrixL();  // triangular products (TRMM), half a GEMM each
    m = llt.matrixU() * s2l;
  } else {
    const MatX w = pivoted_cholesky(s1);
    out.rank = w.cols();
    if (out.rank == 0) return out;
    const MatX s2w = s2 * w;
    m.resize(out.rank, out.rank);
    m.triangularView<Eigen::Lower>() = w.transpose() * s2w;  // symmetric: the solver reads the lower half
  }
  Eigen::SelfAdjointEigenSolver<MatX> es(m, Eigen::EigenvaluesOnly);
  if (es.info() != Eigen::Success)
    MMREF_FAIL("frechet_distance: the eigenvalues of W^T sigma2 W (sigma1 = W W^T) did not converge");
  const VecX& lam = es.eigenvalues();
  out.min_eig = lam.minCoeff();
  for (int64_t i = 0; i < lam.size(); ++i) {
    if (lam(i) < 0) {
      ++out.clamped;
    } else {
      out.tr += std::sqrt(lam(i));
    }
  }
  return out;
}

// Small sizes, where exact zeros and round-off coincidences decide scipy's outcome, are computed with
// numpy's bits: on OpenBLAS (AVX2/AVX-512 kernels) np.dot and np.cov's X @ X.T (syrk) accumulate each
// entry as a chain of fused multiply-adds over k; verified bit-equal on 300 of 300 products and 197 of
// 197 covariances (d >= 2) from tiny feature sets. Larger inputs use the fast blocked products.
constexpr int64_t kNumpyBitsMax = 256;

MatX numpy_product(const MatX& a, const MatX& b) {
  const int64_t n = a.rows(), kk = a.cols(), m = b.cols();
  if (std::max({n, kk, m}) > kNumpyBitsMax) return a * b;
  MatX c(n, m);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < kk; ++k) acc = std::fma(a(i, k), b(k, j), acc);
      c(i, j) = acc;
    }
  return c;
}

bool has_zero_row(const MatX& s) {
  for (int64_t i = 0; i < s.rows(); ++i)
    if ((s.row(i).array() == 0.0).all()) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------------
// numpy's legacy RandomState(seed): MT19937 seeded by init_genrand (as std::mt19937), bounded integers
// by masked rejection (random_interval), shuffle = Fisher-Yates from the end (numpy/random/mtrand.pyx).

class NumpyLegacyRng {
 public:
  explicit NumpyLegacyRng(uint32_t seed) : mt_(seed) {}

  uint64_t interval(uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max;
    for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
    uint64_t v;
    if (max <= 0xFFFFFFFFull) {
      while ((v = (static_cast<uint64_t>(mt_()) & mask)) > max) {
      }
    } else {
      while ((v = (next64() & mask)) > max) {
      }
    }
    return v;
  }

  std::vector<int64_t> permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(std::max<int64_t>(n, 0)));
    std::iota(p.begin(), p.end(), int64_t{0});
    for (int64_t i = n - 1; i >= 1; --i) std::swap(p[i], p[interval(static_cast<uint64_t>(i))]);
    return p;
  }

 private:
  uint64_t next64() {
    const uint64_t hi = mt_();
    return (hi << 32) | static_cast<uint64_t>(mt_());
  }
  std::mt19937 mt_;
};

at::Tensor index_tensor(const std::vector<int64_t>& idx, int64_t count) {
  at::Tensor t = at::empty({count}, at::TensorOptions().dtype(at::kLong));
  std::copy(idx.begin(), idx.begin() + count, t.data_ptr<int64_t>());
  return t;
}

// sum_ij k(a_i, b_j) over row blocks (memory O(block * rows(b))); with `diag`, also sum_i k(a_i, a_i)
// taken from the same matrix entries.
double kernel_sum(const at::Tensor& a, const at::Tensor& b, double gamma, double coef0, int64_t degree,
                  double* diag) {
  constexpr int64_t kBlock = 1024;
  double total = 0, dsum = 0;
  for (int64_t r0 = 0; r0 < a.size(0); r0 += kBlock) {
    const int64_t rb = std::min(kBlock, a.size(0) - r0);
    at::Tensor k = at::mm(a.narrow(0, r0, rb), b.t());
    k.mul_(gamma).add_(coef0).pow_(degree);
    total += k.sum().item<double>();
    if (diag != nullptr) dsum += k.diagonal(r0).sum().item<double>();
  }
  if (diag != nullptr) *diag = dsum;
  return total;
}

at::Tensor checked_features(const at::Tensor& f, const std::string& name) {
  if (!f.defined() || f.dim() != 2)
    MMREF_FAIL("{}: expected a (N, d) feature tensor, got shape {}", name, shape_str(f));
  if (!at::isFloatingType(f.scalar_type()))
    MMREF_FAIL("{}: expected floating-point features, got {}", name, c10::toString(f.scalar_type()));
  at::Tensor x = f64_cpu(f);
  check_finite(x, name, "check the feature extractor and its inputs");
  return x;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

FeatureStats compute_feature_stats(const at::Tensor& features, const std::string& name) {
  const at::Tensor x = checked_features(features, name);
  const int64_t n = x.size(0), d = x.size(1);
  if (d == 0) MMREF_FAIL("{}: no feature columns (shape {})", name, shape_str(x));
  FeatureStats st;
  st.n = n;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  st.mu = n > 0 ? x.mean(0) : at::full({d}, nan, f64);
  if (n < 2) {
    st.sigma = at::full({d, d}, nan, f64);
    st.warning = fmt::format(
        "{}: {} row(s): the covariance needs N >= 2 and is NaN (numpy.cov warns "
        "'Degrees of freedom <= 0')",
        name, n);
    return st;
  }
  if (n <= kNumpyBitsMax && d <= kNumpyBitsMax) {
    // np.mean (sequential over rows, then / N) and np.cov's syrk with numpy's bits (see numpy_product).
    const double* px = x.data_ptr<double>();
    std::vector<double> mu(static_cast<size_t>(d), 0.0), xc(static_cast<size_t>(n * d));
    for (int64_t j = 0; j < d; ++j) {
      double acc = 0.0;
      for (int64_t i = 0; i < n; ++i) acc += px[i * d + j];
      mu[j] = acc / static_cast<double>(n);
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) xc[i * d + j] = px[i * d + j] - mu[j];
    st.mu = at::empty({d}, f64);
    std::copy(mu.begin(), mu.end(), st.mu.data_ptr<double>());
    st.sigma = at::empty({d, d}, f64);
    double* pc = st.sigma.data_ptr<double>();
    const double inv = 1.0 / static_cast<double>(n - 1);
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        double acc = 0.0;
        for (int64_t k = 0; k < n; ++k) acc = std::fma(xc[k * d + i], xc[k * d + j], acc);
        pc[i * d + j] = pc[j * d + i] = acc * inv;
      }
  } else {
    const at::Tensor xc = x - st.mu;
    // np.cov: dot(X, X.T) * (1 / (N - 1)), exactly symmetric (numpy's dot uses syrk for X @ X.T).
    at::Tensor c = at::mm(xc.t(), xc).mul_(1.0 / static_cast<double>(n - 1));
    st.sigma = (at::tril(c) + at::tril(c, -1).t()).contiguous();
  }
  if (n < d + 1)
    st.warning = fmt::format(
        "{}: N = {} rows for d = {} features: the covariance has rank <= N - 1 < d "
        "(singular); FID from fewer samples than dimensions is unreliable",
        name, n, d);
  return st;
}

void save_feature_stats(const std::string& path, const FeatureStats& stats) {
  if (is_hdf5_stats_path(path)) return save_feature_stats_hdf5(path, stats);
  if (!stats.mu.defined() || !stats.sigma.defined())
    MMREF_FAIL("save_feature_stats '{}': mu or sigma is undefined", path);
  std::map<std::string, at::Tensor> m{{"mu", f64_cpu(stats.mu)}, {"sigma", f64_cpu(stats.sigma)}};
  if (stats.n >= 0) m["n"] = at::scalar_tensor(stats.n, at::TensorOptions().dtype(at::kLong));
  save_npz(path, m);
}

FeatureStats load_feature_stats(const std::string& path) {
  if (is_hdf5_stats_path(path)) return load_feature_stats_hdf5(path);
  const auto m = load_npz(path);
  auto get = [&](const char* key) {
    const auto it = m.find(key);
    if (it == m.end())
      MMREF_FAIL("FID statistics '{}' have no '{}' array (pytorch-fid's keys are mu, sigma)", path, key);
    if (!at::isFloatingType(it->second.scalar_type()))
      MMREF_FAIL("FID statistics '{}': '{}' is {}, expected floating point", path, key,
                 c10::toString(it->second.scalar_type()));
    return f64_cpu(it->second);
  };
  FeatureStats st;
  st.mu = get("mu");
  st.sigma = get("sigma");
  const int64_t d = st.mu.dim() == 1 ? st.mu.size(0) : -1;
  if (d < 1 || st.sigma.dim() != 2 || st.sigma.size(0) != d || st.sigma.size(1) != d)
    MMREF_FAIL("FID statistics '{}': expected mu (d) and sigma (d, d), got mu {} and sigma {}", path,
               shape_str(st.mu), shape_str(st.sigma));
  st.n = -1;
  if (const auto it = m.find("n"); it != m.end() && it->second.numel() == 1)
    st.n = it->second.item<int64_t>();
  return st;
}

SqrtmCheck scipy_sqrtm_check(const at::Tensor& a) {
  if (!a.defined() || a.dim() != 2 || a.size(0) != a.size(1))
    MMREF_FAIL("scipy_sqrtm_check: expected a square matrix, got shape {}", shape_str(a));
  const at::Tensor t = f64_cpu(a);
  check_finite(t, "scipy_sqrtm_check input", "scipy's sqrtm rejects non-finite input");
  return sqrtm_check_impl(to_mat(t));
}

FrechetResult frechet_distance(const at::Tensor& mu1, const at::Tensor& sigma1, const at::Tensor& mu2,
                               const at::Tensor& sigma2, double eps) {
  auto vec = [](const at::Tensor& t, const char* name) {
    if (!t.defined() || t.dim() != 1 || t.size(0) < 1)
      MMREF_FAIL("frechet_distance: {} must be a non-empty vector (d), got shape {}", name, shape_str(t));
    at::Tensor x = f64_cpu(t);
    check_finite(x, fmt::format("frechet_distance: {}", name), "recompute the statistics");
    return x;
  };
  const at::Tensor m1 = vec(mu1, "mu1"), m2 = vec(mu2, "mu2");
  const int64_t d = m1.size(0);
  if (m2.size(0) != d)
    MMREF_FAIL(
        "frechet_distance: mu1 has {} dimensions and mu2 {}; both sets need the same feature extractor", d,
        m2.size(0));
  auto mat = [d](const at::Tensor& t, const char* name) {
    if (!t.defined() || t.dim() != 2 || t.size(0) != d || t.size(1) != d)
      MMREF_FAIL("frechet_distance: {} must be ({}, {}) to match mu, got shape {}", name, d, d, shape_str(t));
    at::Tensor x = f64_cpu(t);
    check_finite(x, fmt::format("frechet_distance: {}", name),
                 "the covariance needs N >= 2 finite feature rows (see FeatureStats::warning)");
    return x;
  };
  const at::Tensor t1 = mat(sigma1, "sigma1"), t2 = mat(sigma2, "sigma2");

  FrechetResult r;
  const VecX diff = to_vec(m1) - to_vec(m2);
  MatX s1 = to_mat(t1), s2 = to_mat(t2);
  r.mean_term = diff.dot(diff);
  r.tr_sigma1 = s1.trace();
  r.tr_sigma2 = s2.trace();

  // pytorch-fid: covmean, _ = sqrtm(s1.dot(s2)); if not finite: retry with eps*I added to both.
  if (has_zero_row(s1) || has_zero_row(s2)) {
    const SqrtmCheck chk = sqrtm_check_impl(numpy_product(s1, s2));  // pytorch-fid: sigma1.dot(sigma2)
    r.eps_path = chk.fails;
    r.reason = chk.reason;
  } else {
    r.reason =
        "no zero-variance feature, so sigma1 @ sigma2 has no exact-zero row or column and scipy's "
        "sqrtm no zero pivot";
  }
  if (r.eps_path) {
    r.eps = eps;
    s1.diagonal().array() += eps;
    s2.diagonal().array() += eps;
  }
  r.path = r.eps_path ? "eps_offset" : "direct";
  const TraceSqrt ts = trace_sqrt_product(s1, s2);
  r.tr_covmean = ts.tr;
  r.rank1 = ts.rank;
  r.clamped_eigenvalues = ts.clamped;
  r.min_eigenvalue = ts.min_eig;
  r.value = r.mean_term + r.tr_sigma1 + r.tr_sigma2 - 2 * r.tr_covmean;
  return r;
}

FrechetResult frechet_distance(const FeatureStats& a, const FeatureStats& b, double eps) {
  return frechet_distance(a.mu, a.sigma, b.mu, b.sigma, eps);
}

KidResult kernel_inception_distance(const at::Tensor& features1, const at::Tensor& features2,
                                    const KidOptions& options) {
  const at::Tensor x = checked_features(features1, "KID features1");
  const at::Tensor y = checked_features(features2, "KID features2");
  if (x.size(1) != y.size(1))
    MMREF_FAIL("KID: features1 has {} dimensions and features2 {}; both sets need the same feature extractor",
               x.size(1), y.size(1));
  if (options.subsets < 1)
    throw ConfigError(fmt::format("KID: subsets must be >= 1, got {}", options.subsets));
  if (options.subset_size < 2 || options.degree < 1)
    throw ConfigError(fmt::format("KID: subset_size must be >= 2 and degree >= 1, got {} and {}",
                                  options.subset_size, options.degree));
  const int64_t n1 = x.size(0), n2 = y.size(0), d = x.size(1);
  const int64_t m = std::min({options.subset_size, n1, n2});
  if (m < 2) MMREF_FAIL("KID: needs at least 2 rows in each set, got {} and {}", n1, n2);
  const double gamma = options.gamma > 0 ? options.gamma : 1.0 / static_cast<double>(d);
  KidResult out;
  out.subset_size = m;
  NumpyLegacyRng rng(options.seed);
  const double mm1 = static_cast<double>(m) * static_cast<double>(m - 1), mm = static_cast<double>(m) * m;
  for (int64_t s = 0; s < options.subsets; ++s) {
    // torch-fidelity: f1 = features_1[rng.choice(n1, m, replace=False)], then f2 likewise.
    const auto p1 = rng.permutation(n1);
    const auto p2 = rng.permutation(n2);
    const at::Tensor a = m == n1 ? x : x.index_select(0, index_tensor(p1, m));
    const at::Tensor b = m == n2 ? y : y.index_select(0, index_tensor(p2, m));
    double dxx = 0, dyy = 0;
    const double kxx = kernel_sum(a, a, gamma, options.coef0, options.degree, &dxx);
    const double kyy = kernel_sum(b, b, gamma, options.coef0, options.degree, &dyy);
    const double kxy = kernel_sum(a, b, gamma, options.coef0, options.degree, nullptr);
    double mmd2 = ((kxx - dxx) + (kyy - dyy)) / mm1;
    mmd2 -= 2 * kxy / mm;
    out.values.push_back(mmd2);
  }
  const double n = static_cast<double>(out.values.size());
  out.mean = std::accumulate(out.values.begin(), out.values.end(), 0.0) / n;
  double var = 0;
  for (double v : out.values) var += (v - out.mean) * (v - out.mean);
  out.std = std::sqrt(var / n);
  return out;
}

InceptionScoreResult inception_score(const at::Tensor& logits, int64_t splits, bool shuffle, uint32_t seed) {
  at::Tensor x = checked_features(logits, "inception_score logits");
  const int64_t n = x.size(0);
  if (splits < 1) throw ConfigError(fmt::format("inception_score: splits must be >= 1, got {}", splits));
  if (n < splits || x.size(1) < 1)
    MMREF_FAIL("inception_score: {} rows of {} classes cannot fill {} splits (need N >= splits, C >= 1)", n,
               x.size(1), splits);
  if (shuffle) x = x.index_select(0, index_tensor(NumpyLegacyRng(seed).permutation(n), n));
  const at::Tensor p = at::softmax(x, 1);
  const at::Tensor log_p = at::log_softmax(x, 1);
  InceptionScoreResult out;
  for (int64_t i = 0; i < splits; ++i) {
    const int64_t b = i * n / splits, e = (i + 1) * n / splits;
    const at::Tensor pc = p.narrow(0, b, e - b), lpc = log_p.narrow(0, b, e - b);
    const at::Tensor log_q = at::log(pc.mean(0, /*keepdim=*/true));
    at::Tensor kl = pc * (lpc - log_q);
    kl = at::where(pc > 0, kl, at::zeros_like(kl));  // 0 log 0 = 0
    out.per_split.push_back(std::exp(kl.sum(1).mean().item<double>()));
  }
  const double k = static_cast<double>(splits);
  out.mean = std::accumulate(out.per_split.begin(), out.per_split.end(), 0.0) / k;
  double var = 0;
  for (double v : out.per_split) var += (v - out.mean) * (v - out.mean);
  out.std = std::sqrt(var / k);
  return out;
}

std::vector<int64_t> numpy_legacy_permutation(int64_t n, uint32_t seed) {
  return NumpyLegacyRng(seed).permutation(n);
}

}  // namespace mmref::eval
