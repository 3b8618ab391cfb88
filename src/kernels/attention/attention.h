// Scaled dot-product attention for mmref: options, the fused CPU kernel (FlashAttention-2-style tiled
// online softmax, forward and backward), its plain libtorch reference and the shared dropout mask.
// Models call mmref::kernels::attention() from kernels/dispatch.h; the functions here are the layers
// underneath it and what tests/kernels/attention_*_test.cpp compare against each other.
//
// Shapes: q (B, H, Lq, D), k and v (B, Hkv, Lk, D) with H % Hkv == 0 (grouped-query attention: query head
// h reads key/value head h / (H / Hkv)). Masking conventions shared by every backend:
//   causal:    query i attends keys j <= i + (Lk - Lq) (bottom-right aligned, like FlashAttention; the
//              padded sizes Lq, Lk are used, not the per-sequence lengths);
//   q_lengths: rows i >= q_lengths[b] are padding: zero output, zero gradient, lse = -inf;
//   k_lengths: keys j >= k_lengths[b] are masked;
//   bias:      added to the scaled scores, broadcastable to (B, H, Lq, Lk); -inf entries mask.
// A row whose keys are all masked outputs exactly 0 (never NaN) and has lse = -inf.
//
// Ref: Dao, "FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning" (2023),
// Algorithms 1 (forward) and 2 (backward).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include <ATen/core/Tensor.h>

namespace mmref::kernels {

struct AttentionOptions {
  bool causal = false;                  // query i attends keys j <= i + (Lk - Lq)
  std::optional<at::Tensor> q_lengths;  // (B,) int64 valid query lengths
  std::optional<at::Tensor> k_lengths;  // (B,) int64 valid key lengths
  std::optional<at::Tensor> bias;       // additive, broadcastable to (B, H, Lq, Lk)
  double scale = -1;                    // < 0: 1 / sqrt(head_dim)
  double dropout_p = 0;                 // on the attention probabilities; deterministic for `seed`
  uint64_t seed = 0;
};

enum class AttentionBackend { kMmref, kReference, kTorch };

// "mmref" | "reference" | "torch"; anything else throws mmref::Error naming the accepted values.
AttentionBackend parse_attention_backend(const std::string& name);
const char* attention_backend_name(AttentionBackend backend);

// The fused CPU kernel. Returns {out (B, H, Lq, D) in q's dtype, lse (B, H, Lq) log-sum-exp of the scaled,
// biased, masked scores (-inf for fully masked rows)}; lse is float32, float64 for float64 inputs (so the
// fp64 backward is exact). fp16/bf16 are computed in fp32, fp64 in fp64.
std::pair<at::Tensor, at::Tensor> attention_forward_cpu(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v,
                                                        const AttentionOptions& opt = {});

// Backward of the fused kernel given dout (B, H, Lq, D) and the forward's out and lse. Returns
// {dq, dk, dv, dbias}; dbias has the bias' shape and is undefined unless opt.bias requires grad.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> attention_backward_cpu(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const AttentionOptions& opt = {});

// The CUDA kernels (attention_fwd.cu / attention_bwd.cu through attention_cuda_binding.cpp), same
// contracts as the CPU pair, for CUDA fp32/fp16/bf16 tensors with head_dim 32, 64, 96 or 128. Defined only
// in builds with a CUDA libtorch (MMREF_CUDA_BINDINGS); attention_cuda_supports is false elsewhere.
bool attention_cuda_supports(const at::Tensor& q);
std::pair<at::Tensor, at::Tensor> attention_forward_gpu(const at::Tensor& q, const at::Tensor& k,
                                                        const at::Tensor& v, const AttentionOptions& opt = {});
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> attention_backward_gpu(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
    const at::Tensor& out, const at::Tensor& lse, const AttentionOptions& opt = {});

// Plain libtorch composition in the input dtype (tests call it in float64); differentiable through
// libtorch autograd. Dropout uses attention_dropout_mask, so it matches the kernel bit for bit.
at::Tensor attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionOptions& opt = {});

// The scores the softmax sees: q k^T * scale + bias, with -inf where masked (causal, lengths). (B,H,Lq,Lk).
at::Tensor attention_reference_scores(const at::Tensor& q, const at::Tensor& k,
                                      const AttentionOptions& opt = {});

// libtorch's own composition (matmul, softmax, matmul; fp16/bf16 computed in fp32 on CPU). This is the
// kTorch backend and the baseline the benchmarks compare against.
at::Tensor attention_torch(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const AttentionOptions& opt = {});

// The dropout mask every backend uses: element (b, h, i, j) is kept iff a splitmix64 hash of
// (seed, b, h, i, j), read as a 24-bit uniform in [0, 1), is >= p. Kept probabilities are scaled by 1/(1-p).
bool attention_dropout_keep(uint64_t seed, int64_t b, int64_t h, int64_t i, int64_t j, double p);
// The whole mask as a bool tensor (B, H, Lq, Lk), for the reference and tests.
at::Tensor attention_dropout_mask(uint64_t seed, int64_t B, int64_t H, int64_t Lq, int64_t Lk, double p);

}  // namespace mmref::kernels
