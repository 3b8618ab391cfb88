// wenet's relative positional encoding and relative-position self-attention; see rel_attention.h.
#include "models/asr/rel_attention.h"

#include <cmath>
#include <limits>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/init.h>

#include "core/error.h"
#include "kernels/dispatch.h"

namespace mmref::models {

using torch::Tensor;

Tensor sinusoid_position_table(int64_t max_len, int64_t d_model) {
  // Same float32 ops as wenet's PositionalEncoding.__init__, so a computed table equals a stored one.
  const Tensor position = at::arange(0, max_len, at::kFloat).unsqueeze(1);  // (L, 1)
  const Tensor div_term =
      at::exp(at::arange(0, d_model, 2, at::kFloat) * static_cast<float>(-(std::log(10000.0) / d_model)));
  Tensor pe = at::zeros({max_len, d_model});
  pe.slice(1, 0, d_model, 2).copy_(at::sin(position * div_term));  // (L, ceil(D/2))
  pe.slice(1, 1, d_model, 2).copy_(at::cos(position * div_term).slice(1, 0, d_model / 2));
  return pe.unsqueeze(0);  // (1, L, D)
}

RelPositionalEncodingImpl::RelPositionalEncodingImpl(int64_t d_model, double dropout_rate, int64_t max_len)
    : d_model_(d_model), max_len_(max_len), dropout_rate_(dropout_rate) {
  if (d_model < 1 || max_len < 1)
    MMREF_FAIL("RelPositionalEncoding: d_model {} and max_len {} must be >= 1", d_model, max_len);
  pe = register_buffer("pe", sinusoid_position_table(max_len, d_model));
}

Tensor RelPositionalEncodingImpl::position_encoding(int64_t offset, int64_t size) const {
  if (offset < 0 || offset + size > max_len_) {
    MMREF_FAIL(
        "RelPositionalEncoding: positions [{}, {}) exceed the table of {} (max_len); the utterance is too "
        "long for this model",
        offset, offset + size, max_len_);
  }
  return pe.slice(1, offset, offset + size);  // (1, size, D)
}

std::pair<Tensor, Tensor> RelPositionalEncodingImpl::forward(const Tensor& x, int64_t offset) {
  Tensor pos_emb = position_encoding(offset, x.size(1)).to(x.dtype());  // (1, T, D)
  Tensor y = x * std::sqrt(static_cast<double>(d_model_));              // (B, T, D)
  if (is_training() && dropout_rate_ > 0) {
    y = at::dropout(y, dropout_rate_, /*train=*/true);
    pos_emb = at::dropout(pos_emb, dropout_rate_, /*train=*/true);
  }
  return {y, pos_emb};
}

uint64_t attention_dropout_seed() {
  return static_cast<uint64_t>(
      at::randint(std::numeric_limits<int64_t>::max(), {1}, at::TensorOptions().dtype(at::kLong))
          .item<int64_t>());
}

RelPositionMultiHeadedAttentionImpl::RelPositionMultiHeadedAttentionImpl(int64_t n_head, int64_t n_feat,
                                                                         double dropout_rate)
    : h_(n_head), d_k_(n_head > 0 ? n_feat / n_head : 0), dropout_rate_(dropout_rate) {
  if (n_head < 1 || n_feat % n_head != 0) {
    MMREF_FAIL("RelPositionMultiHeadedAttention: {} features are not divisible by {} heads", n_feat, n_head);
  }
  linear_q = register_module("linear_q", LoraLinear(n_feat, n_feat));
  linear_k = register_module("linear_k", LoraLinear(n_feat, n_feat));
  linear_v = register_module("linear_v", LoraLinear(n_feat, n_feat));
  linear_out = register_module("linear_out", LoraLinear(n_feat, n_feat));
  linear_pos = register_module("linear_pos", LoraLinear(n_feat, n_feat, /*bias=*/false));
  pos_bias_u = register_parameter("pos_bias_u", at::empty({h_, d_k_}));
  pos_bias_v = register_parameter("pos_bias_v", at::empty({h_, d_k_}));
  torch::nn::init::xavier_uniform_(pos_bias_u);
  torch::nn::init::xavier_uniform_(pos_bias_v);
}

Tensor RelPositionMultiHeadedAttentionImpl::forward(const Tensor& x, const Tensor& pos_emb,
                                                    const std::optional<Tensor>& k_lengths,
                                                    kernels::AttentionBackend backend,
                                                    const Tensor& mask_bias) {
  const int64_t b = x.size(0), t = x.size(1);
  if (pos_emb.dim() != 3 || pos_emb.size(1) != t || pos_emb.size(2) != x.size(2)) {
    MMREF_FAIL(
        "RelPositionMultiHeadedAttention: pos_emb [{}] must be (1 or B, {}, {}) for x [{}] (no rel-shift: "
        "one embedding per key position)",
        fmt::join(pos_emb.sizes(), ", "), t, x.size(2), fmt::join(x.sizes(), ", "));
  }
  const Tensor q = linear_q->forward(x).view({b, t, h_, d_k_});                  // (B, T, H, dk)
  const Tensor k = linear_k->forward(x).view({b, t, h_, d_k_}).transpose(1, 2);  // (B, H, T, dk)
  const Tensor v = linear_v->forward(x).view({b, t, h_, d_k_}).transpose(1, 2);  // (B, H, T, dk)
  const Tensor p =
      linear_pos->forward(pos_emb).view({pos_emb.size(0), t, h_, d_k_}).transpose(1, 2);  // (Bp, H, T, dk)
  const Tensor q_u = (q + pos_bias_u).transpose(1, 2);                                    // (B, H, T, dk)
  const Tensor q_v = (q + pos_bias_v).transpose(1, 2);                                    // (B, H, T, dk)
  const double scale = 1.0 / std::sqrt(static_cast<double>(d_k_));
  kernels::AttentionOptions o;
  o.scale = scale;
  o.bias = at::matmul(q_v, p.transpose(-2, -1)) * scale;  // (B, H, T, T)
  if (mask_bias.defined()) o.bias = *o.bias + mask_bias;  // chunk mask: -inf where a frame may not look
  if (k_lengths.has_value()) o.k_lengths = *k_lengths;
  if (is_training() && dropout_rate_ > 0) {
    o.dropout_p = dropout_rate_;
    o.seed = attention_dropout_seed();
  }
  const Tensor y = kernels::attention(q_u, k, v, o, backend);                // (B, H, T, dk)
  return linear_out->forward(y.transpose(1, 2).reshape({b, t, h_ * d_k_}));  // (B, T, D)
}

}  // namespace mmref::models
