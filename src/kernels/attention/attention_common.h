// Internal to src/kernels/attention: the dropout threshold (the hash itself is in dropout_hash.h, shared
// with the CUDA kernels) and the argument checks every backend shares.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "kernels/attention/attention.h"
#include "kernels/attention/dropout_hash.h"
#include "kernels/common/tensor_str.h"

namespace mmref::kernels::detail {

// ceil(p * 2^24): the keep threshold of dropout_hash.h for probability p.
inline uint32_t dropout_threshold(double p) {
  return static_cast<uint32_t>(std::ceil(p * 16777216.0));
}

// Sizes and checked arguments shared by the kernel, the reference and the torch composition.
struct AttentionShape {
  int64_t B = 0, H = 0, Hkv = 0, Lq = 0, Lk = 0, D = 0;
  double scale = 0;
};

// Validates q/k/v (dims, sizes, dtypes, devices), lengths and bias; throws mmref::Error naming the tensor.
AttentionShape check_attention_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const AttentionOptions& opt);

// (B,) int64 contiguous CPU copy of a lengths tensor, values clamped to [0, limit]; undefined if absent.
at::Tensor lengths_cpu(const std::optional<at::Tensor>& lengths, int64_t limit);

}  // namespace mmref::kernels::detail
