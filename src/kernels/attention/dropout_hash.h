// The attention dropout hash, shared bit for bit by the CPU kernel, the reference mask, and the CUDA
// kernels (torch-free; __host__ __device__ under nvcc). keep(b, h, i, j) is a pure function of
// (seed, b, h, i, j), so forward and backward, CPU and GPU, agree without storing a mask.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define MMREF_HD __host__ __device__ __forceinline__
#else
#define MMREF_HD inline
#endif

namespace mmref::kernels::detail {

MMREF_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Per-row key: hashed once per (b, h, i); the per-element hash mixes in j.
MMREF_HD uint64_t dropout_row_key(uint64_t seed, int64_t b, int64_t h, int64_t i) {
  uint64_t x = splitmix64(seed ^ 0x6A09E667F3BCC909ull);
  x = splitmix64(x ^ static_cast<uint64_t>(b));
  x = splitmix64(x ^ static_cast<uint64_t>(h));
  return splitmix64(x ^ static_cast<uint64_t>(i));
}

// Keep iff the top 24 bits of the hash >= threshold = ceil(p * 2^24) (uniform u = bits / 2^24 >= p).
MMREF_HD bool dropout_keep(uint64_t row_key, int64_t j, uint32_t threshold) {
  const uint64_t x = splitmix64(row_key ^ (static_cast<uint64_t>(j) * 0xD1B54A32D192ED03ull));
  return static_cast<uint32_t>(x >> 40) >= threshold;
}

}  // namespace mmref::kernels::detail
