// Fallback for builds where nvcc was not found: the CUDA kernel library is absent, so the queries say so.
#include "kernels/common/cuda_device.h"

#include <stdexcept>

#ifndef MMREF_HAS_CUDA_KERNELS
namespace mmref::kernels {

CudaRuntimeInfo query_cuda_runtime() {
  CudaRuntimeInfo info;
  info.status = "mmref was built without nvcc: CUDA kernels not compiled";
  return info;
}

std::string launch_copy_f32(const float*, float*, size_t, void*) {
  return "mmref was built without nvcc";
}

double measure_copy_bandwidth_gbs(int, size_t, int) {
  throw std::runtime_error("mmref was built without nvcc: no CUDA copy kernel");
}

std::vector<float> device_copy_roundtrip(const std::vector<float>&, int) {
  throw std::runtime_error("mmref was built without nvcc: no CUDA copy kernel");
}

}  // namespace mmref::kernels
#endif
