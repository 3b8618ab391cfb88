// Internal to the CUDA attention kernels (attention_fwd.cu, attention_bwd.cu): tile sizes, the per-block
// problem view (batch, heads, lengths, causal limit) and the mask/bias/dropout rules of attention.h.
#pragma once
#include <cuda_runtime.h>
#include <math_constants.h>

#include "kernels/attention/attention_cuda.h"
#include "kernels/attention/dropout_hash.h"
#include "kernels/common/cuda_util.cuh"

namespace mmref::kernels::attn {

constexpr int kBQ = 32;       // query rows per tile
constexpr int kBK = 32;       // keys per tile
constexpr int kThreads = 128; // 4 threads ("a quad") per tile row
constexpr int kPerThread = 8; // tile columns per thread in the score step (kBK / 4)

__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

struct View {
  int64_t b, h;      // batch, query head (or kv head in the backward's outer view)
  int64_t qlen, klen;  // valid lengths of this batch entry (clamped to Lq, Lk)
};

__device__ __forceinline__ int64_t clamp_len(const int64_t* lens, int64_t b, int64_t full) {
  if (lens == nullptr) return full;
  const int64_t v = lens[b];
  return v < 0 ? 0 : (v > full ? full : v);
}

// Whether query i sees key j (lengths, causal bottom-right aligned).
__device__ __forceinline__ bool visible(const AttentionCudaParams& p, int64_t qlen, int64_t klen, int64_t i,
                                        int64_t j) {
  return i < qlen && j < klen && (!p.causal || j <= i + (p.Lk - p.Lq));
}

__device__ __forceinline__ float bias_at(const AttentionCudaParams& p, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (p.bias == nullptr) return 0.0f;
  return p.bias[b * p.bias_stride[0] + h * p.bias_stride[1] + i * p.bias_stride[2] + j * p.bias_stride[3]];
}

// Exclusive end of the keys any row of the query tile [i0, i0 + kBQ) can see (block-uniform).
__device__ __forceinline__ int64_t key_end(const AttentionCudaParams& p, int64_t klen, int64_t i0) {
  int64_t end = klen;
  if (p.causal) {
    const int64_t last = i0 + kBQ - 1 + (p.Lk - p.Lq) + 1;
    end = end < last ? end : last;
  }
  return end < 0 ? 0 : end;
}

}  // namespace mmref::kernels::attn
