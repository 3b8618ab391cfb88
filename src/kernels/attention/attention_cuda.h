// Torch-free launchers of the CUDA attention kernels (attention_fwd.cu, attention_bwd.cu): raw pointers,
// sizes, strides and a cudaStream_t. attention_cuda_binding.cpp builds these from at::Tensors. Conventions
// are those of attention.h (causal bottom-right aligned, q/k lengths, additive bias, GQA, dropout hash).
// Launchers return the CUDA error of their launches and never throw.
#pragma once
#include <cstdint>

#include <cuda_runtime_api.h>

#include "kernels/common/kernel_types.h"

namespace mmref::kernels {

struct AttentionCudaParams {
  // q (B, H, Lq, D), k/v (B, Hkv, Lk, D), out (B, H, Lq, D): contiguous, element type `dtype`.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;  // (B, H, Lq) fp32; -inf for rows without a visible key
  // Additive fp32 bias read at b*bias_stride[0] + h*bias_stride[1] + i*bias_stride[2] + j*bias_stride[3]
  // (0 strides broadcast); null for none.
  const float* bias = nullptr;
  int64_t bias_stride[4] = {0, 0, 0, 0};
  const int64_t* q_lengths = nullptr;  // (B) on the device, or null (all Lq)
  const int64_t* k_lengths = nullptr;  // (B) on the device, or null (all Lk)
  int64_t B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, D = 0;
  float scale = 1.0f;
  bool causal = false;
  float dropout_p = 0.0f;
  uint32_t dropout_threshold = 0;  // ceil(p * 2^24); 0 = no dropout
  uint64_t seed = 0;
  KDType dtype = KDType::kF32;
};

// Head dims the kernels are instantiated for.
bool attention_cuda_supports_head_dim(int64_t D);

cudaError_t attention_forward_cuda(const AttentionCudaParams& p, cudaStream_t stream);

struct AttentionCudaBackwardParams {
  AttentionCudaParams fwd;  // as in the forward; fwd.out and fwd.lse are read
  const void* dout = nullptr;  // (B, H, Lq, D), dtype
  float* delta = nullptr;      // (B, H, Lq) fp32 workspace: rowsum(dout * out)
  float* dq_acc = nullptr;     // (B, H, Lq, D) fp32, zeroed by the caller (atomics)
  void* dk = nullptr;          // (B, Hkv, Lk, D), dtype
  void* dv = nullptr;          // (B, Hkv, Lk, D), dtype
  float* dbias = nullptr;      // fp32, zeroed by the caller, read with dbias_stride like bias; null: none
  int64_t dbias_stride[4] = {0, 0, 0, 0};
};

cudaError_t attention_backward_cuda(const AttentionCudaBackwardParams& p, cudaStream_t stream);

}  // namespace mmref::kernels
