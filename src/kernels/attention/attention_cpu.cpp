// The fused CPU attention kernel: FlashAttention-2-style tiled online softmax, forward and backward.
//
// Forward: one task per (b, h, block of kBlockQ query rows), at::parallel_for over tasks. Each task walks
// key blocks of kBlockK keys: S = scale * Q K^T (a BLAS gemm on the tile), + bias, masks; per row keep
// the running max m and sum l, P = exp(S - m_new), rescale the accumulator by exp(m_old - m_new),
// acc += P V (gemm). Extra memory per thread: one S tile and one Bq x D accumulator -- O(N), never Lq x Lk.
// Backward: D_i = rowsum(dO_i * O_i); one task per (b, kv head, key block) owning dK/dV of that block;
// for every query head of the GQA group and every query block it recomputes P = exp(S - lse) and
// dP = dO V^T, dS = P * (dP - D), dV += P^T dO, dK += scale dS^T Q, and adds scale dS K into a
// per-thread dQ buffer (summed at the end), so no two threads write the same memory.
// fp16/bf16 inputs are converted to fp32 once, fp64 (tests) runs in fp64.
//
// Tile gemms are our own register-blocked gemm (kernels/common/cpu_gemm.h, 50 GFLOP/s per core here vs
// OpenBLAS's 58), because OpenBLAS's pthreads build serialises when several OpenMP threads call it
// (measured: seq 1024 forward 37 ms with serial tasks -> 646 ms with two OpenMP threads calling sgemm).
// Elementwise row loops run over a fixed kBlockK so gcc vectorises them at -O2, and are compiled twice
// (target_clones: x86-64-v3, i.e. AVX2+FMA, and baseline) with a polynomial expf.
// Tiles 128 x 128 (not tuned yet). Measured on the dev box (2 cores; both sides on 2 intra-op threads,
// mmref_bench_kernels medians of 3), B 1, H 8, D 64, fp32: forward 19.5 vs 102 ms (seq 1024, 110 vs 21
// GFLOP/s) and 327 vs 1303 ms (4096); forward+backward 71 vs 191 ms (1024), 1.05 vs 2.55 s (4096);
// seq 8192 forward peak resident memory 16.8 MiB (the output itself is 16 MiB) vs 8200 MiB.
//
// Ref: Dao, FlashAttention-2 (2023), Algorithms 1 and 2.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <ATen/ExpandUtils.h>
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>

#include "core/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_common.h"
#include "kernels/common/cpu_gemm.h"
#include "kernels/common/vec_math.h"

namespace mmref::kernels {
namespace {

constexpr int64_t kBlockQ = 128;
constexpr int64_t kBlockK = 128;

// ---------------------------------------------------------------- tile gemm (row-major)
// C (m x n, ldc) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C: kernels/common/cpu_gemm.h, our own
// register-blocked tile gemm, so the tasks can run on OpenMP threads (see the top of the file).
template <typename T>
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  detail::tile_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---------------------------------------------------------------- vectorisable row ops
using detail::exp_nonpos;  // scores minus their running max are <= 0

#define MMREF_ROW_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

MMREF_ROW_CLONES float row_max_f32(const float* s) {
  float lane[16];
  for (int l = 0; l < 16; ++l) lane[l] = s[l];
  for (int64_t j = 16; j < kBlockK; j += 16)
    for (int l = 0; l < 16; ++l) lane[l] = s[j + l] > lane[l] ? s[j + l] : lane[l];
  float m = lane[0];
  for (int l = 1; l < 16; ++l) m = lane[l] > m ? lane[l] : m;
  return m;
}

// s[j] = exp(s[j] - m) for the whole tile row; returns the row sum.
MMREF_ROW_CLONES float row_exp_sum_f32(float* s, float m) {
  for (int64_t j = 0; j < kBlockK; ++j) s[j] = exp_nonpos(s[j] - m);
  float lane[16] = {};
  for (int64_t j = 0; j < kBlockK; j += 16)
    for (int l = 0; l < 16; ++l) lane[l] += s[j + l];
  float sum = 0;
  for (int l = 0; l < 16; ++l) sum += lane[l];
  return sum;
}

// dS = P * (dP - d) over the tile row.
MMREF_ROW_CLONES void row_ds_f32(const float* p, float* dp, float d) {
  for (int64_t j = 0; j < kBlockK; ++j) dp[j] = p[j] * (dp[j] - d);
}

inline float row_max(const float* s) { return row_max_f32(s); }
inline float row_exp_sum(float* s, float m) { return row_exp_sum_f32(s, m); }
inline void row_ds(const float* p, float* dp, float d) { row_ds_f32(p, dp, d); }
inline double row_max(const double* s) { return *std::max_element(s, s + kBlockK); }
inline double row_exp_sum(double* s, double m) {
  double sum = 0;
  for (int64_t j = 0; j < kBlockK; ++j) sum += (s[j] = std::exp(s[j] - m));
  return sum;
}
inline void row_ds(const double* p, double* dp, double d) {
  for (int64_t j = 0; j < kBlockK; ++j) dp[j] = p[j] * (dp[j] - d);
}

// ---------------------------------------------------------------- problem description
template <typename T>
struct Problem {
  int64_t B, H, Hkv, Lq, Lk, D;
  T scale;
  bool causal;
  double dropout_p;
  uint32_t drop_threshold;
  uint64_t seed;
  const T* q;  // (B, H, Lq, D) contiguous
  const T* k;  // (B, Hkv, Lk, D)
  const T* v;
  const T* bias = nullptr;  // expanded view of the bias: element strides, 0 on broadcast dims
  int64_t bs[4] = {0, 0, 0, 0};
  const int64_t* qlen = nullptr;
  const int64_t* klen = nullptr;

  // One past the last key query row i of batch b may see (0 for padded or fully masked rows).
  int64_t key_end(int64_t b, int64_t i) const {
    if (qlen && i >= qlen[b]) return 0;
    int64_t e = klen ? klen[b] : Lk;
    if (causal) e = std::min(e, i + (Lk - Lq) + 1);
    return std::max<int64_t>(e, 0);
  }
  const T* bias_row(int64_t b, int64_t h, int64_t i) const {
    return bias ? bias + b * bs[0] + h * bs[1] + i * bs[2] : nullptr;
  }
};

struct Prepared {
  at::Tensor q, k, v, bias, qlen, klen;  // kept alive while the Problem points into them
};

template <typename T>
Problem<T> make_problem(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        const AttentionOptions& opt, const detail::AttentionShape& s, Prepared& keep) {
  const auto st = c10::CppTypeToScalarType<T>::value;
  keep.q = q.to(st).contiguous();
  keep.k = k.to(st).contiguous();
  keep.v = v.to(st).contiguous();
  Problem<T> p{};
  p.B = s.B, p.H = s.H, p.Hkv = s.Hkv, p.Lq = s.Lq, p.Lk = s.Lk, p.D = s.D;
  p.scale = static_cast<T>(s.scale);
  p.causal = opt.causal;
  p.dropout_p = opt.dropout_p;
  p.drop_threshold = detail::dropout_threshold(opt.dropout_p);
  p.seed = opt.seed;
  p.q = keep.q.data_ptr<T>();
  p.k = keep.k.data_ptr<T>();
  p.v = keep.v.data_ptr<T>();
  if (opt.bias.has_value() && opt.bias->defined()) {
    keep.bias = opt.bias->detach().to(st).expand({s.B, s.H, s.Lq, s.Lk});
    p.bias = keep.bias.data_ptr<T>();
    for (int d = 0; d < 4; ++d) p.bs[d] = keep.bias.stride(d);
  }
  keep.qlen = detail::lengths_cpu(opt.q_lengths, s.Lq);
  keep.klen = detail::lengths_cpu(opt.k_lengths, s.Lk);
  if (keep.qlen.defined()) p.qlen = keep.qlen.data_ptr<int64_t>();
  if (keep.klen.defined()) p.klen = keep.klen.data_ptr<int64_t>();
  return p;
}

// Finishes the scaled scores for row r of a tile: bias added, -inf at j >= e (e <= n <= kBlockK).
template <typename T>
void finish_scores(T* srow, const T* brow, int64_t bstride, int64_t j0, int64_t e) {
  if (brow && bstride == 1) {
    for (int64_t j = 0; j < e; ++j) srow[j] += brow[j0 + j];
  } else if (brow) {
    for (int64_t j = 0; j < e; ++j) srow[j] += brow[(j0 + j) * bstride];
  }
  for (int64_t j = e; j < kBlockK; ++j) srow[j] = -std::numeric_limits<T>::infinity();
}

// ---------------------------------------------------------------- forward
template <typename T>
void forward_kernel(const Problem<T>& p, T* out, T* lse) {
  const int64_t nqb = (p.Lq + kBlockQ - 1) / kBlockQ;
  const int64_t group = p.H / p.Hkv;
  const int64_t D = p.D;
  const T inv_keep = static_cast<T>(1.0 / (1.0 - p.dropout_p));
  at::parallel_for(0, p.B * p.H * nqb, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> S(kBlockQ * kBlockK), acc(kBlockQ * D), m(kBlockQ), l(kBlockQ);
    std::vector<int64_t> kend(kBlockQ);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t qb = task % nqb, h = (task / nqb) % p.H, b = task / (nqb * p.H);
      const int64_t i0 = qb * kBlockQ, nr = std::min(kBlockQ, p.Lq - i0);
      const T* Q = p.q + ((b * p.H + h) * p.Lq + i0) * D;
      const T* K = p.k + (b * p.Hkv + h / group) * p.Lk * D;
      const T* V = p.v + (b * p.Hkv + h / group) * p.Lk * D;
      int64_t block_end = 0;
      for (int64_t r = 0; r < nr; ++r) {
        kend[r] = p.key_end(b, i0 + r);
        block_end = std::max(block_end, kend[r]);
        m[r] = -std::numeric_limits<T>::infinity();
        l[r] = 0;
      }
      std::fill(acc.begin(), acc.begin() + nr * D, T(0));
      for (int64_t j0 = 0; j0 < block_end; j0 += kBlockK) {
        const int64_t n = std::min(kBlockK, block_end - j0);
        gemm<T>(false, true, nr, n, D, p.scale, Q, D, K + j0 * D, D, T(0), S.data(), kBlockK);
        for (int64_t r = 0; r < nr; ++r) {
          T* srow = S.data() + r * kBlockK;
          const int64_t e = std::clamp<int64_t>(kend[r] - j0, 0, n);
          finish_scores(srow, p.bias_row(b, h, i0 + r), p.bs[3], j0, e);
          const T m_new = std::max(m[r], row_max(srow));
          if (m_new == -std::numeric_limits<T>::infinity()) {  // nothing visible yet in this row
            std::fill(srow, srow + kBlockK, T(0));
            continue;
          }
          const T alpha = m[r] == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(m[r] - m_new);
          const T sum = row_exp_sum(srow, m_new);
          l[r] = l[r] * alpha + sum;
          m[r] = m_new;
          if (alpha != T(1)) {
            T* a = acc.data() + r * D;
            for (int64_t d = 0; d < D; ++d) a[d] *= alpha;
          }
          if (p.dropout_p > 0) {
            const uint64_t key = detail::dropout_row_key(p.seed, b, h, i0 + r);
            for (int64_t j = 0; j < e; ++j) {
              srow[j] = detail::dropout_keep(key, j0 + j, p.drop_threshold) ? srow[j] * inv_keep : T(0);
            }
          }
        }
        gemm<T>(false, false, nr, D, n, T(1), S.data(), kBlockK, V + j0 * D, D, T(1), acc.data(), D);
      }
      T* O = out + ((b * p.H + h) * p.Lq + i0) * D;
      T* L = lse + (b * p.H + h) * p.Lq + i0;
      for (int64_t r = 0; r < nr; ++r) {
        const bool any = l[r] > T(0);
        const T inv = any ? T(1) / l[r] : T(0);
        for (int64_t d = 0; d < D; ++d) O[r * D + d] = acc[r * D + d] * inv;
        L[r] = any ? m[r] + std::log(l[r]) : -std::numeric_limits<T>::infinity();
      }
    }
  });
}

// ---------------------------------------------------------------- backward
template <typename T>
void backward_kernel(const Problem<T>& p, const T* dout, const T* drow, const T* lse, T* dk, T* dv,
                     T* dq_bufs, int64_t nthreads, T* dbias_full) {
  const int64_t nkb = (p.Lk + kBlockK - 1) / kBlockK;
  const int64_t group = p.H / p.Hkv;
  const int64_t D = p.D;
  const int64_t dq_numel = p.B * p.H * p.Lq * D;
  const T inv_keep = static_cast<T>(1.0 / (1.0 - p.dropout_p));
  const bool dropout = p.dropout_p > 0;
  at::parallel_for(0, p.B * p.Hkv * nkb, 1, [&](int64_t begin, int64_t end) {
    const int tid = at::get_thread_num();
    MMREF_CHECK(tid >= 0 && tid < nthreads, "thread id {} outside the {} dQ buffers", tid, nthreads);
    T* dq_buf = dq_bufs + tid * dq_numel;
    std::vector<T> P(kBlockQ * kBlockK), dP(kBlockQ * kBlockK), Pd(dropout ? kBlockQ * kBlockK : 0);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t kb = task % nkb, hk = (task / nkb) % p.Hkv, b = task / (nkb * p.Hkv);
      const int64_t j0 = kb * kBlockK, n = std::min(kBlockK, p.Lk - j0);
      const T* K = p.k + ((b * p.Hkv + hk) * p.Lk + j0) * D;
      const T* V = p.v + ((b * p.Hkv + hk) * p.Lk + j0) * D;
      T* dK = dk + ((b * p.Hkv + hk) * p.Lk + j0) * D;
      T* dV = dv + ((b * p.Hkv + hk) * p.Lk + j0) * D;
      // First query row that can see key j0: causal needs i + Lk - Lq >= j0.
      const int64_t i_first = p.causal ? std::max<int64_t>(0, j0 - (p.Lk - p.Lq)) : 0;
      const int64_t i_last = p.qlen ? std::min(p.Lq, p.qlen[b]) : p.Lq;
      if (p.klen && j0 >= p.klen[b]) continue;
      for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
        const int64_t bh = b * p.H + h;
        for (int64_t i0 = (i_first / kBlockQ) * kBlockQ; i0 < i_last; i0 += kBlockQ) {
          const int64_t nr = std::min(kBlockQ, p.Lq - i0);
          const T* Q = p.q + (bh * p.Lq + i0) * D;
          const T* dO = dout + (bh * p.Lq + i0) * D;
          gemm<T>(false, true, nr, n, D, p.scale, Q, D, K, D, T(0), P.data(), kBlockK);
          gemm<T>(false, true, nr, n, D, T(1), dO, D, V, D, T(0), dP.data(), kBlockK);
          for (int64_t r = 0; r < nr; ++r) {
            const int64_t i = i0 + r;
            T* prow = P.data() + r * kBlockK;
            T* dprow = dP.data() + r * kBlockK;
            const T L = lse[bh * p.Lq + i];
            const int64_t e = std::clamp<int64_t>(p.key_end(b, i) - j0, 0, n);
            if (e == 0 || L == -std::numeric_limits<T>::infinity()) {
              std::fill(prow, prow + kBlockK, T(0));
              std::fill(dprow, dprow + kBlockK, T(0));
              if (dropout) std::fill(Pd.data() + r * kBlockK, Pd.data() + (r + 1) * kBlockK, T(0));
              continue;
            }
            finish_scores(prow, p.bias_row(b, h, i), p.bs[3], j0, e);
            row_exp_sum(prow, L);  // P = exp(S - lse)
            for (int64_t j = e; j < kBlockK; ++j) dprow[j] = T(0);
            if (dropout) {
              T* pdrow = Pd.data() + r * kBlockK;
              const uint64_t key = detail::dropout_row_key(p.seed, b, h, i);
              for (int64_t j = 0; j < kBlockK; ++j) {
                const bool keep = j < e && detail::dropout_keep(key, j0 + j, p.drop_threshold);
                pdrow[j] = keep ? prow[j] * inv_keep : T(0);
                dprow[j] = keep ? dprow[j] * inv_keep : T(0);
              }
            }
            row_ds(prow, dprow, drow[bh * p.Lq + i]);  // dP <- dS = P * (dP - D_i)
            if (dbias_full) {
              T* db = dbias_full + (bh * p.Lq + i) * p.Lk + j0;
              for (int64_t j = 0; j < n; ++j) db[j] = dprow[j];
            }
          }
          gemm<T>(true, false, n, D, nr, T(1), dropout ? Pd.data() : P.data(), kBlockK, dO, D, T(1), dV, D);
          gemm<T>(true, false, n, D, nr, p.scale, dP.data(), kBlockK, Q, D, T(1), dK, D);
          gemm<T>(false, false, nr, D, n, p.scale, dP.data(), kBlockK, K, D, T(1),
                  dq_buf + (bh * p.Lq + i0) * D, D);
        }
      }
    }
  });
}

template <typename T>
std::pair<at::Tensor, at::Tensor> forward_typed(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                const AttentionOptions& opt, const detail::AttentionShape& s) {
  Prepared keep;
  const Problem<T> p = make_problem<T>(q, k, v, opt, s, keep);
  at::Tensor out = at::empty({s.B, s.H, s.Lq, s.D}, keep.q.options());
  at::Tensor lse = at::empty({s.B, s.H, s.Lq}, keep.q.options());  // float32, float64 for fp64 inputs
  forward_kernel<T>(p, out.data_ptr<T>(), lse.data_ptr<T>());
  return {out.to(q.scalar_type()), lse};
}

template <typename T>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> backward_typed(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const AttentionOptions& opt, const detail::AttentionShape& s) {
  Prepared keep;
  const Problem<T> p = make_problem<T>(q, k, v, opt, s, keep);
  const auto st = c10::CppTypeToScalarType<T>::value;
  const at::Tensor dO = dout.to(st).contiguous();
  const at::Tensor drow = (dO * out.to(st)).sum(-1).contiguous();  // D_i = rowsum(dO_i * O_i)
  const at::Tensor L = lse.to(st).contiguous();
  at::Tensor dk = at::zeros({s.B, s.Hkv, s.Lk, s.D}, keep.q.options());
  at::Tensor dv = at::zeros({s.B, s.Hkv, s.Lk, s.D}, keep.q.options());
  const int64_t nthreads = at::get_num_threads();
  // Per-thread dQ accumulators: nthreads x |q| extra, O(N) (the cost of never racing on dQ).
  at::Tensor dq_bufs = at::zeros({nthreads, s.B, s.H, s.Lq, s.D}, keep.q.options());
  const bool want_dbias = opt.bias.has_value() && opt.bias->defined() && opt.bias->requires_grad();
  // dS for the bias gradient has the bias' (broadcast) size: only allocated when the bias needs it.
  at::Tensor dbias_full = want_dbias ? at::zeros({s.B, s.H, s.Lq, s.Lk}, keep.q.options()) : at::Tensor();
  backward_kernel<T>(p, dO.data_ptr<T>(), drow.data_ptr<T>(), L.data_ptr<T>(), dk.data_ptr<T>(),
                     dv.data_ptr<T>(), dq_bufs.data_ptr<T>(), nthreads,
                     want_dbias ? dbias_full.data_ptr<T>() : nullptr);
  at::Tensor dq = nthreads == 1 ? dq_bufs[0] : dq_bufs.sum(0);
  at::Tensor dbias;
  if (want_dbias) dbias = at::sum_to(dbias_full, opt.bias->sizes()).to(opt.bias->scalar_type());
  return {dq.to(q.scalar_type()), dk.to(q.scalar_type()), dv.to(q.scalar_type()), dbias};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> attention_forward_cpu(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v, const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, v, opt);
  if (!q.device().is_cpu()) MMREF_FAIL("attention_forward_cpu: q is on {}, expected cpu", q.device().str());
  if (q.scalar_type() == at::kDouble) return forward_typed<double>(q, k, v, opt, s);
  return forward_typed<float>(q, k, v, opt, s);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> attention_backward_cpu(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const AttentionOptions& opt) {
  const detail::AttentionShape s = detail::check_attention_args(q, k, v, opt);
  if (!q.device().is_cpu()) MMREF_FAIL("attention_backward_cpu: q is on {}, expected cpu", q.device().str());
  if (dout.sizes() != q.sizes() || out.sizes() != q.sizes()) {
    MMREF_FAIL("attention_backward_cpu: dout {} and out {} must have q's shape {}", detail::sz(dout), detail::sz(out),
               detail::sz(q));
  }
  if (lse.dim() != 3 || lse.size(0) != s.B || lse.size(1) != s.H || lse.size(2) != s.Lq) {
    MMREF_FAIL("attention_backward_cpu: lse {} must be ({}, {}, {})", detail::sz(lse), s.B, s.H, s.Lq);
  }
  if (q.scalar_type() == at::kDouble) return backward_typed<double>(dout, q, k, v, out, lse, opt, s);
  return backward_typed<float>(dout, q, k, v, out, lse, opt, s);
}

}  // namespace mmref::kernels
