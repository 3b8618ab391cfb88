// Version-dependent libtorch calls; see compat.h.
#include "core/compat.h"

#include <new>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/util/Exception.h>
#include <torch/cuda.h>

#include "core/error.h"

#if defined(MMREF_TORCH_HAS_CUDA) && MMREF_TORCH_HAS_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#define MMREF_COMPAT_CUDA 1
#else
#define MMREF_COMPAT_CUDA 0
#endif

namespace mmref::compat {

bool torch_built_with_cuda() {
  return at::hasCUDA();
}

int torch_cuda_device_count() { return static_cast<int>(torch::cuda::device_count()); }

bool torch_cudnn_available() { return torch::cuda::cudnn_is_available(); }

int set_intra_op_threads(int n) {
  if (n > 0) at::set_num_threads(n);
  return at::get_num_threads();
}

int intra_op_threads() { return at::get_num_threads(); }

int interop_threads() { return at::get_num_interop_threads(); }

CudaAutocast::CudaAutocast(bool enabled, c10::ScalarType dtype) : enabled_(enabled) {
  if (!enabled_) return;
#if MMREF_TORCH_AT_LEAST(2, 4)
  prev_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  prev_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
  prev_enabled_ = at::autocast::is_enabled();
  prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
  at::autocast::set_enabled(true);
  at::autocast::set_autocast_gpu_dtype(dtype);
#endif
  at::autocast::increment_nesting();
}

CudaAutocast::~CudaAutocast() {
  if (!enabled_) return;
  // Leaving the outermost autocast region frees the cast-weight cache, as torch.autocast does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if MMREF_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(at::kCUDA, prev_enabled_);
  at::autocast::set_autocast_dtype(at::kCUDA, prev_dtype_);
#else
  at::autocast::set_enabled(prev_enabled_);
  at::autocast::set_autocast_gpu_dtype(prev_dtype_);
#endif
}

// ---- CUDA figures for `mmref bench`

#if MMREF_COMPAT_CUDA
// DeviceStats' per-pool arrays are indexed by StatType; AGGREGATE (all pools) is 0 in every libtorch
// from 1.13 to 2.x (the enum moved from c10::cuda::CUDACachingAllocator to c10::CachingDeviceAllocator).
constexpr size_t kAggregateStat = 0;

void cuda_reset_peak_memory(int index) {
  if (torch_cuda_device_count() > index) c10::cuda::CUDACachingAllocator::resetPeakStats(index);
}

CudaMemoryPeaks cuda_peak_memory(int index) {
  if (torch_cuda_device_count() <= index) return {};
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
  return {stats.allocated_bytes[kAggregateStat].peak, stats.reserved_bytes[kAggregateStat].peak};
}

void cuda_empty_cache() {
  if (torch_cuda_device_count() > 0) c10::cuda::CUDACachingAllocator::emptyCache();
}

void cuda_synchronize(int index) { torch::cuda::synchronize(index); }

int64_t torch_cuda_runtime_version() { return CUDART_VERSION; }

struct CudaEventTimer::Impl {
  explicit Impl(int i) : index(i), start(cudaEventDefault), stop(cudaEventDefault) {}
  int index;
  at::cuda::CUDAEvent start, stop;  // cudaEventDefault: timing on (CUDAEvent's default disables it)
};

CudaEventTimer::CudaEventTimer(int index) : impl_(std::make_unique<Impl>(index)) {}
CudaEventTimer::~CudaEventTimer() = default;

void CudaEventTimer::start() {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(impl_->index));
  impl_->start.record();
}

void CudaEventTimer::stop() {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(impl_->index));
  impl_->stop.record();
}

double CudaEventTimer::elapsed_ms() {
  impl_->stop.synchronize();
  return static_cast<double>(impl_->start.elapsed_time(impl_->stop));
}
#else
void cuda_reset_peak_memory(int /*index*/) {}
CudaMemoryPeaks cuda_peak_memory(int /*index*/) { return {}; }
void cuda_empty_cache() {}
void cuda_synchronize(int /*index*/) {}
int64_t torch_cuda_runtime_version() { return 0; }

struct CudaEventTimer::Impl {};
CudaEventTimer::CudaEventTimer(int /*index*/) {
  throw Error("CUDA event timing needs a CUDA libtorch; this mmref was built against a CPU-only one");
}
CudaEventTimer::~CudaEventTimer() = default;
void CudaEventTimer::start() {}
void CudaEventTimer::stop() {}
double CudaEventTimer::elapsed_ms() { return 0; }
#endif

int64_t cudnn_version() {
  if (!torch_built_with_cuda() || !torch_cudnn_available()) return 0;
  try {
    return static_cast<int64_t>(at::detail::getCUDAHooks().versionCuDNN());
  } catch (const std::exception&) {
    return 0;
  }
}

bool is_out_of_memory(const std::exception& e) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) || dynamic_cast<const std::bad_alloc*>(&e)) return true;
  if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) {
    // what_without_backtrace: the message alone, so a frame name cannot match.
    const std::string msg = ce->what_without_backtrace();
    return msg.find("out of memory") != std::string::npos || msg.find("not enough memory") != std::string::npos;
  }
  return false;
}

}  // namespace mmref::compat
