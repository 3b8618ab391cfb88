// CUDA device queries and the copy-bandwidth kernel; see cuda_device.h. Plain CUDA C++, no libtorch.
#include "kernels/common/cuda_device.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace mmref::kernels {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
  }
}

// float4 grid-stride copy; the tail (n % 4) is handled by the first threads.
__global__ void copy_f32_kernel(const float* __restrict__ src, float* __restrict__ dst, size_t n) {
  const size_t n4 = n / 4;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t tid = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool aligned = (reinterpret_cast<uintptr_t>(src) % 16 == 0) &&
                       (reinterpret_cast<uintptr_t>(dst) % 16 == 0);
  if (aligned) {
    const float4* s4 = reinterpret_cast<const float4*>(src);
    float4* d4 = reinterpret_cast<float4*>(dst);
    for (size_t i = tid; i < n4; i += stride) d4[i] = s4[i];
    for (size_t i = n4 * 4 + tid; i < n; i += stride) dst[i] = src[i];
  } else {
    for (size_t i = tid; i < n; i += stride) dst[i] = src[i];
  }
}

}  // namespace

CudaRuntimeInfo query_cuda_runtime() {
  CudaRuntimeInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess || info.driver_version == 0) {
    info.status = "no CUDA driver on this machine";
    return info;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    info.status = cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky error for later callers
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    CudaDeviceInfo d;
    d.index = i;
    d.name = p.name;
    d.total_memory_bytes = p.totalGlobalMem;
    d.sm_count = p.multiProcessorCount;
    d.cc_major = p.major;
    d.cc_minor = p.minor;
    info.devices.push_back(d);
  }
  info.status = count > 0 ? "ok" : "no CUDA device";
  return info;
}

std::string launch_copy_f32(const float* src, float* dst, size_t n, void* stream) {
  if (n == 0) return "";
  const int threads = 256;
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  size_t blocks = (n / 4 + threads - 1) / threads;
  const size_t max_blocks = static_cast<size_t>(sms > 0 ? sms : 1) * 8;  // enough to fill the chip
  if (blocks > max_blocks) blocks = max_blocks;
  if (blocks == 0) blocks = 1;
  copy_f32_kernel<<<static_cast<unsigned>(blocks), threads, 0, static_cast<cudaStream_t>(stream)>>>(
      src, dst, n);
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

double measure_copy_bandwidth_gbs(int index, size_t bytes, int iters) {
  check(cudaSetDevice(index), "cudaSetDevice");
  const size_t n = bytes / sizeof(float);
  float *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, n * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&b, n * sizeof(float)), "cudaMalloc");
  check(cudaMemset(a, 1, n * sizeof(float)), "cudaMemset");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::string err = launch_copy_f32(a, b, n, nullptr);  // warm-up
  check(cudaEventRecord(start), "cudaEventRecord");
  for (int i = 0; i < iters && err.empty(); ++i) err = launch_copy_f32(a, b, n, nullptr);
  check(cudaEventRecord(stop), "cudaEventRecord");
  check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0.f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  if (!err.empty()) throw std::runtime_error("copy kernel: " + err);
  const double moved = 2.0 * static_cast<double>(n * sizeof(float)) * iters;  // read + write
  return moved / (static_cast<double>(ms) * 1e-3) / 1e9;
}

std::vector<float> device_copy_roundtrip(const std::vector<float>& host, int index) {
  check(cudaSetDevice(index), "cudaSetDevice");
  const size_t n = host.size();
  float *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, (n + 1) * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&b, (n + 1) * sizeof(float)), "cudaMalloc");
  check(cudaMemcpy(a, host.data(), n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
  check(cudaMemset(b, 0xFF, (n + 1) * sizeof(float)), "cudaMemset");  // poison: NaN pattern
  std::string err = launch_copy_f32(a, b, n, nullptr);
  if (!err.empty()) throw std::runtime_error("copy kernel: " + err);
  std::vector<float> out(n);
  check(cudaMemcpy(out.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
  cudaFree(a);
  cudaFree(b);
  return out;
}

}  // namespace mmref::kernels
