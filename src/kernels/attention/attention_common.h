// Internal to src/kernels/attention: the dropout hash (inline, so the kernel, the reference and the mask
// helper compute the same bits) and the argument checks every backend shares.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "kernels/attention/attention.h"
#include "kernels/common/tensor_str.h"

namespace mmref::kernels::detail {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Per-row key: hashed once per (b, h, i); the per-element hash mixes in j.
inline uint64_t dropout_row_key(uint64_t seed, int64_t b, int64_t h, int64_t i) {
  uint64_t x = splitmix64(seed ^ 0x6A09E667F3BCC909ull);
  x = splitmix64(x ^ static_cast<uint64_t>(b));
  x = splitmix64(x ^ static_cast<uint64_t>(h));
  return splitmix64(x ^ static_cast<uint64_t>(i));
}

// Keep iff the top 24 bits of the hash >= threshold = ceil(p * 2^24) (uniform u = bits / 2^24 >= p).
inline uint32_t dropout_threshold(double p) {
  return static_cast<uint32_t>(std::ceil(p * 16777216.0));
}
inline bool dropout_keep(uint64_t row_key, int64_t j, uint32_t threshold) {
  const uint64_t x = splitmix64(row_key ^ (static_cast<uint64_t>(j) * 0xD1B54A32D192ED03ull));
  return static_cast<uint32_t>(x >> 40) >= threshold;
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
