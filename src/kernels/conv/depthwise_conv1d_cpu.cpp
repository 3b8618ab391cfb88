// The CPU depthwise conv1d kernel (Conformer conv module): forward and backward on (B, C, T).
//
// Forward: one task per (b, c) row, at::parallel_for over rows. The output row is walked in tiles of
// kTile samples whose accumulator stays in L1; for each tap k the tile gets acc += w[k] * x[t + off_k]
// over the t where the input index is inside [0, T) (the zero padding is never materialised). The axpy
// loop runs over contiguous memory and vectorises (kernels/common/cpu_vec.h: AVX2+FMA and baseline
// clones). Memory traffic: x read once, out written once -- what the op needs, whatever K.
// Backward:
//   dx[s] = sum_k w[k] * dout[s - off_k]   the same tiled axpy walk over dout (a correlation with the
//                                          kernel flipped), one task per row;
//   dw[c, k] = sum_{b,t} dout[b,c,t] * x[b,c,t + off_k], dbias[c] = sum_{b,t} dout[b,c,t]
//                                          one task per channel (no two tasks write the same dw row);
//                                          per tile, K dot products with 16 float lanes, added into
//                                          double sums so long rows lose no precision.
// fp16/bf16 are converted to fp32 once; fp64 (tests) runs in fp64.
//
// Ref: PyTorch aten/src/ATen/native/ConvolutionMM2d / mkldnn depthwise (the ops this replaces); the tap
// loop order is the classic direct-convolution "output-stationary" schedule.
#include <algorithm>
#include <cstring>
#include <vector>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>

#include "core/error.h"
#include "kernels/conv/conv.h"
#include "kernels/common/cpu_vec.h"
#include "kernels/conv/conv_common.h"

namespace mmref::kernels {
namespace {

constexpr int64_t kTile = 512;
using detail::axpy;
using detail::dot;
using detail::sum;

// out row (length n_out) = bias + sum_k w[k] * in[t + shift_k], shift_k = sign * (k * dil) + base, zero
// outside [0, n_in). Used by the forward (sign +1, base -pad_left) and by dx (sign -1, base +pad_left).
template <typename T>
void tap_row(const T* in, int64_t n_in, T* out, int64_t n_out, const T* w, int64_t K, int64_t dil,
             int64_t sign, int64_t base, T bias) {
  alignas(64) T acc[kTile];
  for (int64_t t0 = 0; t0 < n_out; t0 += kTile) {
    const int64_t t1 = std::min(t0 + kTile, n_out);
    std::fill(acc, acc + (t1 - t0), bias);
    for (int64_t k = 0; k < K; ++k) {
      const int64_t shift = sign * k * dil + base;  // input index = t + shift
      const int64_t lo = std::max(t0, -shift), hi = std::min(t1, n_in - shift);
      if (lo < hi) axpy(acc + (lo - t0), in + lo + shift, w[k], hi - lo);
    }
    std::memcpy(out + t0, acc, sizeof(T) * (t1 - t0));
  }
}

template <typename T>
void forward_impl(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, at::Tensor& out,
                  const DepthwiseConv1dOptions& o) {
  const int64_t B = x.size(0), C = x.size(1), T_in = x.size(2), K = w.size(2), T_out = out.size(2);
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  const T* bp = bias.defined() ? bias.data_ptr<T>() : nullptr;
  T* yp = out.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, T_out * K));
  at::parallel_for(0, B * C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r % C;
      tap_row<T>(xp + r * T_in, T_in, yp + r * T_out, T_out, wp + c * K, K, o.dilation, +1, -o.pad_left,
                 bp ? bp[c] : T(0));
    }
  });
}

template <typename T>
void backward_impl(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& w, at::Tensor& dx,
                   at::Tensor& dw, at::Tensor& db, const DepthwiseConv1dOptions& o) {
  const int64_t B = x.size(0), C = x.size(1), T_in = x.size(2), K = w.size(2), T_out = dy.size(2);
  const T* dyp = dy.data_ptr<T>();
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  // dx: dx[s] = sum_k w[k] * dy[s - (k * dil - pad_left)] -> shift_k = -k * dil + pad_left.
  T* dxp = dx.data_ptr<T>();
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, T_in * K));
  at::parallel_for(0, B * C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r % C;
      tap_row<T>(dyp + r * T_out, T_out, dxp + r * T_in, T_in, wp + c * K, K, o.dilation, -1, o.pad_left, T(0));
    }
  });
  // dw, db: one task per channel.
  T* dwp = dw.data_ptr<T>();
  T* dbp = db.defined() ? db.data_ptr<T>() : nullptr;
  at::parallel_for(0, C, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> sums(K);
    for (int64_t c = begin; c < end; ++c) {
      std::fill(sums.begin(), sums.end(), 0.0);
      double bsum = 0;
      for (int64_t b = 0; b < B; ++b) {
        const T* g = dyp + (b * C + c) * T_out;
        const T* xr = xp + (b * C + c) * T_in;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t shift = k * o.dilation - o.pad_left;  // x index = t + shift
          const int64_t lo = std::max<int64_t>(0, -shift), hi = std::min(T_out, T_in - shift);
          if (lo < hi) sums[k] += dot(g + lo, xr + lo + shift, hi - lo);
        }
        if (dbp) bsum += sum(g, T_out);
      }
      for (int64_t k = 0; k < K; ++k) dwp[c * K + k] = static_cast<T>(sums[k]);
      if (dbp) dbp[c] = static_cast<T>(bsum);
    }
  });
}

}  // namespace

at::Tensor depthwise_conv1d_forward_cpu(const at::Tensor& x, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  const detail::DepthwiseShape s = detail::check_depthwise_args(x, weight, bias, opt);
  if (!x.device().is_cpu()) MMREF_FAIL("depthwise_conv1d: the CPU kernel got x on {}", x.device().str());
  const at::ScalarType in_dtype = x.scalar_type();
  const at::ScalarType cdt = in_dtype == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor xc = x.to(cdt).contiguous();
  const at::Tensor wc = weight.to(cdt).contiguous();
  const at::Tensor bc = bias.has_value() && bias->defined() ? bias->to(cdt).contiguous() : at::Tensor();
  at::Tensor out = at::empty({s.B, s.C, s.T_out}, xc.options());
  if (out.numel() > 0) {
    if (cdt == at::kDouble) forward_impl<double>(xc, wc, bc, out, opt);
    else forward_impl<float>(xc, wc, bc, out, opt);
  }
  return out.to(in_dtype);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> depthwise_conv1d_backward_cpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const DepthwiseConv1dOptions& opt) {
  const detail::DepthwiseShape s = detail::check_depthwise_args(x, weight, std::nullopt, opt);
  if (dout.dim() != 3 || dout.size(0) != s.B || dout.size(1) != s.C || dout.size(2) != s.T_out) {
    MMREF_FAIL("depthwise_conv1d backward: dout {} must be ({}, {}, {})", detail::sz(dout), s.B, s.C, s.T_out);
  }
  const at::ScalarType in_dtype = x.scalar_type();
  const at::ScalarType cdt = in_dtype == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor xc = x.to(cdt).contiguous();
  const at::Tensor wc = weight.to(cdt).contiguous();
  const at::Tensor gc = dout.to(cdt).contiguous();
  at::Tensor dx = at::zeros_like(xc);
  at::Tensor dw = at::zeros_like(wc);
  at::Tensor db = has_bias ? at::zeros({s.C}, xc.options()) : at::Tensor();
  if (xc.numel() > 0 && gc.numel() > 0) {
    if (cdt == at::kDouble) backward_impl<double>(gc, xc, wc, dx, dw, db, opt);
    else backward_impl<float>(gc, xc, wc, dx, dw, db, opt);
  }
  return {dx.to(in_dtype), dw.to(weight.scalar_type()), db.defined() ? db.to(weight.scalar_type()) : db};
}

}  // namespace mmref::kernels
