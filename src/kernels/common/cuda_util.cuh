// Device helpers shared by the .cu kernels: typed loads/stores through fp32, warp and block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/common/kernel_types.h"

namespace mmref::kernels::cuda {

template <typename T>
__device__ __forceinline__ float to_f(T v);
template <>
__device__ __forceinline__ float to_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats of shared memory; the call synchronises the block.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = lane < nwarps ? scratch[lane] : 0.0f;
  return warp_sum(r);
}

__device__ __forceinline__ float sigmoid_f(float z) { return 1.0f / (1.0f + __expf(-z)); }

}  // namespace mmref::kernels::cuda

// MMREF_DISPATCH_KDTYPE(dtype, [&] { ... scalar_t ... }): runs the lambda with scalar_t the CUDA type of
// dtype (float, __half, __nv_bfloat16), like AT_DISPATCH_FLOATING_TYPES_AND2.
#define MMREF_DISPATCH_KDTYPE(dtype, ...)                                              \
  [&] {                                                                                \
    switch (dtype) {                                                                   \
      case ::mmref::kernels::KDType::kF16: { using scalar_t = __half; return __VA_ARGS__(); }          \
      case ::mmref::kernels::KDType::kBF16: { using scalar_t = __nv_bfloat16; return __VA_ARGS__(); } \
      default: { using scalar_t = float; return __VA_ARGS__(); }                       \
    }                                                                                  \
  }()
