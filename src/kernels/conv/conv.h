// Convolution-family kernels for mmref: depthwise conv1d (Conformer conv module), fused GroupNorm + SiLU
// (diffusion UNet blocks), and the general conv1d with dilation and groups (TTS encoders, HiFi-GAN).
// Models call the dispatch layer (kernels/dispatch.h); the functions here are the layers underneath it
// that tests/kernels/conv_*_test.cpp compare against each other.
//
// depthwise_conv1d: x (B, C, T), weight (C, 1, K) (PyTorch Conv1d(groups=C) layout), bias (C) optional.
//   out[b, c, t] = bias[c] + sum_k weight[c, 0, k] * x[b, c, t + k * dilation - pad_left]
//   (zero outside [0, T)); out length T_out = T + pad_left + pad_right - dilation * (K - 1).
//   Padding presets: "same" pad_left = dilation * (K - 1) / 2, pad_right = the rest (odd K: symmetric,
//   = nn.Conv1d(padding=(K-1)/2)); "causal" pad_left = dilation * (K - 1), pad_right = 0 (wenet's
//   causal ConvolutionModule: F.pad(x, (lorder, 0)) then a valid conv).
// group_norm_silu: x (N, C, *) with C % groups == 0, gamma/beta (C) optional.
//   z = (x - mean_g) / sqrt(var_g + eps) * gamma[c] + beta[c]   (biased variance over C/G channels x *)
//   out = silu ? z * sigmoid(z) : z     (= F.silu(F.group_norm(x, G, gamma, beta, eps)))
//
// Ref: wenet wenet/transformer/convolution.py (depthwise_conv, lorder); diffusers resnet.py ResnetBlock2D
// (norm1 -> nonlinearity); Wu & He, "Group Normalization" (2018) for the backward formulas.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include <ATen/core/Tensor.h>

namespace mmref::kernels {

enum class ConvBackend { kMmref, kReference, kTorch };

// "mmref" | "reference" | "torch"; anything else throws mmref::Error naming the accepted values.
ConvBackend parse_conv_backend(const std::string& name);
const char* conv_backend_name(ConvBackend backend);

struct DepthwiseConv1dOptions {
  int64_t pad_left = 0;
  int64_t pad_right = 0;
  int64_t dilation = 1;
  // Padding for a kernel size: "same" or "causal" (see above); anything else throws mmref::Error.
  static DepthwiseConv1dOptions padding(const std::string& mode, int64_t kernel_size, int64_t dilation = 1);
};

struct GroupNormOptions {
  int64_t groups = 32;
  double eps = 1e-5;
  bool silu = true;
};

// ---------------------------------------------------------------- depthwise conv1d
// The CPU kernels. fp32 and fp64 natively; fp16/bf16 are computed in fp32 and returned in the input dtype.
at::Tensor depthwise_conv1d_forward_cpu(const at::Tensor& x, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);
// Returns {dx, dweight, dbias}; dbias is undefined when there is no bias.
std::tuple<at::Tensor, at::Tensor, at::Tensor> depthwise_conv1d_backward_cpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const DepthwiseConv1dOptions& opt);
// Plain loops-free libtorch reference: explicit zero padding, unfold, multiply, sum (differentiable).
at::Tensor depthwise_conv1d_reference(const at::Tensor& x, const at::Tensor& weight,
                                      const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);
// libtorch's op it replaces: at::conv1d(groups = C) after constant padding.
at::Tensor depthwise_conv1d_torch(const at::Tensor& x, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);

// ---------------------------------------------------------------- fused GroupNorm + SiLU
// Returns {out, mean (N, G), rstd (N, G)}; statistics in fp32 (fp64 for fp64 inputs).
std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_forward_cpu(
    const at::Tensor& x, const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta,
    const GroupNormOptions& opt);
// Returns {dx, dgamma, dbeta}; dgamma / dbeta are undefined when gamma / beta are absent.
std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_backward_cpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta, const GroupNormOptions& opt);
// Reference: explicit mean / biased variance per group, normalise, affine, x * sigmoid(x) (differentiable).
at::Tensor group_norm_silu_reference(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                     const std::optional<at::Tensor>& beta, const GroupNormOptions& opt);
// libtorch's ops it replaces: at::group_norm then at::silu.
at::Tensor group_norm_silu_torch(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                 const std::optional<at::Tensor>& beta, const GroupNormOptions& opt);

// ---------------------------------------------------------------- CUDA (conv_cuda_binding.cpp)
// The same contracts as the *_cpu functions, for CUDA tensors, through the torch-free launchers of
// conv_cuda.h. Defined only in builds with a CUDA libtorch (MMREF_CUDA_BINDINGS); see kernels_have_cuda().
at::Tensor depthwise_conv1d_forward_gpu(const at::Tensor& x, const at::Tensor& weight,
                                        const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);
std::tuple<at::Tensor, at::Tensor, at::Tensor> depthwise_conv1d_backward_gpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& weight, bool has_bias,
    const DepthwiseConv1dOptions& opt);
std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_forward_gpu(
    const at::Tensor& x, const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta,
    const GroupNormOptions& opt);
std::tuple<at::Tensor, at::Tensor, at::Tensor> group_norm_silu_backward_gpu(
    const at::Tensor& dout, const at::Tensor& x, const at::Tensor& mean, const at::Tensor& rstd,
    const std::optional<at::Tensor>& gamma, const std::optional<at::Tensor>& beta, const GroupNormOptions& opt);

// ---------------------------------------------------------------- general conv1d
// x (B, Cin, T), weight (Cout, Cin / groups, K), symmetric zero padding, stride 1 or more.
struct Conv1dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
};
// Reference: unfold into columns and a grouped matmul (differentiable).
at::Tensor conv1d_reference(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                            const Conv1dOptions& opt);

}  // namespace mmref::kernels
