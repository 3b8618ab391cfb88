// Tile gemm for the CPU kernels; see cpu_gemm.h.
#include "kernels/common/cpu_gemm.h"

#include <algorithm>
#include <vector>

namespace mmref::kernels::detail {
namespace {

#define MMREF_GEMM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// One block: C[i0..i0+ROWS) x [j0, j0 + 2 lanes) (+)= alpha * sum_kk a(r, kk) * Bn[kk][j0 + l], Bn row-major
// (k x n, ldb), a(r, kk) = A[r * sa_r + kk * sa_k] (sa_* select A or A^T). The accumulators are named GCC
// vector-extension values, two halves per row, so they stay in registers across the k loop: arrays
// indexed by the row (T acc[4][16], or V lo[4]) were kept on the stack at -O2, a load and a store per FMA
// (measured 31 GFLOP/s per core).
template <typename V, typename T, int ROWS>
inline __attribute__((always_inline)) void gemm_block(int64_t i0, int64_t j0, int64_t k, T alpha, const T* A,
                                                      int64_t sa_r, int64_t sa_k, const T* Bn, int64_t ldb,
                                                      T beta, T* C, int64_t ldc) {
  constexpr int L = static_cast<int>(sizeof(V) / sizeof(T));
  V l0{}, h0{}, l1{}, h1{}, l2{}, h2{}, l3{}, h3{};
  const T* a0 = A + i0 * sa_r;
  for (int64_t kk = 0; kk < k; ++kk) {
    const T* b = Bn + kk * ldb + j0;
    V b0, b1;
    __builtin_memcpy(&b0, b, sizeof(V));
    __builtin_memcpy(&b1, b + L, sizeof(V));
    const T* ak = a0 + kk * sa_k;
    const V x0 = V{} + ak[0];
    l0 += x0 * b0, h0 += x0 * b1;
    if constexpr (ROWS > 1) {
      const V x1 = V{} + ak[sa_r], x2 = V{} + ak[2 * sa_r], x3 = V{} + ak[3 * sa_r];
      l1 += x1 * b0, h1 += x1 * b1;
      l2 += x2 * b0, h2 += x2 * b1;
      l3 += x3 * b0, h3 += x3 * b1;
    }
  }
  auto store = [&](int r, V lo, V hi) __attribute__((always_inline)) {
    T* c = C + (i0 + r) * ldc + j0;
    V c0 = lo * alpha, c1 = hi * alpha;
    if (beta != T(0)) {
      V o0, o1;
      __builtin_memcpy(&o0, c, sizeof(V));
      __builtin_memcpy(&o1, c + L, sizeof(V));
      c0 += o0 * beta, c1 += o1 * beta;
    }
    __builtin_memcpy(c, &c0, sizeof(V));
    __builtin_memcpy(c + L, &c1, sizeof(V));
  };
  store(0, l0, h0);
  if constexpr (ROWS > 1) store(1, l1, h1), store(2, l2, h2), store(3, l3, h3);
}

// 8 floats or 4 doubles per half (16 or 8 columns per block).
typedef float VF __attribute__((vector_size(32)));
typedef double VD __attribute__((vector_size(32)));

// The same for a column tail j0 .. n (fewer than 16 columns), one row at a time.
template <typename T>
void tail_block(int64_t i0, int64_t rows, int64_t j0, int64_t n, int64_t k, T alpha, const T* A, int64_t sa_r,
                int64_t sa_k, const T* Bn, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t r = i0; r < i0 + rows; ++r)
    for (int64_t j = j0; j < n; ++j) {
      T s = 0;
      for (int64_t kk = 0; kk < k; ++kk) s += A[r * sa_r + kk * sa_k] * Bn[kk * ldb + j];
      C[r * ldc + j] = beta == T(0) ? alpha * s : alpha * s + beta * C[r * ldc + j];
    }
}

template <typename V, typename T>
inline __attribute__((always_inline)) void gemm_nn_body(int64_t m, int64_t n, int64_t k, T alpha, const T* A,
                                                        int64_t sa_r, int64_t sa_k, const T* Bn, int64_t ldb,
                                                        T beta, T* C, int64_t ldc) {
  constexpr int64_t kCols = 2 * static_cast<int64_t>(sizeof(V) / sizeof(T));
  const int64_t nb = n / kCols * kCols;
  int64_t i0 = 0;
  for (; i0 + 4 <= m; i0 += 4)
    for (int64_t j0 = 0; j0 < nb; j0 += kCols) gemm_block<V, T, 4>(i0, j0, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
  for (; i0 < m; ++i0)
    for (int64_t j0 = 0; j0 < nb; j0 += kCols) gemm_block<V, T, 1>(i0, j0, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
  if (nb < n) tail_block<T>(0, m, nb, n, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
}

MMREF_GEMM_CLONES void gemm_nn_f32(int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t sa_r,
                                   int64_t sa_k, const float* Bn, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_nn_body<VF, float>(m, n, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
}
void gemm_nn_f64(int64_t m, int64_t n, int64_t k, double alpha, const double* A, int64_t sa_r, int64_t sa_k,
                 const double* Bn, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_nn_body<VD, double>(m, n, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
}

inline void gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t sa_r, int64_t sa_k,
                    const float* Bn, int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_nn_f32(m, n, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
}
inline void gemm_nn(int64_t m, int64_t n, int64_t k, double alpha, const double* A, int64_t sa_r, int64_t sa_k,
                    const double* Bn, int64_t ldb, double beta, double* C, int64_t ldc) {
  gemm_nn_f64(m, n, k, alpha, A, sa_r, sa_k, Bn, ldb, beta, C, ldc);
}

template <typename T>
void tile_gemm_impl(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
                    int64_t ldb, T beta, T* C, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  // op(A)(i, kk) = A[i * lda + kk] or A[kk * lda + i]
  const int64_t sa_r = ta ? 1 : lda, sa_k = ta ? lda : 1;
  if (!tb) {
    gemm_nn(m, n, k, alpha, A, sa_r, sa_k, B, ldb, beta, C, ldc);
    return;
  }
  // op(B) = B^T with B (n x k): transpose into a k x n buffer once.
  thread_local std::vector<T> bt;
  bt.resize(static_cast<size_t>(k * n));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t kk = 0; kk < k; ++kk) bt[kk * n + j] = B[j * ldb + kk];
  gemm_nn(m, n, k, alpha, A, sa_r, sa_k, bt.data(), n, beta, C, ldc);
}

}  // namespace

void tile_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  tile_gemm_impl<float>(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}
void tile_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A, int64_t lda,
               const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  tile_gemm_impl<double>(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace mmref::kernels::detail
