// A small row-major gemm for the CPU kernels' tiles (attention's 128 x 128 x D blocks), so that they can
// run inside OpenMP-parallel loops: OpenBLAS's pthreads build serialises when several threads call it at
// once (measured: seq 1024 attention forward 37 ms serial vs 646 ms with two OpenMP threads calling it).
//   C (m x n, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C
// op(X) = X or X^T, everything row-major with leading dimensions. Register-blocked rank-1 updates: 4 rows
// of C x 16 columns in registers, fixed 16-wide inner loops that gcc vectorises (AVX-512, AVX2+FMA and
// baseline clones, picked by CPU features); B^T operands are transposed once into a per-thread buffer.
// Not a general BLAS: tuned for tiles that fit in L1/L2 (k and n up to a few hundred).
#pragma once
#include <cstdint>

namespace mmref::kernels::detail {

void tile_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void tile_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* A,
               int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace mmref::kernels::detail
