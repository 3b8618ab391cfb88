// The one place that absorbs differences between Debian's libtorch 1.13 (CPU) and the CUDA libtorch
// 2.x that GPU machines carry (pip PyTorch 2.11). Code elsewhere calls these helpers instead of
// checking TORCH_VERSION_* itself.
#pragma once
#include <string>

#include <c10/core/ScalarType.h>
#include <torch/version.h>

#define MMREF_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||        \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace mmref::compat {

// "1.13.1", "2.11.0", ... as the headers we compiled against say.
inline std::string torch_version() { return TORCH_VERSION; }

// True when this libtorch was built with CUDA support (not whether a GPU is present).
bool torch_built_with_cuda();
// Number of visible CUDA devices through libtorch (0 on a CPU-only libtorch).
int torch_cuda_device_count();
// cuDNN availability as libtorch reports it.
bool torch_cudnn_available();

// Intra-op threads: sets them when n > 0 (0 keeps libtorch's default) and returns the count in effect.
int set_intra_op_threads(int n);
int intra_op_threads();
int interop_threads();

// CUDA autocast (mixed precision) for the guard's scope: ops that autocast lists run in `dtype` (bf16
// or fp16). A no-op when !enabled. The API moved in libtorch 2.4 (device-type arguments).
class CudaAutocast {
 public:
  CudaAutocast(bool enabled, c10::ScalarType dtype);
  ~CudaAutocast();
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_, prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Half;
};

}  // namespace mmref::compat
