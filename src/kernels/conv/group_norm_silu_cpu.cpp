// The fused CPU GroupNorm + SiLU kernel (diffusion UNet / DiT-video blocks), forward and backward, on
// x (N, C, *) viewed as (N, C, S).
//
// Forward: one task per (n, group); the group's C/G x S elements are contiguous. Pass 1 sums (mean),
// pass 2 sums squared deviations (biased variance, two-pass so a large mean loses nothing), pass 3 writes
// out = silu(a_c x + b_c) with a_c = rstd gamma_c, b_c = beta_c - mean a_c. The group block (C/G x S x 4
// bytes, 256 KiB for a 512-channel 64x64 UNet map with 32 groups) stays in L2 across the passes, so DRAM
// sees one read of x and one write of out -- versus group_norm then silu: read, write, read, write.
// Backward, same tasks: recompute z = a_c x + b_c, dz = dout * silu'(z) (silu' = s (1 + z (1 - s)),
// s = sigmoid(z)) into a per-task buffer; per channel sum(dz) and sum(dz (x - mean)); then
//   dx = rstd (gamma_c dz - A / M - xhat B / M),  A = sum_c gamma_c sum(dz),  B = sum_c gamma_c sum(dz xhat),
// M = C/G x S (Wu & He 2018). dgamma_c = sum_n sum(dz xhat), dbeta_c = sum_n sum(dz), from per-(n, c)
// partials reduced after the parallel loop (no two tasks write the same memory).
// sigmoid uses a branch-free polynomial exp (kernels/common/vec_math.h), so the elementwise loops
// vectorise; fp16/bf16 run in fp32, fp64 (tests) in fp64.
//
// Ref: Wu & He, "Group Normalization" (ECCV 2018); PyTorch aten/src/ATen/native/cpu/group_norm_kernel.cpp
// (the op this replaces) for the a/b/c coefficient form of the backward.
#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include "core/error.h"
#include "kernels/common/cpu_vec.h"
#include "kernels/common/vec_math.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_common.h"

namespace mmref::kernels {
namespace {

#define MMREF_GN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

// The float loops have a fixed 16-element inner body, then a scalar tail: at -O2 gcc 12 vectorises only
// loops that need no epilogue (see kernels/common/cpu_vec.cpp). No lambdas: a lambda is not cloned with
// its target_clones caller, so it cannot be inlined into the AVX2 clone and the loop stays scalar.
#define MMREF_BLOCKS16(n, STMT)                                   \
  do {                                                            \
    int64_t i_ = 0;                                               \
    for (; i_ + 16 <= (n); i_ += 16)                              \
      for (int l_ = 0; l_ < 16; ++l_) {                           \
        const int64_t i = i_ + l_;                                \
        STMT;                                                     \
      }                                                           \
    for (int64_t i = i_; i < (n); ++i) STMT;                      \
  } while (0)

MMREF_GN_CLONES void affine_silu(const float* __restrict x, float* __restrict y, float a, float b, bool silu,
                                 int64_t n) {
  if (silu) {
    MMREF_BLOCKS16(n, { const float z = a * x[i] + b; y[i] = z * detail::sigmoid(z); });
  } else {
    MMREF_BLOCKS16(n, { y[i] = a * x[i] + b; });
  }
}
void affine_silu(const double* x, double* y, double a, double b, bool silu, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double z = a * x[i] + b;
    y[i] = silu ? z / (1.0 + std::exp(-z)) : z;
  }
}

// dz = dy * silu'(a x + b) (or dy when !silu).
MMREF_GN_CLONES void silu_grad(const float* __restrict x, const float* __restrict dy, float* __restrict dz,
                               float a, float b, bool silu, int64_t n) {
  if (silu) {
    MMREF_BLOCKS16(n, {
      const float z = a * x[i] + b;
      const float s = detail::sigmoid(z);
      dz[i] = dy[i] * (s * (1.0f + z * (1.0f - s)));
    });
  } else {
    MMREF_BLOCKS16(n, { dz[i] = dy[i]; });
  }
}
void silu_grad(const double* x, const double* dy, double* dz, double a, double b, bool silu, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double z = a * x[i] + b;
    const double s = 1.0 / (1.0 + std::exp(-z));
    dz[i] = silu ? dy[i] * (s * (1.0 + z * (1.0 - s))) : dy[i];
  }
}

// dx = k_dz dz + k_x x + k_0
MMREF_GN_CLONES void combine(const float* __restrict dz, const float* __restrict x, float* __restrict dx,
                             float k_dz, float k_x, float k_0, int64_t n) {
  MMREF_BLOCKS16(n, { dx[i] = k_dz * dz[i] + k_x * x[i] + k_0; });
}
void combine(const double* dz, const double* x, double* dx, double k_dz, double k_x, double k_0, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dx[i] = k_dz * dz[i] + k_x * x[i] + k_0;
}

template <typename T, typename S>
void forward_impl(const T* x, const T* gamma, const T* beta, T* y, S* mean_out, S* rstd_out,
                  const detail::GroupNormShape& s, const GroupNormOptions& o) {
  const int64_t Cg = s.C / s.G, M = Cg * s.S;
  at::parallel_for(0, s.N * s.G, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / s.G, g = task % s.G;
      const T* xb = x + (n * s.C + g * Cg) * s.S;
      T* yb = y + (n * s.C + g * Cg) * s.S;
      const double mean = M > 0 ? detail::sum(xb, M) / M : 0.0;
      const double var = M > 0 ? detail::sum_sq_dev(xb, static_cast<T>(mean), M) / M : 0.0;
      const double rstd = 1.0 / std::sqrt(var + o.eps);
      mean_out[task] = static_cast<S>(mean);
      rstd_out[task] = static_cast<S>(rstd);
      for (int64_t cl = 0; cl < Cg; ++cl) {
        const int64_t c = g * Cg + cl;
        const double a = rstd * (gamma ? static_cast<double>(gamma[c]) : 1.0);
        const double b = (beta ? static_cast<double>(beta[c]) : 0.0) - mean * a;
        affine_silu(xb + cl * s.S, yb + cl * s.S, static_cast<T>(a), static_cast<T>(b), o.silu, s.S);
      }
    }
  });
}

template <typename T, typename S>
void backward_impl(const T* dy, const T* x, const S* mean_in, const S* rstd_in, const T* gamma, const T* beta,
                   T* dx, double* dgamma_part, double* dbeta_part, const detail::GroupNormShape& s,
                   const GroupNormOptions& o) {
  const int64_t Cg = s.C / s.G, M = Cg * s.S;
  at::parallel_for(0, s.N * s.G, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> dz(static_cast<size_t>(M));
    std::vector<double> sdz(Cg), sdzx(Cg);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / s.G, g = task % s.G;
      const int64_t off = (n * s.C + g * Cg) * s.S;
      const double mean = mean_in[task], rstd = rstd_in[task];
      double A = 0, B = 0;
      for (int64_t cl = 0; cl < Cg; ++cl) {
        const int64_t c = g * Cg + cl;
        const double gc = gamma ? static_cast<double>(gamma[c]) : 1.0;
        const double a = rstd * gc, b = (beta ? static_cast<double>(beta[c]) : 0.0) - mean * a;
        const T* xr = x + off + cl * s.S;
        T* dzr = dz.data() + cl * s.S;
        silu_grad(xr, dy + off + cl * s.S, dzr, static_cast<T>(a), static_cast<T>(b), o.silu, s.S);
        sdz[cl] = detail::sum(dzr, s.S);
        sdzx[cl] = rstd * detail::dot_dev(dzr, xr, static_cast<T>(mean), s.S);  // sum dz * xhat
        A += gc * sdz[cl];
        B += gc * sdzx[cl];
        dgamma_part[n * s.C + c] = sdzx[cl];
        dbeta_part[n * s.C + c] = sdz[cl];
      }
      // dx = rstd gc dz - rstd A / M - rstd^2 (x - mean) B / M
      const double kx = -rstd * rstd * B / M;
      const double k0 = -rstd * A / M + rstd * rstd * mean * B / M;
      for (int64_t cl = 0; cl < Cg; ++cl) {
        const int64_t c = g * Cg + cl;
        const double gc = gamma ? static_cast<double>(gamma[c]) : 1.0;
        combine(dz.data() + cl * s.S, x + off + cl * s.S, dx + off + cl * s.S, static_cast<T>(rstd * gc),
                static_cast<T>(kx), static_cast<T>(k0), s.S);
      }
    }
  });
}

at::ScalarType compute_dtype(const at::Tensor& x) { return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat; }

template <typename T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_forward_cpu(const at::Tensor& x,
                                                                           const std::optional<at::Tensor>& gamma,
                                                                           const std::optional<at::Tensor>& beta,
                                                                           const GroupNormOptions& opt) {
  const detail::GroupNormShape s = detail::check_group_norm_args(x, gamma, beta, opt);
  if (!x.device().is_cpu()) MMREF_FAIL("group_norm_silu: the CPU kernel got x on {}", x.device().str());
  const at::ScalarType cdt = compute_dtype(x);
  const at::Tensor xc = x.to(cdt).contiguous();
  const at::Tensor gc = detail::has(gamma) ? gamma->to(cdt).contiguous() : at::Tensor();
  const at::Tensor bc = detail::has(beta) ? beta->to(cdt).contiguous() : at::Tensor();
  at::Tensor y = at::empty_like(xc);
  at::Tensor mean = at::empty({s.N, s.G}, xc.options());
  at::Tensor rstd = at::empty({s.N, s.G}, xc.options());
  if (xc.numel() > 0) {
    if (cdt == at::kDouble) {
      forward_impl<double, double>(xc.data_ptr<double>(), ptr_or_null<double>(gc), ptr_or_null<double>(bc),
                                   y.data_ptr<double>(), mean.data_ptr<double>(), rstd.data_ptr<double>(), s, opt);
    } else {
      forward_impl<float, float>(xc.data_ptr<float>(), ptr_or_null<float>(gc), ptr_or_null<float>(bc),
                                 y.data_ptr<float>(), mean.data_ptr<float>(), rstd.data_ptr<float>(), s, opt);
    }
  }
  return {y.to(x.scalar_type()), mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_backward_cpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  const detail::GroupNormShape s = detail::check_group_norm_args(x, gamma, beta, opt);
  if (!dout.sizes().equals(x.sizes())) {
    MMREF_FAIL("group_norm_silu backward: dout {} must have x's shape {}", detail::sz(dout), detail::sz(x));
  }
  if (mean.numel() != s.N * s.G || rstd.numel() != s.N * s.G) {
    MMREF_FAIL("group_norm_silu backward: mean {} and rstd {} must be ({}, {})", detail::sz(mean),
               detail::sz(rstd), s.N, s.G);
  }
  const at::ScalarType cdt = compute_dtype(x);
  const at::Tensor xc = x.to(cdt).contiguous();
  const at::Tensor dyc = dout.to(cdt).contiguous();
  const at::Tensor mc = mean.to(cdt).contiguous(), rc = rstd.to(cdt).contiguous();
  const at::Tensor gc = detail::has(gamma) ? gamma->to(cdt).contiguous() : at::Tensor();
  const at::Tensor bc = detail::has(beta) ? beta->to(cdt).contiguous() : at::Tensor();
  at::Tensor dx = at::empty_like(xc);
  const auto dopt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor dgp = at::zeros({s.N, s.C}, dopt), dbp = at::zeros({s.N, s.C}, dopt);
  if (xc.numel() > 0) {
    if (cdt == at::kDouble) {
      backward_impl<double, double>(dyc.data_ptr<double>(), xc.data_ptr<double>(), mc.data_ptr<double>(),
                                    rc.data_ptr<double>(), ptr_or_null<double>(gc), ptr_or_null<double>(bc),
                                    dx.data_ptr<double>(), dgp.data_ptr<double>(), dbp.data_ptr<double>(), s, opt);
    } else {
      backward_impl<float, float>(dyc.data_ptr<float>(), xc.data_ptr<float>(), mc.data_ptr<float>(),
                                  rc.data_ptr<float>(), ptr_or_null<float>(gc), ptr_or_null<float>(bc),
                                  dx.data_ptr<float>(), dgp.data_ptr<double>(), dbp.data_ptr<double>(), s, opt);
    }
  }
  at::Tensor dgamma = detail::has(gamma) ? dgp.sum(0).to(gamma->scalar_type()) : at::Tensor();
  at::Tensor dbeta = detail::has(beta) ? dbp.sum(0).to(beta->scalar_type()) : at::Tensor();
  return {dx.to(x.scalar_type()), dgamma, dbeta};
}

}  // namespace mmref::kernels
