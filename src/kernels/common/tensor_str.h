// Shapes in kernel error messages: detail::sz(t) -> "(2, 3, 4)".
#pragma once
#include <string>

#include <ATen/core/Tensor.h>

namespace mmref::kernels::detail {

inline std::string sz(const at::Tensor& t) {
  std::string r = "(";
  for (int64_t d = 0; d < t.dim(); ++d) r += (d ? ", " : "") + std::to_string(t.size(d));
  return r + ")";
}

}  // namespace mmref::kernels::detail
