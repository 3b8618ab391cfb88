// Vectorised row primitives; see cpu_vec.h.
#include "kernels/common/cpu_vec.h"

#include <algorithm>

namespace mmref::kernels::detail {
namespace {

#define MMREF_VEC_CLONES __attribute__((target_clones("arch=haswell", "default")))
#define MMREF_INLINE inline __attribute__((always_inline))

// Chunked 16-lane reduction of f(i) over [0, n).
template <typename T, typename F>
MMREF_INLINE double reduce(int64_t n, F f) {
  double s = 0;
  int64_t i = 0;
  while (i + 16 <= n) {
    T lanes[16] = {};
    const int64_t stop = std::min(n, i + 256) - 15;
    for (; i < stop; i += 16)
      for (int l = 0; l < 16; ++l) lanes[l] += f(i + l);
    for (int l = 0; l < 16; ++l) s += lanes[l];
  }
  for (; i < n; ++i) s += f(i);
  return s;
}

}  // namespace

MMREF_VEC_CLONES void axpy(float* __restrict acc, const float* __restrict src, float w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * src[i];
}
void axpy(double* __restrict acc, const double* __restrict src, double w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += w * src[i];
}

MMREF_VEC_CLONES double dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  return reduce<float>(n, [&](int64_t i) { return a[i] * b[i]; });
}
double dot(const double* a, const double* b, int64_t n) {
  return reduce<double>(n, [&](int64_t i) { return a[i] * b[i]; });
}

MMREF_VEC_CLONES double sum(const float* __restrict a, int64_t n) {
  return reduce<float>(n, [&](int64_t i) { return a[i]; });
}
double sum(const double* a, int64_t n) {
  return reduce<double>(n, [&](int64_t i) { return a[i]; });
}

MMREF_VEC_CLONES double sum_sq_dev(const float* __restrict a, float c, int64_t n) {
  return reduce<float>(n, [&](int64_t i) {
    const float d = a[i] - c;
    return d * d;
  });
}
double sum_sq_dev(const double* a, double c, int64_t n) {
  return reduce<double>(n, [&](int64_t i) {
    const double d = a[i] - c;
    return d * d;
  });
}

MMREF_VEC_CLONES double dot_dev(const float* __restrict g, const float* __restrict a, float c, int64_t n) {
  return reduce<float>(n, [&](int64_t i) { return g[i] * (a[i] - c); });
}
double dot_dev(const double* g, const double* a, double c, int64_t n) {
  return reduce<double>(n, [&](int64_t i) { return g[i] * (a[i] - c); });
}

}  // namespace mmref::kernels::detail
