// CUDA attention forward: tiled online softmax (FlashAttention-2 Algorithm 1), fp32 math on CUDA cores.
//
// One block per (batch x head, query tile of kBQ = 32 rows); 128 threads, 4 per row. The block stages its
// Q tile, then walks key tiles of kBK = 32 (K and V staged in shared memory, padded rows against bank
// conflicts): each thread scores 8 keys of its row (dot products from shared memory), the row's quad
// agrees on the running max and sum with two shuffles, stores its dropped-out probabilities in shared
// memory, and updates the D/4 output columns it owns. Nothing of size Lq x Lk exists in device memory;
// lse (fp32) is written for the backward. Key tiles past the batch entry's key length, or past the
// causal limit of the tile's last row, are skipped.
// This is the correct, feature-complete SIMT version; the tensor-core (mma.sync / wgmma) versions that
// the benchmarks compare against libtorch's FlashAttention backend come next (src/kernels/README.md).
//
// Ref: Dao, FlashAttention-2 (2023), Algorithm 1; kernels/attention/attention_cpu.cpp (same tiling).
// Tests: tests/kernels/attention_cuda_test.cpp (suite GpuAttention*).
#include <cmath>

#include "kernels/attention/attention_cuda_common.cuh"

namespace mmref::kernels {
namespace {

using namespace attn;
using cuda::from_f;
using cuda::to_f;

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) forward_kernel(const AttentionCudaParams p) {
  extern __shared__ float smem[];
  constexpr int LD = D + 1;  // padded row stride
  float* sQ = smem;                // kBQ x LD
  float* sK = sQ + kBQ * LD;       // kBK x LD
  float* sV = sK + kBK * LD;       // kBK x LD
  float* sP = sV + kBK * LD;       // kBQ x (kBK + 1)
  const int tid = threadIdx.x, r = tid >> 2, q4 = tid & 3;
  const int64_t bh = blockIdx.x, b = bh / p.H, h = bh % p.H, hk = h / (p.H / p.Hkv);
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kBQ, i = i0 + r;
  const int64_t qlen = clamp_len(p.q_lengths, b, p.Lq), klen = clamp_len(p.k_lengths, b, p.Lk);
  const T* q = static_cast<const T*>(p.q) + bh * p.Lq * D;
  const T* k = static_cast<const T*>(p.k) + (b * p.Hkv + hk) * p.Lk * D;
  const T* v = static_cast<const T*>(p.v) + (b * p.Hkv + hk) * p.Lk * D;
  for (int idx = tid; idx < kBQ * D; idx += kThreads) {
    const int rr = idx / D, d = idx % D;
    sQ[rr * LD + d] = i0 + rr < p.Lq ? to_f(q[(i0 + rr) * D + d]) : 0.0f;
  }
  const uint64_t row_key = detail::dropout_row_key(p.seed, b, h, i);
  const float keep_scale = p.dropout_threshold ? 1.0f / (1.0f - p.dropout_p) : 1.0f;
  float m = -CUDART_INF_F, l = 0.0f;
  float acc[D / 4];
#pragma unroll
  for (int dd = 0; dd < D / 4; ++dd) acc[dd] = 0.0f;
  const int64_t j_end = i0 < qlen ? key_end(p, klen, i0) : 0;  // padding tiles: zero output, lse -inf
  for (int64_t j0 = 0; j0 < j_end; j0 += kBK) {
    __syncthreads();  // previous tile's readers are done (and sQ is loaded on the first pass)
    for (int idx = tid; idx < kBK * D; idx += kThreads) {
      const int jj = idx / D, d = idx % D;
      const bool in = j0 + jj < p.Lk;
      sK[jj * LD + d] = in ? to_f(k[(j0 + jj) * D + d]) : 0.0f;
      sV[jj * LD + d] = in ? to_f(v[(j0 + jj) * D + d]) : 0.0f;
    }
    __syncthreads();
    float s[kPerThread];
    float tile_max = -CUDART_INF_F;
#pragma unroll
    for (int t = 0; t < kPerThread; ++t) {
      const int jj = q4 + 4 * t;
      const int64_t j = j0 + jj;
      float dot = 0.0f;
#pragma unroll 16
      for (int d = 0; d < D; ++d) dot = fmaf(sQ[r * LD + d], sK[jj * LD + d], dot);
      const bool ok = i < p.Lq && visible(p, qlen, klen, i, j);
      s[t] = ok ? dot * p.scale + bias_at(p, b, h, i, j) : -CUDART_INF_F;
      tile_max = fmaxf(tile_max, s[t]);
    }
    tile_max = quad_max(tile_max);
    const float m_new = fmaxf(m, tile_max);
    const float alpha = m == -CUDART_INF_F ? 0.0f : __expf(m - m_new);
    float tile_sum = 0.0f;
#pragma unroll
    for (int t = 0; t < kPerThread; ++t) {
      const int jj = q4 + 4 * t;
      const float pr = s[t] == -CUDART_INF_F ? 0.0f : __expf(s[t] - m_new);
      tile_sum += pr;
      const bool keep = p.dropout_threshold == 0 || detail::dropout_keep(row_key, j0 + jj, p.dropout_threshold);
      sP[r * (kBK + 1) + jj] = keep ? pr * keep_scale : 0.0f;
    }
    l = l * alpha + quad_sum(tile_sum);
    m = m_new;
    __syncwarp();  // the row's quad (4 lanes of this warp) wrote sP[r][*]
#pragma unroll
    for (int dd = 0; dd < D / 4; ++dd) {
      const int d = q4 + 4 * dd;
      float a = acc[dd] * alpha;
#pragma unroll 8
      for (int jj = 0; jj < kBK; ++jj) a = fmaf(sP[r * (kBK + 1) + jj], sV[jj * LD + d], a);
      acc[dd] = a;
    }
  }
  if (i < p.Lq) {
    T* out = static_cast<T*>(p.out) + (bh * p.Lq + i) * D;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (int dd = 0; dd < D / 4; ++dd) out[q4 + 4 * dd] = from_f<T>(acc[dd] * inv);
    if (q4 == 0) p.lse[bh * p.Lq + i] = l > 0.0f ? m + logf(l) : -CUDART_INF_F;
  }
}

template <typename T, int D>
cudaError_t launch(const AttentionCudaParams& p, cudaStream_t stream) {
  constexpr int LD = D + 1;
  const size_t shmem = sizeof(float) * (kBQ * LD + 2 * kBK * LD + kBQ * (kBK + 1));
  cudaError_t e = cudaFuncSetAttribute(forward_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(shmem));
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(p.B * p.H), static_cast<unsigned>((p.Lq + kBQ - 1) / kBQ));
  forward_kernel<T, D><<<grid, kThreads, shmem, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_d(const AttentionCudaParams& p, cudaStream_t stream) {
  switch (p.D) {
    case 32: return launch<T, 32>(p, stream);
    case 64: return launch<T, 64>(p, stream);
    case 96: return launch<T, 96>(p, stream);
    case 128: return launch<T, 128>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool attention_cuda_supports_head_dim(int64_t D) { return D == 32 || D == 64 || D == 96 || D == 128; }

cudaError_t attention_forward_cuda(const AttentionCudaParams& p, cudaStream_t stream) {
  if (p.B * p.H == 0 || p.Lq == 0) return cudaSuccess;
  if ((p.Lq + kBQ - 1) / kBQ > 65535) return cudaErrorInvalidConfiguration;  // grid y: Lq up to 2M
  return MMREF_DISPATCH_KDTYPE(p.dtype, [&] { return launch_d<scalar_t>(p, stream); });
}

}  // namespace mmref::kernels
