// Internal to src/kernels/conv: argument checks every conv backend shares (throwing mmref::Error that
// names the tensor and the expected shape).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <ATen/core/Tensor.h>

#include "kernels/common/tensor_str.h"
#include "kernels/conv/conv.h"

namespace mmref::kernels::detail {


struct DepthwiseShape {
  int64_t B = 0, C = 0, T = 0, K = 0, T_out = 0;
};
// x (B, C, T), weight (C, 1, K), bias (C); floating dtypes, one device; T_out >= 0.
DepthwiseShape check_depthwise_args(const at::Tensor& x, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, const DepthwiseConv1dOptions& opt);

struct GroupNormShape {
  int64_t N = 0, C = 0, G = 0, S = 0;  // S: elements per channel (product of the spatial dims)
};
// x (N, C, *), C % groups == 0, gamma/beta (C).
GroupNormShape check_group_norm_args(const at::Tensor& x, const std::optional<at::Tensor>& gamma,
                                     const std::optional<at::Tensor>& beta, const GroupNormOptions& opt);

inline bool has(const std::optional<at::Tensor>& t) { return t.has_value() && t->defined(); }

}  // namespace mmref::kernels::detail
