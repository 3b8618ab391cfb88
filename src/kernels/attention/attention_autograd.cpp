// Autograd wrapper of the fused attention kernels (CPU, and CUDA where built); see attention_autograd.h.
#include "kernels/attention/attention_autograd.h"

namespace mmref::kernels {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {
// The kernel pair for q's device: the CPU kernel, or the CUDA one in builds with the CUDA binding.
std::pair<at::Tensor, at::Tensor> forward_any(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                              const AttentionOptions& o) {
#ifdef MMREF_CUDA_BINDINGS
  if (q.is_cuda()) return attention_forward_gpu(q, k, v, o);
#endif
  return attention_forward_cpu(q, k, v, o);
}
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_any(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& out,
    const at::Tensor& lse, const AttentionOptions& o) {
#ifdef MMREF_CUDA_BINDINGS
  if (q.is_cuda()) return attention_backward_gpu(dout, q, k, v, out, lse, o);
#endif
  return attention_backward_cpu(dout, q, k, v, out, lse, o);
}
}  // namespace

at::Tensor AttentionFunction::forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v, const c10::optional<at::Tensor>& bias,
                                      const AttentionOptions& opt) {
  AttentionOptions o = opt;
  if (bias.has_value() && bias->defined()) o.bias = *bias; else o.bias.reset();
  auto [out, lse] = forward_any(q, k, v, o);
  ctx->save_for_backward({q, k, v, out, lse, o.bias.has_value() ? *o.bias : at::Tensor()});
  ctx->saved_data["causal"] = opt.causal;
  ctx->saved_data["scale"] = opt.scale;
  ctx->saved_data["dropout_p"] = opt.dropout_p;
  ctx->saved_data["seed"] = static_cast<int64_t>(opt.seed);
  ctx->saved_data["q_lengths"] = opt.q_lengths.has_value() ? *opt.q_lengths : at::Tensor();
  ctx->saved_data["k_lengths"] = opt.k_lengths.has_value() ? *opt.k_lengths : at::Tensor();
  return out;
}

variable_list AttentionFunction::backward(AutogradContext* ctx, variable_list grad_outputs) {
  const variable_list saved = ctx->get_saved_variables();
  AttentionOptions o;
  o.causal = ctx->saved_data["causal"].toBool();
  o.scale = ctx->saved_data["scale"].toDouble();
  o.dropout_p = ctx->saved_data["dropout_p"].toDouble();
  o.seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
  const at::Tensor ql = ctx->saved_data["q_lengths"].toTensor();
  const at::Tensor kl = ctx->saved_data["k_lengths"].toTensor();
  if (ql.defined()) o.q_lengths = ql;
  if (kl.defined()) o.k_lengths = kl;
  at::Tensor bias = saved[5];
  if (bias.defined()) {
    // The kernel computes dbias only for a bias that requires grad; ask it exactly when autograd does.
    o.bias = bias.detach().requires_grad_(ctx->needs_input_grad(3));
  }
  at::Tensor dout = grad_outputs[0];
  if (!dout.defined()) dout = at::zeros_like(saved[3]);
  auto [dq, dk, dv, dbias] = backward_any(dout, saved[0], saved[1], saved[2], saved[3], saved[4], o);
  return {dq, dk, dv, dbias, at::Tensor()};
}

at::Tensor attention_autograd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const AttentionOptions& opt) {
  c10::optional<at::Tensor> bias;
  if (opt.bias.has_value() && opt.bias->defined()) bias = *opt.bias;
  return AttentionFunction::apply(q, k, v, bias, opt);
}

}  // namespace mmref::kernels
