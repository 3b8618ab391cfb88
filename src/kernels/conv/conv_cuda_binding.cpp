// libtorch binding of the CUDA conv-family kernels (conv_cuda.h): checks the tensors (naming them),
// makes them contiguous (parameters as fp32), allocates outputs and fp32 accumulators with libtorch's caching allocator, and
// launches on the current stream of the tensors' device. Compiled only with a CUDA libtorch
// (MMREF_CUDA_BINDINGS, the `cuda` preset); CPU builds syntax-check it (src/kernels/CMakeLists.txt).
#ifdef MMREF_CUDA_BINDINGS
#include <ATen/Functions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "core/error.h"
#include "kernels/common/tensor_str.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_common.h"
#include "kernels/conv/conv_cuda.h"

namespace mmref::kernels {
namespace {

KDType kdtype(const at::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case at::kFloat: return KDType::kF32;
    case at::kHalf: return KDType::kF16;
    case at::kBFloat16: return KDType::kBF16;
    default:
      MMREF_FAIL("{}: the CUDA kernel takes fp32, fp16 or bf16, got {}", op, c10::toString(t.scalar_type()));
  }
}

void check(cudaError_t e, const char* op) {
  if (e != cudaSuccess) MMREF_FAIL("{}: CUDA kernel launch failed: {}", op, cudaGetErrorString(e));
}

void check_cuda(const at::Tensor& t, const at::Tensor& x, const char* op, const char* name) {
  if (!t.is_cuda() || t.device() != x.device()) MMREF_FAIL("{}: {} must be on x's device {}", op, name, x.device().str());
}

// A contiguous fp32 copy (parameters stay fp32 whatever the activations' type), or an undefined tensor.
at::Tensor f32(const std::optional<at::Tensor>& t) {
  return detail::has(t) ? t->to(at::kFloat).contiguous() : at::Tensor();
}
const float* ptr(const at::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

}  // namespace

at::Tensor depthwise_conv1d_forward_gpu(const at::Tensor& x, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  const char* op = "depthwise_conv1d";
  const detail::DepthwiseShape s = detail::check_depthwise_args(x, weight, bias, opt);
  if (!x.is_cuda()) MMREF_FAIL("{}: the CUDA kernel got x on {}", op, x.device().str());
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), wc = f32(weight), bc = f32(bias);
  at::Tensor out = at::empty({s.B, s.C, s.T_out}, xc.options());
  DepthwiseConv1dParams p;
  p.x = xc.data_ptr(), p.w = ptr(wc), p.bias = ptr(bc), p.out = out.data_ptr();
  p.B = s.B, p.C = s.C, p.T = s.T, p.T_out = s.T_out, p.K = s.K, p.pad_left = opt.pad_left, p.dilation = opt.dilation;
  p.dtype = kdtype(x, op);
  check(depthwise_conv1d_forward_cuda(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream()), op);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> depthwise_conv1d_backward_gpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const DepthwiseConv1dOptions& opt) {
  const char* op = "depthwise_conv1d backward";
  const detail::DepthwiseShape s = detail::check_depthwise_args(x, weight, std::nullopt, opt);
  check_cuda(dout, x, op, "dout");
  if (dout.dim() != 3 || dout.size(0) != s.B || dout.size(1) != s.C || dout.size(2) != s.T_out) {
    MMREF_FAIL("{}: dout {} must be ({}, {}, {})", op, detail::sz(dout), s.B, s.C, s.T_out);
  }
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), wc = f32(weight);
  const at::Tensor gc = dout.to(x.scalar_type()).contiguous();
  at::Tensor dx = at::empty_like(xc);
  const auto f32 = xc.options().dtype(at::kFloat);
  at::Tensor dw = at::zeros({s.C, s.K}, f32);
  at::Tensor db = has_bias ? at::zeros({s.C}, f32) : at::Tensor();
  DepthwiseConv1dBackwardParams p;
  p.dout = gc.data_ptr(), p.x = xc.data_ptr(), p.w = ptr(wc), p.dx = dx.data_ptr();
  p.dw_acc = dw.data_ptr<float>(), p.db_acc = has_bias ? db.data_ptr<float>() : nullptr;
  p.B = s.B, p.C = s.C, p.T = s.T, p.T_out = s.T_out, p.K = s.K, p.pad_left = opt.pad_left, p.dilation = opt.dilation;
  p.dtype = kdtype(x, op);
  check(depthwise_conv1d_backward_cuda(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream()), op);
  return {dx, dw.view({s.C, 1, s.K}).to(weight.scalar_type()), has_bias ? db.to(weight.scalar_type()) : db};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_forward_gpu(
    const at::Tensor& x, const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta,
    const GroupNormOptions& opt) {
  const char* op = "group_norm_silu";
  const detail::GroupNormShape s = detail::check_group_norm_args(x, gamma, beta, opt);
  if (!x.is_cuda()) MMREF_FAIL("{}: the CUDA kernel got x on {}", op, x.device().str());
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), gc = f32(gamma), bc = f32(beta);
  at::Tensor out = at::empty_like(xc);
  const auto f32 = xc.options().dtype(at::kFloat);
  at::Tensor mean = at::empty({s.N, s.G}, f32), rstd = at::empty({s.N, s.G}, f32);
  at::Tensor ws = at::empty({group_norm_silu_workspace_floats(s.N, s.C, s.S, s.G)}, f32);
  GroupNormSiluParams p;
  p.x = xc.data_ptr(), p.gamma = ptr(gc), p.beta = ptr(bc);
  p.out = out.data_ptr(), p.mean = mean.data_ptr<float>(), p.rstd = rstd.data_ptr<float>();
  p.workspace = ws.data_ptr<float>();
  p.N = s.N, p.C = s.C, p.S = s.S, p.G = s.G, p.eps = static_cast<float>(opt.eps), p.silu = opt.silu;
  p.dtype = kdtype(x, op);
  check(group_norm_silu_forward_cuda(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream()), op);
  return {out, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_backward_gpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  const char* op = "group_norm_silu backward";
  const detail::GroupNormShape s = detail::check_group_norm_args(x, gamma, beta, opt);
  check_cuda(dout, x, op, "dout");
  if (!dout.sizes().equals(x.sizes())) MMREF_FAIL("{}: dout {} must have x's shape {}", op, detail::sz(dout), detail::sz(x));
  c10::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous(), dc = dout.to(x.scalar_type()).contiguous();
  const at::Tensor gc = f32(gamma), bc = f32(beta);
  const at::Tensor mc = mean.to(at::kFloat).contiguous(), rc = rstd.to(at::kFloat).contiguous();
  at::Tensor dx = at::empty_like(xc);
  at::Tensor sums = at::zeros({s.N, s.C, 2}, xc.options().dtype(at::kFloat));
  GroupNormSiluBackwardParams p;
  p.dout = dc.data_ptr(), p.x = xc.data_ptr(), p.mean = mc.data_ptr<float>(), p.rstd = rc.data_ptr<float>();
  p.gamma = ptr(gc), p.beta = ptr(bc);
  p.dx = dx.data_ptr(), p.channel_sums = sums.data_ptr<float>();
  p.N = s.N, p.C = s.C, p.S = s.S, p.G = s.G, p.silu = opt.silu, p.dtype = kdtype(x, op);
  check(group_norm_silu_backward_cuda(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream()), op);
  const at::Tensor per_c = sums.sum(0);  // (C, 2)
  at::Tensor dgamma = detail::has(gamma) ? per_c.select(1, 1).to(gamma->scalar_type()) : at::Tensor();
  at::Tensor dbeta = detail::has(beta) ? per_c.select(1, 0).to(beta->scalar_type()) : at::Tensor();
  return {dx, dgamma, dbeta};
}

}  // namespace mmref::kernels
#endif  // MMREF_CUDA_BINDINGS
