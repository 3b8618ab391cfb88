// CUDA attention backward (FlashAttention-2 Algorithm 2), fp32 math on CUDA cores.
//
// delta_kernel: delta_i = rowsum(dO_i * O_i), one warp per row.
// backward_kernel: one block per (batch x kv head, key tile of kBK = 32 keys); 128 threads, 4 per key row.
// K_j and V_j stay in shared memory; the block loops over the query heads of its GQA group and the query
// tiles that can see the key tile (causal: from the first row whose limit reaches j0), staging Q_i, dO_i,
// lse_i and delta_i. Per (key, query) pair it recomputes P = exp(s - lse) (0 where masked), dP = dO_i . V_j,
// applies the dropout mask of the forward, and forms dS = P (dP' - delta); then
//   dV_j += P'^T dO_i, dK_j += scale dS^T Q_i   (registers: each thread owns D/4 columns of its key row)
//   dQ_i += scale dS K_j                        (fp32 atomics into dq_acc, since key tiles run in parallel)
//   dbias += dS                                 (fp32 atomics at the bias' broadcast strides, if asked)
// dK and dV are written once per block, so they are deterministic; dQ and dbias are sums of atomics.
//
// Ref: Dao, FlashAttention-2 (2023), Algorithm 2; kernels/attention/attention_cpu.cpp (same formulas).
// Tests: tests/kernels/attention_cuda_test.cpp (suite GpuAttention*).
#include <cmath>

#include "kernels/attention/attention_cuda_common.cuh"

namespace mmref::kernels {
namespace {

using namespace attn;
using cuda::from_f;
using cuda::to_f;

template <typename T>
__global__ void delta_kernel(const T* __restrict__ dout, const T* __restrict__ out, float* __restrict__ delta,
                             int64_t rows, int64_t D) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x / 32);
  if (row >= rows) return;
  const int lane = threadIdx.x & 31;
  float s = 0.0f;
  for (int64_t d = lane; d < D; d += 32) s = fmaf(to_f(dout[row * D + d]), to_f(out[row * D + d]), s);
  s = cuda::warp_sum(s);
  if (lane == 0) delta[row] = s;
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads) backward_kernel(const AttentionCudaBackwardParams bp) {
  const AttentionCudaParams& p = bp.fwd;
  extern __shared__ float smem[];
  constexpr int LD = D + 1, LS = kBQ + 1;
  float* sK = smem;              // kBK x LD
  float* sV = sK + kBK * LD;     // kBK x LD
  float* sQ = sV + kBK * LD;     // kBQ x LD
  float* sdO = sQ + kBQ * LD;    // kBQ x LD
  float* sPd = sdO + kBQ * LD;   // kBK x LS: dropped-out probabilities P'
  float* sdS = sPd + kBK * LS;   // kBK x LS
  float* slse = sdS + kBK * LS;  // kBQ
  float* sdelta = slse + kBQ;    // kBQ
  // kBQ dropout row keys, rounded up to 8-byte alignment (the launcher reserves the slack)
  uint64_t* srowkey = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(sdelta + kBQ) + 7) & ~uintptr_t(7));
  const int tid = threadIdx.x, jr = tid >> 2, q4 = tid & 3;
  const int64_t bhk = blockIdx.x, b = bhk / p.Hkv, hk = bhk % p.Hkv, group = p.H / p.Hkv;
  const int64_t j0 = static_cast<int64_t>(blockIdx.y) * kBK, j = j0 + jr;
  const int64_t qlen = clamp_len(p.q_lengths, b, p.Lq), klen = clamp_len(p.k_lengths, b, p.Lk);
  const T* kp = static_cast<const T*>(p.k) + bhk * p.Lk * D;
  const T* vp = static_cast<const T*>(p.v) + bhk * p.Lk * D;
  for (int idx = tid; idx < kBK * D; idx += kThreads) {
    const int jj = idx / D, d = idx % D;
    const bool in = j0 + jj < p.Lk;
    sK[jj * LD + d] = in ? to_f(kp[(j0 + jj) * D + d]) : 0.0f;
    sV[jj * LD + d] = in ? to_f(vp[(j0 + jj) * D + d]) : 0.0f;
  }
  float dk[D / 4], dv[D / 4];
#pragma unroll
  for (int dd = 0; dd < D / 4; ++dd) dk[dd] = dv[dd] = 0.0f;
  const float keep_scale = p.dropout_threshold ? 1.0f / (1.0f - p.dropout_p) : 1.0f;
  // Query rows that can see some key of the tile: i >= j0 - (Lk - Lq) when causal; none if j0 >= klen.
  int64_t i_begin = 0;
  if (p.causal) i_begin = j0 - (p.Lk - p.Lq) > 0 ? j0 - (p.Lk - p.Lq) : 0;
  const int64_t i_end = j0 < klen ? qlen : 0;
  for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
    const int64_t bh = b * p.H + h;
    const T* qp = static_cast<const T*>(p.q) + bh * p.Lq * D;
    const T* dop = static_cast<const T*>(bp.dout) + bh * p.Lq * D;
    for (int64_t i0 = i_begin; i0 < i_end; i0 += kBQ) {
      __syncthreads();  // previous tile's readers are done (and K/V are staged on the first pass)
      for (int idx = tid; idx < kBQ * D; idx += kThreads) {
        const int ii = idx / D, d = idx % D;
        const bool in = i0 + ii < p.Lq;
        sQ[ii * LD + d] = in ? to_f(qp[(i0 + ii) * D + d]) : 0.0f;
        sdO[ii * LD + d] = in ? to_f(dop[(i0 + ii) * D + d]) : 0.0f;
      }
      for (int ii = tid; ii < kBQ; ii += kThreads) {
        const bool in = i0 + ii < p.Lq;
        slse[ii] = in ? p.lse[bh * p.Lq + i0 + ii] : -CUDART_INF_F;
        sdelta[ii] = in ? bp.delta[bh * p.Lq + i0 + ii] : 0.0f;
        if (p.dropout_threshold) srowkey[ii] = detail::dropout_row_key(p.seed, b, h, i0 + ii);
      }
      __syncthreads();
#pragma unroll
      for (int t = 0; t < kPerThread; ++t) {
        const int ii = q4 + 4 * t;
        const int64_t i = i0 + ii;
        float s = 0.0f, dp = 0.0f;
#pragma unroll 16
        for (int d = 0; d < D; ++d) {
          s = fmaf(sQ[ii * LD + d], sK[jr * LD + d], s);
          dp = fmaf(sdO[ii * LD + d], sV[jr * LD + d], dp);
        }
        const bool ok = j < p.Lk && i < p.Lq && visible(p, qlen, klen, i, j) && slse[ii] != -CUDART_INF_F;
        const float pr = ok ? __expf(s * p.scale + bias_at(p, b, h, i, j) - slse[ii]) : 0.0f;
        const bool keep = p.dropout_threshold == 0 || detail::dropout_keep(srowkey[ii], j, p.dropout_threshold);
        const float dp_eff = keep ? dp * keep_scale : 0.0f;
        const float ds = pr * (dp_eff - sdelta[ii]);
        sPd[jr * LS + ii] = keep ? pr * keep_scale : 0.0f;
        sdS[jr * LS + ii] = ds;
        if (bp.dbias != nullptr && ok) {
          atomicAdd(bp.dbias + b * bp.dbias_stride[0] + h * bp.dbias_stride[1] + i * bp.dbias_stride[2] +
                        j * bp.dbias_stride[3],
                    ds);
        }
      }
      __syncthreads();
#pragma unroll
      for (int dd = 0; dd < D / 4; ++dd) {
        const int d = q4 + 4 * dd;
        float a = dv[dd], c = dk[dd];
#pragma unroll 8
        for (int ii = 0; ii < kBQ; ++ii) {
          a = fmaf(sPd[jr * LS + ii], sdO[ii * LD + d], a);
          c = fmaf(sdS[jr * LS + ii], sQ[ii * LD + d], c);
        }
        dv[dd] = a, dk[dd] = c;
      }
      // dQ rows: thread (row ii = tid >> 2, quad q4) sums over the tile's keys.
      const int ii = tid >> 2;
      if (i0 + ii < p.Lq) {
        float* dq = bp.dq_acc + (bh * p.Lq + i0 + ii) * D;
#pragma unroll
        for (int dd = 0; dd < D / 4; ++dd) {
          const int d = q4 + 4 * dd;
          float a = 0.0f;
#pragma unroll 8
          for (int jj = 0; jj < kBK; ++jj) a = fmaf(sdS[jj * LS + ii], sK[jj * LD + d], a);
          if (a != 0.0f) atomicAdd(dq + d, a * p.scale);
        }
      }
    }
  }
  if (j < p.Lk) {
    T* dkp = static_cast<T*>(bp.dk) + (bhk * p.Lk + j) * D;
    T* dvp = static_cast<T*>(bp.dv) + (bhk * p.Lk + j) * D;
#pragma unroll
    for (int dd = 0; dd < D / 4; ++dd) {
      dkp[q4 + 4 * dd] = from_f<T>(dk[dd] * p.scale);
      dvp[q4 + 4 * dd] = from_f<T>(dv[dd]);
    }
  }
}

template <typename T, int D>
cudaError_t launch(const AttentionCudaBackwardParams& bp, cudaStream_t stream) {
  const AttentionCudaParams& p = bp.fwd;
  constexpr int LD = D + 1, LS = kBQ + 1;
  // layout of backward_kernel: K, V, Q, dO tiles, P', dS, lse, delta, one pad float, kBQ uint64 row keys
  const size_t shmem = sizeof(float) * (2 * kBK * LD + 2 * kBQ * LD + 2 * kBK * LS + 2 * kBQ + 1) +
                       sizeof(uint64_t) * (kBQ + 1);
  cudaError_t e = cudaFuncSetAttribute(backward_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(shmem));
  if (e != cudaSuccess) return e;
  const int64_t rows = p.B * p.H * p.Lq;
  delta_kernel<T><<<static_cast<unsigned>((rows + 7) / 8), 256, 0, stream>>>(
      static_cast<const T*>(bp.dout), static_cast<const T*>(p.out), bp.delta, rows, D);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(p.B * p.Hkv), static_cast<unsigned>((p.Lk + kBK - 1) / kBK));
  backward_kernel<T, D><<<grid, kThreads, shmem, stream>>>(bp);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_d(const AttentionCudaBackwardParams& bp, cudaStream_t stream) {
  switch (bp.fwd.D) {
    case 32: return launch<T, 32>(bp, stream);
    case 64: return launch<T, 64>(bp, stream);
    case 96: return launch<T, 96>(bp, stream);
    case 128: return launch<T, 128>(bp, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t attention_backward_cuda(const AttentionCudaBackwardParams& bp, cudaStream_t stream) {
  const AttentionCudaParams& p = bp.fwd;
  if (p.B * p.H == 0 || p.Lq == 0 || p.Lk == 0) return cudaSuccess;
  if ((p.Lk + kBK - 1) / kBK > 65535) return cudaErrorInvalidConfiguration;  // grid y: Lk up to 2M
  return MMREF_DISPATCH_KDTYPE(p.dtype, [&] { return launch_d<scalar_t>(bp, stream); });
}

}  // namespace mmref::kernels
