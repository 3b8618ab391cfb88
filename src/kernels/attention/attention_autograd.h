// Autograd wrapper of the fused attention kernels: forward saves q, k, v, out, lse (and bias), backward
// calls the kernel's backward -- the CPU pair for CPU tensors, the CUDA pair for CUDA tensors in builds
// with the CUDA binding. Gradients flow to q, k, v and bias.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/attention/attention.h"

namespace mmref::kernels {

struct AttentionFunction : public torch::autograd::Function<AttentionFunction> {
  // `bias` is opt.bias passed separately (nullopt if none) so autograd tracks it as an input.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const c10::optional<at::Tensor>& bias,
                            const AttentionOptions& opt);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs);
};

// AttentionFunction::apply with opt.bias split out.
at::Tensor attention_autograd(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const AttentionOptions& opt);

}  // namespace mmref::kernels
