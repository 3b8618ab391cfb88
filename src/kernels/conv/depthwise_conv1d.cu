// CUDA depthwise conv1d (Conformer conv module), forward and backward, on (B, C, T) rows.
//
// tap_kernel (forward, and dx with the kernel flipped): one block per (row, tile of kTile outputs). The
// block stages the input segment the tile needs (kTile + dilation (K - 1) samples, zero outside [0, T))
// and the row's K weights in shared memory as fp32, then each thread computes one output with K
// shared-memory FMAs. Global traffic: the input once (plus the halo, (K-1) dil / kTile extra), the output
// once -- the op is memory-bound at Conformer sizes, so this is the bound to reach.
// wgrad_kernel (dw, db): one block per (row, tile); the block stages the dout tile and the x segment; warp
// w computes the tile's partial dot products for taps k = w, w + 8, ... (lanes stride the tile, then a
// shuffle reduction) and adds them to the fp32 accumulators with one atomicAdd per (block, tap).
// Rows beyond gridDim.y (65535) are covered by a grid-stride loop.
//
// Ref: kernels/conv/depthwise_conv1d_cpu.cpp (same tap formulation); wenet ConvolutionModule.
// Tests: tests/kernels/conv_cuda_test.cpp (suite GpuConv*). Bench: benchmarks/kernels/conv_cuda_bench.cpp.
#include "kernels/common/cuda_util.cuh"
#include "kernels/conv/conv_cuda.h"

namespace mmref::kernels {
namespace {

using namespace cuda;

constexpr int kTile = 256;   // outputs per block = threads per block
constexpr int kWarps = kTile / 32;

// out[row, t] = bias + sum_k w[k] * in[row, t + sign * k * dil + base]   (0 outside [0, n_in))
template <typename T>
__global__ void __launch_bounds__(kTile) tap_kernel(const T* __restrict__ in, int64_t n_in, T* __restrict__ out,
                                                    int64_t n_out, const float* __restrict__ w, int K, int dil,
                                                    int sign, int64_t base, const float* __restrict__ bias, int64_t C,
                                                    int64_t rows) {
  extern __shared__ float smem[];
  float* wk = smem;          // K
  float* seg = smem + K;     // kTile + dil * (K - 1)
  const int64_t seg_len = kTile + static_cast<int64_t>(dil) * (K - 1);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTile;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const int64_t c = row % C;
    const int64_t seg_start = sign > 0 ? t0 + base : t0 - static_cast<int64_t>(dil) * (K - 1) + base;
    const T* in_row = in + row * n_in;
    __syncthreads();  // the previous row's readers are done
    for (int k = threadIdx.x; k < K; k += blockDim.x) wk[k] = w[c * K + k];
    for (int64_t i = threadIdx.x; i < seg_len; i += blockDim.x) {
      const int64_t src = seg_start + i;
      seg[i] = (src >= 0 && src < n_in) ? to_f(in_row[src]) : 0.0f;
    }
    __syncthreads();
    const int64_t t = t0 + threadIdx.x;
    if (t < n_out) {
      float acc = bias ? bias[c] : 0.0f;
      if (sign > 0) {
        for (int k = 0; k < K; ++k) acc = fmaf(wk[k], seg[threadIdx.x + k * dil], acc);
      } else {
        for (int k = 0; k < K; ++k) acc = fmaf(wk[k], seg[threadIdx.x + (K - 1 - k) * dil], acc);
      }
      out[row * n_out + t] = from_f<T>(acc);
    }
  }
}

// dw[c, k] += sum_t dout[row, t] * x[row, t + k * dil - pad_left];  db[c] += sum_t dout[row, t]
template <typename T>
__global__ void __launch_bounds__(kTile) wgrad_kernel(const T* __restrict__ dout, const T* __restrict__ x,
                                                      float* __restrict__ dw, float* __restrict__ db, int64_t T_in,
                                                      int64_t T_out, int K, int dil, int64_t pad_left, int64_t C,
                                                      int64_t rows) {
  extern __shared__ float smem[];
  float* g = smem;          // kTile
  float* seg = smem + kTile;  // kTile + dil * (K - 1)
  const int64_t seg_len = kTile + static_cast<int64_t>(dil) * (K - 1);
  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const int n = static_cast<int>(T_out - t0 < kTile ? T_out - t0 : kTile);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
    const int64_t c = row % C;
    __syncthreads();
    const int64_t tt = t0 + threadIdx.x;
    g[threadIdx.x] = tt < T_out ? to_f(dout[row * T_out + tt]) : 0.0f;
    for (int64_t i = threadIdx.x; i < seg_len; i += blockDim.x) {
      const int64_t src = t0 - pad_left + i;
      seg[i] = (src >= 0 && src < T_in) ? to_f(x[row * T_in + src]) : 0.0f;
    }
    __syncthreads();
    for (int k = warp; k < K; k += kWarps) {
      float s = 0.0f;
      for (int i = lane; i < n; i += 32) s = fmaf(g[i], seg[i + k * dil], s);
      s = warp_sum(s);
      if (lane == 0) atomicAdd(dw + c * K + k, s);
    }
    if (db != nullptr && warp == kWarps - 1) {
      float s = 0.0f;
      for (int i = lane; i < n; i += 32) s += g[i];
      s = warp_sum(s);
      if (lane == 0) atomicAdd(db + c, s);
    }
  }
}

dim3 grid_for(int64_t n_out, int64_t rows) {
  const int64_t tiles = (n_out + kTile - 1) / kTile;
  return dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(rows < 65535 ? rows : 65535));
}

// Dynamic shared memory of each kernel (floats): tap_kernel K weights + the input segment; wgrad_kernel
// the dout tile + the x segment.
size_t tap_shmem(int64_t K, int64_t dil) { return sizeof(float) * (K + kTile + dil * (K - 1)); }
size_t wgrad_shmem(int64_t K, int64_t dil) { return sizeof(float) * (2 * kTile + dil * (K - 1)); }

cudaError_t allow_shmem(const void* kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

}  // namespace

cudaError_t depthwise_conv1d_forward_cuda(const DepthwiseConv1dParams& p, cudaStream_t stream) {
  const int64_t rows = p.B * p.C;
  if (rows == 0 || p.T_out == 0) return cudaSuccess;
  const size_t shmem = tap_shmem(p.K, p.dilation);
  return MMREF_DISPATCH_KDTYPE(p.dtype, [&] {
    cudaError_t e = allow_shmem(reinterpret_cast<const void*>(tap_kernel<scalar_t>), shmem);
    if (e != cudaSuccess) return e;
    tap_kernel<scalar_t><<<grid_for(p.T_out, rows), kTile, shmem, stream>>>(
        static_cast<const scalar_t*>(p.x), p.T, static_cast<scalar_t*>(p.out), p.T_out, p.w,
        static_cast<int>(p.K), static_cast<int>(p.dilation), +1, -p.pad_left, p.bias, p.C, rows);
    return cudaGetLastError();
  });
}

cudaError_t depthwise_conv1d_backward_cuda(const DepthwiseConv1dBackwardParams& p, cudaStream_t stream) {
  const int64_t rows = p.B * p.C;
  if (rows == 0) return cudaSuccess;
  const size_t shm_tap = tap_shmem(p.K, p.dilation), shm_wg = wgrad_shmem(p.K, p.dilation);
  return MMREF_DISPATCH_KDTYPE(p.dtype, [&] {
    cudaError_t e = allow_shmem(reinterpret_cast<const void*>(tap_kernel<scalar_t>), shm_tap);
    if (e == cudaSuccess) e = allow_shmem(reinterpret_cast<const void*>(wgrad_kernel<scalar_t>), shm_wg);
    if (e != cudaSuccess) return e;
    // dx[s] = sum_k w[k] dout[s - k dil + pad_left]: the tap kernel over dout with sign -1.
    if (p.T > 0) {
      tap_kernel<scalar_t><<<grid_for(p.T, rows), kTile, shm_tap, stream>>>(
          static_cast<const scalar_t*>(p.dout), p.T_out, static_cast<scalar_t*>(p.dx), p.T, p.w,
          static_cast<int>(p.K), static_cast<int>(p.dilation), -1, p.pad_left, nullptr, p.C, rows);
      e = cudaGetLastError();
      if (e != cudaSuccess) return e;
    }
    if (p.T_out > 0) {
      wgrad_kernel<scalar_t><<<grid_for(p.T_out, rows), kTile, shm_wg, stream>>>(
          static_cast<const scalar_t*>(p.dout), static_cast<const scalar_t*>(p.x), p.dw_acc, p.db_acc, p.T, p.T_out,
          static_cast<int>(p.K), static_cast<int>(p.dilation), p.pad_left, p.C, rows);
    }
    return cudaGetLastError();
  });
}

}  // namespace mmref::kernels
