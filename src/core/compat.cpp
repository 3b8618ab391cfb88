// Version-dependent libtorch calls; see compat.h.
#include "core/compat.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/cuda.h>

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

}  // namespace mmref::compat
