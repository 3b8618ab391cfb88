// Torch-free launchers of the CUDA conv-family kernels (depthwise_conv1d.cu, group_norm_silu.cu): raw
// pointers, sizes and a cudaStream_t; every tensor is contiguous. conv_cuda_binding.cpp turns at::Tensors
// into these params and checks them. Each launcher returns the CUDA error of its launches (cudaSuccess when
// fine) and never throws. Math is fp32; fp16/bf16 are loaded and stored in their type.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/common/kernel_types.h"

namespace mmref::kernels {

// ---- depthwise conv1d: x (B, C, T), w (C, K) fp32, bias (C) fp32 or null, out (B, C, T_out) ----
// Parameters are fp32 whatever the activations' type (mixed precision keeps fp32 master weights).
struct DepthwiseConv1dParams {
  const void* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr;
  void* out = nullptr;
  int64_t B = 0, C = 0, T = 0, T_out = 0, K = 0, pad_left = 0, dilation = 1;
  KDType dtype = KDType::kF32;
};
cudaError_t depthwise_conv1d_forward_cuda(const DepthwiseConv1dParams& p, cudaStream_t stream);

// Backward: dout (B, C, T_out) -> dx (B, C, T) in the input type; dw_acc (C, K) and db_acc (C) are fp32
// accumulators the caller zeroes first (db_acc may be null). dw/db are summed with atomics, so their
// last bits may differ from run to run; dx is deterministic.
struct DepthwiseConv1dBackwardParams {
  const void* dout = nullptr;
  const void* x = nullptr;
  const float* w = nullptr;
  void* dx = nullptr;
  float* dw_acc = nullptr;
  float* db_acc = nullptr;
  int64_t B = 0, C = 0, T = 0, T_out = 0, K = 0, pad_left = 0, dilation = 1;
  KDType dtype = KDType::kF32;
};
cudaError_t depthwise_conv1d_backward_cuda(const DepthwiseConv1dBackwardParams& p, cudaStream_t stream);

// ---- GroupNorm + SiLU: x (N, C, S) -> out; mean/rstd (N, G) fp32 outputs ----
// workspace: group_norm_silu_workspace_floats(N, C, S, G) floats, no initialisation needed.
struct GroupNormSiluParams {
  const void* x = nullptr;
  const float* gamma = nullptr;  // (C) fp32 or null
  const float* beta = nullptr;   // (C) fp32 or null
  void* out = nullptr;
  float* mean = nullptr;
  float* rstd = nullptr;
  float* workspace = nullptr;
  int64_t N = 0, C = 0, S = 0, G = 1;
  float eps = 1e-5f;
  bool silu = true;
  KDType dtype = KDType::kF32;
};
int64_t group_norm_silu_workspace_floats(int64_t N, int64_t C, int64_t S, int64_t G);
cudaError_t group_norm_silu_forward_cuda(const GroupNormSiluParams& p, cudaStream_t stream);

// Backward: dx in the input type; channel_sums (N, C, 2) fp32 = {sum dz, sum dz * xhat} per (n, c), which
// the caller zeroes first and reduces over n for dbeta / dgamma.
struct GroupNormSiluBackwardParams {
  const void* dout = nullptr;
  const void* x = nullptr;
  const float* mean = nullptr;
  const float* rstd = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  void* dx = nullptr;
  float* channel_sums = nullptr;
  int64_t N = 0, C = 0, S = 0, G = 1;
  bool silu = true;
  KDType dtype = KDType::kF32;
};
cudaError_t group_norm_silu_backward_cuda(const GroupNormSiluBackwardParams& p, cudaStream_t stream);

}  // namespace mmref::kernels
