// CUDA fused GroupNorm + SiLU, forward and backward, on x (N, C, S) (S = product of the spatial dims).
//
// Forward, two launches (a group can hold millions of elements while N x G can be as small as 32, so one
// block per group would leave most SMs idle):
//   stats_kernel  grid (N*G, chunks): each block reduces kChunk contiguous elements of its group to a
//                 partial (count, mean, M2) -- Welford per thread, Chan's merge across the block -- into the
//                 workspace;
//   apply_kernel  same grid: thread 0 of each block merges its group's partials (fp32 Chan merges),
//                 block (0, g) stores mean/rstd, then every element gets out = silu(a_c x + b_c), a_c =
//                 rstd gamma_c, b_c = beta_c - mean a_c.
//   Traffic: x read twice (the second read mostly hits L2 for UNet sizes), out written once.
// Backward, three launches:
//   chansum_kernel grid (N*C, chunks of S): recompute z and dz = dout silu'(z); per (n, c) sum(dz) and
//                  sum(dz xhat) (block reductions, one atomicAdd each into channel_sums);
//   dx_kernel      grid (N*G, chunks): A = sum_c gamma_c sum(dz), B = sum_c gamma_c sum(dz xhat) over the
//                  group's channels, then dx = rstd (gamma_c dz - A/M - xhat B/M) with dz recomputed.
//   dgamma = sum_n sum(dz xhat), dbeta = sum_n sum(dz): the binding reduces channel_sums over n.
//
// Ref: kernels/conv/group_norm_silu_cpu.cpp (same formulas); Wu & He 2018; Chan et al. 1979 (merging
// (count, mean, M2) partials).
// Tests: tests/kernels/conv_cuda_test.cpp (suite GpuConv*). Bench: benchmarks/kernels/conv_cuda_bench.cpp.
#include "kernels/common/cuda_util.cuh"
#include "kernels/conv/conv_cuda.h"

namespace mmref::kernels {
namespace {

using namespace cuda;

constexpr int kThreads = 256;
constexpr int64_t kChunk = 8192;  // elements per block

struct Welford {
  float n = 0, mean = 0, m2 = 0;
  __device__ void add(float x) {
    n += 1.0f;
    const float d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  __device__ void merge(const Welford& o) {
    if (o.n == 0) return;
    const float tot = n + o.n, d = o.mean - mean;
    mean += d * (o.n / tot);
    m2 += o.m2 + d * d * (n * o.n / tot);
    n = tot;
  }
};

__device__ Welford warp_merge(Welford w) {
  for (int o = 16; o > 0; o >>= 1) {
    Welford other;
    other.n = __shfl_xor_sync(0xffffffffu, w.n, o);
    other.mean = __shfl_xor_sync(0xffffffffu, w.mean, o);
    other.m2 = __shfl_xor_sync(0xffffffffu, w.m2, o);
    w.merge(other);
  }
  return w;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) stats_kernel(const T* __restrict__ x, float* __restrict__ ws, int64_t M,
                                                         int64_t chunks) {
  __shared__ float sh[3][32];
  const int64_t ng = blockIdx.x, chunk = blockIdx.y;
  const T* xg = x + ng * M;
  const int64_t begin = chunk * kChunk, end = min(M, begin + kChunk);
  Welford w;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) w.add(to_f(xg[i]));
  w = warp_merge(w);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) sh[0][warp] = w.n, sh[1][warp] = w.mean, sh[2][warp] = w.m2;
  __syncthreads();
  if (warp == 0) {
    Welford v;
    if (lane < static_cast<int>(blockDim.x >> 5)) v.n = sh[0][lane], v.mean = sh[1][lane], v.m2 = sh[2][lane];
    v = warp_merge(v);
    if (lane == 0) {
      float* o = ws + (ng * chunks + chunk) * 3;
      o[0] = v.n, o[1] = v.mean, o[2] = v.m2;
    }
  }
}

// mean and rstd of group ng from its partials: thread 0 merges them once per block (shared memory).
__device__ void group_stats(const float* ws, int64_t ng, int64_t chunks, float eps, float& mean, float& rstd) {
  __shared__ float stat[2];
  if (threadIdx.x == 0) {
    Welford w;
    for (int64_t c = 0; c < chunks; ++c) {
      const float* p = ws + (ng * chunks + c) * 3;
      Welford o;
      o.n = p[0], o.mean = p[1], o.m2 = p[2];
      w.merge(o);
    }
    stat[0] = w.mean;
    stat[1] = rsqrtf(w.m2 / fmaxf(w.n, 1.0f) + eps);
  }
  __syncthreads();
  mean = stat[0];
  rstd = stat[1];
}

template <typename T>
__global__ void __launch_bounds__(kThreads) apply_kernel(const T* __restrict__ x, const float* __restrict__ gamma,
                                                         const float* __restrict__ beta, T* __restrict__ out,
                                                         float* __restrict__ mean_out, float* __restrict__ rstd_out,
                                                         const float* __restrict__ ws, int64_t C, int64_t S,
                                                         int64_t G, int64_t chunks, float eps, bool silu) {
  const int64_t ng = blockIdx.x, chunk = blockIdx.y, g = ng % G, Cg = C / G, M = Cg * S;
  float mean, rstd;
  group_stats(ws, ng, chunks, eps, mean, rstd);
  if (chunk == 0 && threadIdx.x == 0) mean_out[ng] = mean, rstd_out[ng] = rstd;
  const int64_t begin = chunk * kChunk, end = min(M, begin + kChunk);
  const T* xg = x + ng * M;
  T* og = out + ng * M;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t c = g * Cg + i / S;
    const float a = rstd * (gamma ? gamma[c] : 1.0f);
    const float b = (beta ? beta[c] : 0.0f) - mean * a;
    const float z = fmaf(a, to_f(xg[i]), b);
    og[i] = from_f<T>(silu ? z * sigmoid_f(z) : z);
  }
}

__device__ __forceinline__ float silu_grad(float z, bool silu) {
  if (!silu) return 1.0f;
  const float s = sigmoid_f(z);
  return s * (1.0f + z * (1.0f - s));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) chansum_kernel(const T* __restrict__ dout, const T* __restrict__ x,
                                                           const float* __restrict__ mean, const float* __restrict__ rstd,
                                                           const float* __restrict__ gamma, const float* __restrict__ beta,
                                                           float* __restrict__ sums, int64_t C, int64_t S, int64_t G,
                                                           bool silu) {
  __shared__ float scratch[32];
  const int64_t nc = blockIdx.x, n = nc / C, c = nc % C, ng = n * G + c / (C / G);
  const float mu = mean[ng], rs = rstd[ng];
  const float a = rs * (gamma ? gamma[c] : 1.0f);
  const float b = (beta ? beta[c] : 0.0f) - mu * a;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * kChunk, end = min(S, begin + kChunk);
  float sdz = 0.0f, sdzx = 0.0f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float xv = to_f(x[nc * S + i]);
    const float dz = to_f(dout[nc * S + i]) * silu_grad(fmaf(a, xv, b), silu);
    sdz += dz;
    sdzx = fmaf(dz, (xv - mu) * rs, sdzx);
  }
  sdz = block_sum(sdz, scratch);
  sdzx = block_sum(sdzx, scratch);
  if (threadIdx.x == 0) {
    atomicAdd(sums + nc * 2, sdz);
    atomicAdd(sums + nc * 2 + 1, sdzx);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) dx_kernel(const T* __restrict__ dout, const T* __restrict__ x,
                                                      const float* __restrict__ mean, const float* __restrict__ rstd,
                                                      const float* __restrict__ gamma, const float* __restrict__ beta,
                                                      const float* __restrict__ sums, T* __restrict__ dx, int64_t C,
                                                      int64_t S, int64_t G, bool silu) {
  __shared__ float scratch[32];
  const int64_t ng = blockIdx.x, n = ng / G, g = ng % G, Cg = C / G, M = Cg * S;
  float A = 0.0f, B = 0.0f;
  for (int64_t cl = threadIdx.x; cl < Cg; cl += blockDim.x) {
    const int64_t c = g * Cg + cl;
    const float gc = gamma ? gamma[c] : 1.0f;
    A = fmaf(gc, sums[(n * C + c) * 2], A);
    B = fmaf(gc, sums[(n * C + c) * 2 + 1], B);
  }
  A = block_sum(A, scratch);
  B = block_sum(B, scratch);
  const float mu = mean[ng], rs = rstd[ng], inv_m = 1.0f / static_cast<float>(M);
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * kChunk, end = min(M, begin + kChunk);
  const T* xg = x + ng * M;
  const T* dg = dout + ng * M;
  T* og = dx + ng * M;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int64_t c = g * Cg + i / S;
    const float gc = gamma ? gamma[c] : 1.0f;
    const float a = rs * gc, b = (beta ? beta[c] : 0.0f) - mu * a;
    const float xv = to_f(xg[i]);
    const float dz = to_f(dg[i]) * silu_grad(fmaf(a, xv, b), silu);
    const float xhat = (xv - mu) * rs;
    og[i] = from_f<T>(rs * (gc * dz - A * inv_m - xhat * B * inv_m));
  }
}

int64_t chunks_of(int64_t n) { return n > 0 ? (n + kChunk - 1) / kChunk : 1; }

}  // namespace

int64_t group_norm_silu_workspace_floats(int64_t N, int64_t C, int64_t S, int64_t G) {
  return N * G * chunks_of(C / G * S) * 3;
}

cudaError_t group_norm_silu_forward_cuda(const GroupNormSiluParams& p, cudaStream_t stream) {
  if (p.N == 0 || p.C == 0) return cudaSuccess;
  const int64_t M = p.C / p.G * p.S, chunks = chunks_of(M);
  if (chunks > 65535) return cudaErrorInvalidConfiguration;  // grid y: 65535 x 8192 elements per group
  const dim3 grid(static_cast<unsigned>(p.N * p.G), static_cast<unsigned>(chunks));
  return MMREF_DISPATCH_KDTYPE(p.dtype, [&] {
    stats_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(static_cast<const scalar_t*>(p.x), p.workspace, M, chunks);
    apply_kernel<scalar_t><<<grid, kThreads, 0, stream>>>(
        static_cast<const scalar_t*>(p.x), p.gamma, p.beta, static_cast<scalar_t*>(p.out), p.mean, p.rstd, p.workspace, p.C, p.S, p.G, chunks, p.eps, p.silu);
    return cudaGetLastError();
  });
}

cudaError_t group_norm_silu_backward_cuda(const GroupNormSiluBackwardParams& p, cudaStream_t stream) {
  if (p.N == 0 || p.C == 0) return cudaSuccess;
  const int64_t M = p.C / p.G * p.S;
  if (chunks_of(M) > 65535) return cudaErrorInvalidConfiguration;
  return MMREF_DISPATCH_KDTYPE(p.dtype, [&] {
    const auto* dout = static_cast<const scalar_t*>(p.dout);
    const auto* x = static_cast<const scalar_t*>(p.x);
    const float* gamma = p.gamma;
    const float* beta = p.beta;
    chansum_kernel<scalar_t><<<dim3(static_cast<unsigned>(p.N * p.C), static_cast<unsigned>(chunks_of(p.S))),
                               kThreads, 0, stream>>>(dout, x, p.mean, p.rstd, gamma, beta, p.channel_sums, p.C, p.S,
                                                      p.G, p.silu);
    dx_kernel<scalar_t><<<dim3(static_cast<unsigned>(p.N * p.G), static_cast<unsigned>(chunks_of(M))), kThreads, 0,
                          stream>>>(dout, x, p.mean, p.rstd, gamma, beta, p.channel_sums, static_cast<scalar_t*>(p.dx),
                                    p.C, p.S, p.G, p.silu);
    return cudaGetLastError();
  });
}

}  // namespace mmref::kernels
