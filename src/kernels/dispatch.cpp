// Kernel dispatch; see dispatch.h.
#include "kernels/dispatch.h"

#include <mutex>

#include <ATen/Functions.h>
#include <spdlog/spdlog.h>

#include "kernels/attention/attention_autograd.h"
#include "kernels/conv/conv_autograd.h"

namespace mmref::kernels {

namespace {

// One warning per op when the mmref backend meets a CUDA tensor in a build without the CUDA binding.
void warn_cuda_fallback(std::once_flag& flag, const char* op) {
  std::call_once(flag, [op] {
    spdlog::warn("{}: the mmref CUDA kernel is not built into this binary; using libtorch's op "
                 "(backend 'torch') on CUDA tensors",
                 op);
  });
}

// Whether the mmref backend has a kernel for this tensor: CPU always; CUDA fp32/fp16/bf16 in builds with
// the CUDA binding (fp64 on CUDA goes to libtorch's op without a warning: tests and gradchecks only).
bool mmref_kernel_for(const at::Tensor& t) {
  if (t.device().is_cpu()) return true;
#ifdef MMREF_CUDA_BINDINGS
  return t.is_cuda() && t.scalar_type() != at::kDouble;
#else
  return false;
#endif
}

bool quiet_fallback(const at::Tensor& t) { return t.is_cuda() && t.scalar_type() == at::kDouble; }

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const AttentionOptions& opt,
                     AttentionBackend backend) {
  switch (backend) {
    case AttentionBackend::kReference:
      return attention_reference(q, k, v, opt);
    case AttentionBackend::kTorch:
      return attention_torch(q, k, v, opt);
    case AttentionBackend::kMmref: {
      if (q.device().is_cpu()) return attention_autograd(q, k, v, opt);
#ifdef MMREF_CUDA_BINDINGS
      if (attention_cuda_supports(q)) return attention_autograd(q, k, v, opt);
#endif
      static std::once_flag warned;
      if (!quiet_fallback(q)) warn_cuda_fallback(warned, "attention");
      return attention_torch(q, k, v, opt);
    }
  }
  return attention_torch(q, k, v, opt);
}

at::Tensor depthwise_conv1d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            const DepthwiseConv1dOptions& opt, ConvBackend backend) {
  switch (backend) {
    case ConvBackend::kReference:
      return depthwise_conv1d_reference(x, weight, bias, opt);
    case ConvBackend::kTorch:
      return depthwise_conv1d_torch(x, weight, bias, opt);
    case ConvBackend::kMmref: {
      if (mmref_kernel_for(x)) return depthwise_conv1d_autograd(x, weight, bias, opt);
      static std::once_flag warned;
      if (!quiet_fallback(x)) warn_cuda_fallback(warned, "depthwise_conv1d");
      return depthwise_conv1d_torch(x, weight, bias, opt);
    }
  }
  return depthwise_conv1d_torch(x, weight, bias, opt);
}

at::Tensor group_norm_silu(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                           const std::optional<at::Tensor>& beta, const GroupNormOptions& opt, ConvBackend backend) {
  switch (backend) {
    case ConvBackend::kReference:
      return group_norm_silu_reference(x, gamma, beta, opt);
    case ConvBackend::kTorch:
      return group_norm_silu_torch(x, gamma, beta, opt);
    case ConvBackend::kMmref: {
      if (mmref_kernel_for(x)) return group_norm_silu_autograd(x, gamma, beta, opt);
      static std::once_flag warned;
      if (!quiet_fallback(x)) warn_cuda_fallback(warned, "group_norm_silu");
      return group_norm_silu_torch(x, gamma, beta, opt);
    }
  }
  return group_norm_silu_torch(x, gamma, beta, opt);
}

at::Tensor conv1d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  const Conv1dOptions& opt, ConvBackend backend) {
  if (backend == ConvBackend::kReference) return conv1d_reference(x, weight, bias, opt);
  if (backend == ConvBackend::kMmref && !x.device().is_cpu()) {
    static std::once_flag warned;
    warn_cuda_fallback(warned, "conv1d");
  }
  const at::Tensor b = bias.has_value() && bias->defined() ? *bias : at::Tensor();
  return at::conv1d(x, weight, b, opt.stride, opt.padding, opt.dilation, opt.groups);
}

}  // namespace mmref::kernels
