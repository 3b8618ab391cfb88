// Autograd wrappers of the conv-family kernels (CPU, and CUDA where built); see conv_autograd.h.
#include "kernels/conv/conv_autograd.h"

#include <ATen/Functions.h>

#include "kernels/conv/conv_common.h"

namespace mmref::kernels {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {
c10::optional<at::Tensor> opt_tensor(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}
std::optional<at::Tensor> to_std(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? std::optional<at::Tensor>(*t) : std::nullopt;
}

// The kernel for the tensors' device: *_cpu, or *_gpu in builds with the CUDA binding.
#ifdef MMREF_CUDA_BINDINGS
#define MMREF_BY_DEVICE(t, name, ...) ((t).is_cuda() ? name##_gpu(__VA_ARGS__) : name##_cpu(__VA_ARGS__))
#else
#define MMREF_BY_DEVICE(t, name, ...) name##_cpu(__VA_ARGS__)
#endif
}  // namespace

at::Tensor DepthwiseConv1dFunction::forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                                            const c10::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  at::Tensor out = MMREF_BY_DEVICE(x, depthwise_conv1d_forward, x, weight, to_std(bias), opt);
  ctx->save_for_backward({x, weight});
  ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
  ctx->saved_data["pad_left"] = opt.pad_left;
  ctx->saved_data["pad_right"] = opt.pad_right;
  ctx->saved_data["dilation"] = opt.dilation;
  return out;
}

variable_list DepthwiseConv1dFunction::backward(AutogradContext* ctx, variable_list grad_outputs) {
  const variable_list saved = ctx->get_saved_variables();
  DepthwiseConv1dOptions o;
  o.pad_left = ctx->saved_data["pad_left"].toInt();
  o.pad_right = ctx->saved_data["pad_right"].toInt();
  o.dilation = ctx->saved_data["dilation"].toInt();
  const bool has_bias = ctx->saved_data["has_bias"].toBool();
  at::Tensor dout = grad_outputs[0];
  if (!dout.defined()) {
    const int64_t T_out = saved[0].size(2) + o.pad_left + o.pad_right - o.dilation * (saved[1].size(2) - 1);
    dout = at::zeros({saved[0].size(0), saved[0].size(1), T_out}, saved[0].options());
  }
  auto [dx, dw, db] = MMREF_BY_DEVICE(saved[0], depthwise_conv1d_backward, dout, saved[0], saved[1], has_bias, o);
  return {dx, dw, db, at::Tensor()};
}

at::Tensor GroupNormSiluFunction::forward(AutogradContext* ctx, const at::Tensor& x,
                                          const c10::optional<at::Tensor>& gamma,
                                          const c10::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  auto [out, mean, rstd] = MMREF_BY_DEVICE(x, group_norm_silu_forward, x, to_std(gamma), to_std(beta), opt);
  ctx->save_for_backward({x, gamma.has_value() ? *gamma : at::Tensor(), beta.has_value() ? *beta : at::Tensor(),
                          mean, rstd});
  ctx->saved_data["groups"] = opt.groups;
  ctx->saved_data["eps"] = opt.eps;
  ctx->saved_data["silu"] = opt.silu;
  return out;
}

variable_list GroupNormSiluFunction::backward(AutogradContext* ctx, variable_list grad_outputs) {
  const variable_list saved = ctx->get_saved_variables();
  GroupNormOptions o;
  o.groups = ctx->saved_data["groups"].toInt();
  o.eps = ctx->saved_data["eps"].toDouble();
  o.silu = ctx->saved_data["silu"].toBool();
  at::Tensor dout = grad_outputs[0];
  if (!dout.defined()) dout = at::zeros_like(saved[0]);
  auto [dx, dgamma, dbeta] =
      MMREF_BY_DEVICE(saved[0], group_norm_silu_backward, dout, saved[0], saved[3], saved[4],
                      to_std(opt_tensor(saved[1])), to_std(opt_tensor(saved[2])), o);
  return {dx, dgamma, dbeta, at::Tensor()};
}

at::Tensor depthwise_conv1d_autograd(const at::Tensor& x, const at::Tensor& weight,
                                         const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  c10::optional<at::Tensor> b;
  if (detail::has(bias)) b = *bias;
  return DepthwiseConv1dFunction::apply(x, weight, b, opt);
}

at::Tensor group_norm_silu_autograd(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                        const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  c10::optional<at::Tensor> g, b;
  if (detail::has(gamma)) g = *gamma;
  if (detail::has(beta)) b = *beta;
  return GroupNormSiluFunction::apply(x, g, b, opt);
}

}  // namespace mmref::kernels
