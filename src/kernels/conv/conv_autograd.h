// Autograd wrappers of the conv-family kernels: forward saves what the kernel's backward needs, backward
// calls it; the kernel is the CPU one for CPU tensors and the CUDA one for CUDA tensors (builds with the
// CUDA binding, MMREF_CUDA_BINDINGS). Gradients flow to every tensor input (x, weight/gamma, bias/beta). Second-order
// gradients are not supported (the backward is not itself differentiable).
#pragma once
#include <optional>

#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/conv/conv.h"

namespace mmref::kernels {

struct DepthwiseConv1dFunction : public torch::autograd::Function<DepthwiseConv1dFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const c10::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs);
};

struct GroupNormSiluFunction : public torch::autograd::Function<GroupNormSiluFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const c10::optional<at::Tensor>& gamma, const c10::optional<at::Tensor>& beta,
                            const GroupNormOptions& opt);
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs);
};

at::Tensor depthwise_conv1d_autograd(const at::Tensor& x, const at::Tensor& weight,
                                         const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);
at::Tensor group_norm_silu_autograd(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                        const std::optional<at::Tensor>& beta, const GroupNormOptions& opt);

}  // namespace mmref::kernels
