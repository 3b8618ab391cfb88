// Torch-free CUDA device queries and a copy-bandwidth kernel (the device memory ceiling that kernel
// benchmarks quote their GB/s against). Built by nvcc wherever nvcc exists; without nvcc the functions
// report that CUDA support was not compiled in (cuda_device_none.cpp).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace mmref::kernels {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory_bytes = 0;
  int sm_count = 0;
  int cc_major = 0;
  int cc_minor = 0;
};

struct CudaRuntimeInfo {
  bool compiled = false;   // the kernel library was compiled with nvcc
  int runtime_version = 0; // e.g. 13000
  int driver_version = 0;  // 0 when no driver is loaded
  std::string status;      // "ok", or why no device is usable ("no CUDA driver", ...)
  std::vector<CudaDeviceInfo> devices;
};

// Never throws: on a machine without a GPU or driver it returns an empty device list and a reason.
CudaRuntimeInfo query_cuda_runtime();

// Copies n floats src -> dst on the device (vectorised grid-stride kernel) on the given stream
// (a cudaStream_t passed as void* so this header stays CUDA-free). Returns a CUDA error string or "".
std::string launch_copy_f32(const float* src, float* dst, size_t n, void* stream);

// Allocates 2 x bytes on device `index`, runs the copy kernel `iters` times and returns the measured
// read+write bandwidth in GB/s (CUDA events). Throws std::runtime_error on any CUDA error.
double measure_copy_bandwidth_gbs(int index, size_t bytes, int iters);

// Round trip used by the gpu test: uploads host data, copies on device, downloads. Throws on error.
std::vector<float> device_copy_roundtrip(const std::vector<float>& host, int index);

}  // namespace mmref::kernels
