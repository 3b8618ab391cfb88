// Relative positional self-attention as wenet's Conformer uses it: the sinusoid table
// (RelPositionalEncoding, the `embed.pos_enc.pe` buffer) and RelPositionMultiHeadedAttention
// (Transformer-XL style with the learned biases pos_bias_u / pos_bias_v and linear_pos without bias):
//
//   score(i, j) = ((q_i + u) . k_j + (q_i + v) . p_j) / sqrt(d_k)      p = linear_pos(pos_emb)
//
// wenet's implementation has no rel-shift: pos_emb has the query length and p_j is the embedding of
// absolute position j (attention.py: "Remove rel_shift since it is useless in speech recognition").
// The positional term is computed here as one matmul, bd = (q + v) p^T (B, H, T, T), and handed to the
// fused kernel as its additive `bias` (scaled by 1/sqrt(d_k)) with q + u as the query, which is exactly
// what wenet's own SDPA path does (`mask = (matrix_bd + mask) / sqrt(d_k)`). Padding: keys j >=
// k_lengths[b] get -inf before the softmax; wenet also zeroes their probabilities after it, which is the
// same thing for every query that has at least one valid key (a row with none outputs 0 in both).
//
// Ref: wenet-e2e/wenet 015469960db7 wenet/models/transformer/attention.py (RelPositionMultiHeadedAttention,
// forward_attention), wenet/transformer/embedding.py (PositionalEncoding, RelPositionalEncoding);
// Dai et al., "Transformer-XL" (2019) Section 3.3.
// Tests: tests/models/conformer_golden_test.cpp, tests/models/conformer_test.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"
#include "models/common/lora.h"

namespace mmref::models {

// wenet RelPositionalEncoding: pe (1, max_len, d_model) with sin at even and cos at odd dims, a
// persistent buffer (real checkpoints contain it, so a loaded table replaces the computed one).
class RelPositionalEncodingImpl : public torch::nn::Module {
 public:
  RelPositionalEncodingImpl(int64_t d_model, double dropout_rate, int64_t max_len = 5000);
  // x (B, T, D) -> {dropout(x * sqrt(D)), dropout(pe[:, offset:offset+T]) (1, T, D)}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, int64_t offset = 0);
  // pe[:, offset:offset+size] (1, size, D), no dropout.
  torch::Tensor position_encoding(int64_t offset, int64_t size) const;
  int64_t max_len() const { return max_len_; }

  torch::Tensor pe;

 private:
  int64_t d_model_, max_len_;
  double dropout_rate_;
};
TORCH_MODULE(RelPositionalEncoding);

// The sinusoid table itself (1, max_len, d_model), float32, as PositionalEncoding.__init__ builds it.
torch::Tensor sinusoid_position_table(int64_t max_len, int64_t d_model);

class RelPositionMultiHeadedAttentionImpl : public torch::nn::Module {
 public:
  RelPositionMultiHeadedAttentionImpl(int64_t n_head, int64_t n_feat, double dropout_rate);
  // x (B, T, D) queries = keys = values, pos_emb (1 or B, T, D), k_lengths (B,) int64 valid keys (none:
  // all valid), mask_bias (T, T) additive 0 / -inf (a chunk mask; undefined: none) -> (B, T, D).
  // Attention dropout only in training mode.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& pos_emb,
                        const std::optional<torch::Tensor>& k_lengths,
                        kernels::AttentionBackend backend = kernels::AttentionBackend::kMmref,
                        const torch::Tensor& mask_bias = {});

  int64_t heads() const { return h_; }

  LoraLinear linear_q{nullptr}, linear_k{nullptr}, linear_v{nullptr}, linear_out{nullptr};
  LoraLinear linear_pos{nullptr};        // no bias
  torch::Tensor pos_bias_u, pos_bias_v;  // (H, d_k)

 private:
  int64_t h_, d_k_;
  double dropout_rate_;
};
TORCH_MODULE(RelPositionMultiHeadedAttention);

// A fresh seed for the attention kernel's dropout from libtorch's default CPU generator (so
// torch::manual_seed makes training runs repeatable, as for at::dropout).
uint64_t attention_dropout_seed();

}  // namespace mmref::models
