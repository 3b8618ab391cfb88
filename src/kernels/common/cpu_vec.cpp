// Vectorised row primitives; see cpu_vec.h.
// Every hot loop has a fixed 16-element inner body: the project builds at -O2, where gcc 12's "very cheap"
// vectoriser cost model only vectorises loops whose trip count needs no epilogue, so `for (i < n)` stays
// scalar (measured: GroupNorm+SiLU 4.6x slower than libtorch that way) while `for (l < 16)` becomes
// two AVX2 (or four SSE) operations.
#include "kernels/common/cpu_vec.h"

#include <algorithm>

namespace mmref::kernels::detail {
namespace {

#define MMREF_VEC_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

// Chunked 16-lane reduction of EXPR(i) over [0, n) into double `s`. A macro, not a lambda: a lambda is not
// cloned with its target_clones caller, so it would not inline into the AVX2 clone and stay scalar.
#define MMREF_REDUCE(T, n, EXPR)                                  \
  double s = 0;                                                   \
  int64_t i_ = 0;                                                 \
  while (i_ + 16 <= (n)) {                                        \
    T lanes[16] = {};                                             \
    const int64_t stop = std::min<int64_t>((n), i_ + 256) - 15;   \
    for (; i_ < stop; i_ += 16)                                   \
      for (int l = 0; l < 16; ++l) {                              \
        const int64_t i = i_ + l;                                 \
        lanes[l] += (EXPR);                                       \
      }                                                           \
    for (int l = 0; l < 16; ++l) s += lanes[l];                   \
  }                                                               \
  for (int64_t i = i_; i < (n); ++i) s += (EXPR);                 \
  return s

}  // namespace

MMREF_VEC_CLONES void axpy(float* __restrict acc, const float* __restrict src, float w, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l) acc[i + l] += w * src[i + l];
  for (; i < n; ++i) acc[i] += w * src[i];
}
void axpy(double* __restrict acc, const double* __restrict src, double w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * src[i];
}

MMREF_VEC_CLONES double dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  MMREF_REDUCE(float, n, a[i] * b[i]);
}
double dot(const double* a, const double* b, int64_t n) {
  MMREF_REDUCE(double, n, a[i] * b[i]);
}

MMREF_VEC_CLONES double sum(const float* __restrict a, int64_t n) {
  MMREF_REDUCE(float, n, a[i]);
}
double sum(const double* a, int64_t n) {
  MMREF_REDUCE(double, n, a[i]);
}

MMREF_VEC_CLONES double sum_sq_dev(const float* __restrict a, float c, int64_t n) {
  MMREF_REDUCE(float, n, (a[i] - c) * (a[i] - c));
}
double sum_sq_dev(const double* a, double c, int64_t n) {
  MMREF_REDUCE(double, n, (a[i] - c) * (a[i] - c));
}

MMREF_VEC_CLONES double dot_dev(const float* __restrict g, const float* __restrict a, float c, int64_t n) {
  MMREF_REDUCE(float, n, g[i] * (a[i] - c));
}
double dot_dev(const double* g, const double* a, double c, int64_t n) {
  MMREF_REDUCE(double, n, g[i] * (a[i] - c));
}

}  // namespace mmref::kernels::detail
