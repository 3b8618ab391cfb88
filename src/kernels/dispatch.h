// The kernel dispatch layer models call: picks an implementation by backend, device and dtype.
// Backends (config `kernels.<op>: mmref | reference | torch`, so every model can A/B its kernels in one run):
//   kMmref      CPU  -> mmref's fused kernel through its autograd wrapper (attention/attention_cpu.cpp,
//                       conv/depthwise_conv1d_cpu.cpp, conv/group_norm_silu_cpu.cpp);
//               CUDA -> mmref's CUDA kernel (fp32/fp16/bf16) in builds with a CUDA libtorch (the `cuda`
//                       preset: depthwise conv1d and GroupNorm+SiLU so far); otherwise, and for attention
//                       until its CUDA kernel lands, libtorch's op with a one-time warning;
//   kTorch           -> the libtorch op(s) the kernel replaces (attention: matmul, softmax, matmul, since
//                       libtorch 1.13 has no scaled_dot_product_attention; depthwise: conv1d(groups=C);
//                       group_norm then silu);
//   kReference       -> the plain composition in the input dtype (what tests run in float64).
// conv1d (general, dilation and groups) has no mmref CPU kernel: on CPU kMmref calls libtorch's conv1d
// (oneDNN), which the benchmarks show is the faster choice there (benchmarks/kernels/conv_bench.cpp).
// All backends are differentiable wrt every tensor input and share the conventions of attention.h/conv.h.
#pragma once
#include <optional>

#include <ATen/core/Tensor.h>

#include "kernels/attention/attention.h"
#include "kernels/conv/conv.h"

namespace mmref::kernels {

// q (B, H, Lq, D), k/v (B, Hkv, Lk, D) -> out (B, H, Lq, D).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& opt = {}, AttentionBackend backend = AttentionBackend::kMmref);

// x (B, C, T), weight (C, 1, K), bias (C) -> (B, C, T_out).
at::Tensor depthwise_conv1d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            const DepthwiseConv1dOptions& opt, ConvBackend backend = ConvBackend::kMmref);

// silu(group_norm(x)) for x (N, C, *), gamma/beta (C).
at::Tensor group_norm_silu(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                           const std::optional<at::Tensor>& beta, const GroupNormOptions& opt,
                           ConvBackend backend = ConvBackend::kMmref);

// x (B, Cin, T), weight (Cout, Cin / groups, K) -> (B, Cout, T_out).
at::Tensor conv1d(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                  const Conv1dOptions& opt, ConvBackend backend = ConvBackend::kMmref);

}  // namespace mmref::kernels
