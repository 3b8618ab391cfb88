// The one place that absorbs differences between Debian's libtorch 1.13 (CPU) and the CUDA libtorch
// 2.x that GPU machines carry (pip PyTorch 2.11). Code elsewhere calls these helpers instead of
// checking TORCH_VERSION_* itself.
#pragma once
#include <cstdint>
#include <exception>
#include <memory>
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

// ---- CUDA figures for `mmref bench` (src/bench). The CUDA branches are compiled only against a CUDA
// libtorch (MMREF_TORCH_HAS_CUDA, set for compat.cpp by src/core/CMakeLists.txt); on a CPU-only libtorch
// the memory calls are no-ops returning 0 and CudaEventTimer throws mmref::Error.

// Peaks of the CUDA caching allocator on device `index` since the last reset (torch.cuda.
// max_memory_allocated / max_memory_reserved).
struct CudaMemoryPeaks {
  int64_t allocated_bytes = 0;
  int64_t reserved_bytes = 0;
};
void cuda_reset_peak_memory(int index);
CudaMemoryPeaks cuda_peak_memory(int index);
// Returns cached blocks to the driver (after an out-of-memory point, so the next point starts clean).
void cuda_empty_cache();
// Waits for all work on device `index` (torch.cuda.synchronize).
void cuda_synchronize(int index);
// cuDNN version as libtorch reports it (e.g. 90100), 0 when there is no cuDNN / CUDA.
int64_t cudnn_version();
// The CUDA runtime version libtorch was built with (e.g. 12080), 0 on a CPU-only libtorch.
int64_t torch_cuda_runtime_version();

// Times GPU work on the current stream of device `index` with a pair of timing CUDA events:
// start(); <enqueue work>; stop(); elapsed_ms() synchronises on the stop event and returns the time
// between the two (the GPU's view: launch overhead before start() is excluded).
class CudaEventTimer {
 public:
  explicit CudaEventTimer(int index);
  ~CudaEventTimer();
  CudaEventTimer(const CudaEventTimer&) = delete;
  CudaEventTimer& operator=(const CudaEventTimer&) = delete;
  void start();
  void stop();
  double elapsed_ms();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True for an allocation failure: c10::OutOfMemoryError (the CUDA caching allocator in libtorch >= 1.13
// and 2.x), a c10::Error whose message says "out of memory" (older CUDA paths) or "not enough memory"
// (the CPU allocator), and std::bad_alloc.
bool is_out_of_memory(const std::exception& e);

}  // namespace mmref::compat
