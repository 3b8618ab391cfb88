// Autograd wrappers of the CPU conv-family kernels; see conv_autograd.h.
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
}  // namespace

at::Tensor DepthwiseConv1dFunction::forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                                            const c10::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  at::Tensor out = depthwise_conv1d_forward_cpu(x, weight, to_std(bias), opt);
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
  auto [dx, dw, db] = depthwise_conv1d_backward_cpu(dout, saved[0], saved[1], has_bias, o);
  return {dx, dw, db, at::Tensor()};
}

at::Tensor GroupNormSiluFunction::forward(AutogradContext* ctx, const at::Tensor& x,
                                          const c10::optional<at::Tensor>& gamma,
                                          const c10::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  auto [out, mean, rstd] = group_norm_silu_forward_cpu(x, to_std(gamma), to_std(beta), opt);
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
      group_norm_silu_backward_cpu(dout, saved[0], saved[3], saved[4], to_std(opt_tensor(saved[1])),
                                   to_std(opt_tensor(saved[2])), o);
  return {dx, dgamma, dbeta, at::Tensor()};
}

at::Tensor depthwise_conv1d_cpu_autograd(const at::Tensor& x, const at::Tensor& weight,
                                         const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt) {
  c10::optional<at::Tensor> b;
  if (detail::has(bias)) b = *bias;
  return DepthwiseConv1dFunction::apply(x, weight, b, opt);
}

at::Tensor group_norm_silu_cpu_autograd(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                        const std::optional<at::Tensor>& beta, const GroupNormOptions& opt) {
  c10::optional<at::Tensor> g, b;
  if (detail::has(gamma)) g = *gamma;
  if (detail::has(beta)) b = *beta;
  return GroupNormSiluFunction::apply(x, g, b, opt);
}

}  // namespace mmref::kernels
