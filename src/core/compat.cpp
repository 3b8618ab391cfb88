// Version-dependent libtorch calls; see compat.h.
#include "core/compat.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
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

}  // namespace mmref::compat
