// Vectorised row primitives shared by the CPU kernels (conv, group norm). Each float version is compiled
// twice (target_clones: x86-64-v3 = AVX2+FMA+BMI, and the baseline) and picked at load time by CPU
// features ("arch=haswell" would dispatch on the CPU model name and miss AVX2 machines that are not
// reported as Haswell, such as this dev box's generic "Intel Xeon Processor"); the double versions
// (tests, gradchecks) are plain loops. Reductions use 16 independent float lanes over chunks of 256
// elements, each chunk added into a double, so they vectorise without -ffast-math and long rows keep
// double-like accuracy.
#pragma once
#include <cstdint>

namespace mmref::kernels::detail {

// acc[i] += w * src[i]
void axpy(float* acc, const float* src, float w, int64_t n);
void axpy(double* acc, const double* src, double w, int64_t n);
// sum_i a[i] * b[i]
double dot(const float* a, const float* b, int64_t n);
double dot(const double* a, const double* b, int64_t n);
// sum_i a[i]
double sum(const float* a, int64_t n);
double sum(const double* a, int64_t n);
// sum_i (a[i] - c)^2
double sum_sq_dev(const float* a, float c, int64_t n);
double sum_sq_dev(const double* a, double c, int64_t n);
// sum_i g[i] * (a[i] - c)
double dot_dev(const float* g, const float* a, float c, int64_t n);
double dot_dev(const double* g, const double* a, double c, int64_t n);

}  // namespace mmref::kernels::detail
