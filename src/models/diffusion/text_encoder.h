// Text conditioning for the diffusion UNet (encoder_hidden_states):
//   TextVocab          a word- or character-level vocabulary over the training captions (<pad> = 0,
//                      <unk> = 1, then the tokens sorted), with padding to (B, L) ids + mask;
//   TextEncoder        a small transformer trained jointly with the UNet: token embedding + learned
//                      positions + N pre-LN layers (self-attention with a key padding mask, GELU MLP) + a
//                      final LayerNorm. Padded positions come out as zeros and never influence the others.
//                      Names follow Hugging Face's CLIPTextModel (embeddings.token_embedding,
//                      encoder.layers.N.self_attn.q_proj, ..., final_layer_norm);
//   ClipTextAdapter    CLIP's text tower (models/clip/clip_model.h ClipTransformer, OpenAI names) returning
//                      last_hidden_state (ln_final of the causal transformer, no EOT pooling or projection),
//                      what Stable Diffusion feeds its UNet. Loads OpenAI CLIP, Hugging Face CLIPModel or
//                      text-only CLIPTextModel files (e.g. SD 1.5's text_encoder/model.safetensors).
// Attention goes through kernels/dispatch.h (attention_backend); projections are models::LoraLinear.
//
// Ref: Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (2021);
// transformers models/clip/modeling_clip.py (CLIPTextTransformer: names and last_hidden_state).
// Tests: tests/models/unet2d_test.cpp (suite TextEncoder).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"
#include "models/clip/clip_model.h"
#include "models/common/lora.h"

namespace mmref::config {
class Reader;
}

namespace mmref::diffusion {

// ---------------------------------------------------------------- vocabulary
struct TokenBatch {
  torch::Tensor ids;   // (B, L) int64, padded with pad_id
  torch::Tensor mask;  // (B, L) bool, true at real tokens
};

class TextVocab {
 public:
  enum class Level { kWord, kChar };
  static constexpr int64_t kPadId = 0;
  static constexpr int64_t kUnkId = 1;

  // Word level: lower-cased, split at anything that is not a letter or digit (ASCII; other bytes are kept
  // inside words). Char level: every byte of the lower-cased text, spaces included.
  static TextVocab build(const std::vector<std::string>& texts, Level level);
  // tokens[0] must be "<pad>" and tokens[1] "<unk>" (what tokens() returns).
  TextVocab(std::vector<std::string> tokens, Level level);

  std::vector<int64_t> encode(const std::string& text) const;  // unknown tokens -> kUnkId
  // Pads (or truncates) every text to max(lengths) <= max_length tokens; an empty text keeps one <pad>
  // position with mask false.
  TokenBatch encode_batch(const std::vector<std::string>& texts, int64_t max_length) const;
  std::vector<std::string> split(const std::string& text) const;

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  Level level() const { return level_; }

  // {"level": "word"|"char", "tokens": [...]} (atomic write); load throws mmref::Error naming the file.
  void save_json(const std::string& path) const;
  static TextVocab load_json(const std::string& path);

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> index_;
  Level level_;
};

// ---------------------------------------------------------------- jointly trained encoder
struct TextEncoderConfig {
  int64_t vocab_size = 256;
  int64_t max_length = 32;  // rows of the position table: the longest input
  int64_t width = 64;       // = the UNet's cross_attention_dim
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t mlp_ratio = 4;  // MLP hidden = mlp_ratio * width
  double dropout = 0.0;   // on attention outputs and MLP hidden (training only)
  double layer_norm_eps = 1e-5;
  int64_t pad_id = 0;   // ids == pad_id are padding when forward gets no mask
  bool causal = false;  // CLIP-style causal self-attention instead of bidirectional

  void validate() const;  // throws mmref::ConfigError naming the field
};

// Unknown keys are errors with a suggestion.
void parse(config::Reader& r, TextEncoderConfig& c);

class TextSelfAttentionImpl : public torch::nn::Module {
 public:
  TextSelfAttentionImpl(int64_t width, int64_t heads, double dropout);
  // x (B, L, W), key bias (B, 1, 1, L) with -inf at padding (or none) -> (B, L, W).
  torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& bias, bool causal,
                        kernels::AttentionBackend backend);
  models::LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_;
  double dropout_;
};
TORCH_MODULE(TextSelfAttention);

class TextEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit TextEncoderLayerImpl(const TextEncoderConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& bias, bool causal,
                        kernels::AttentionBackend backend);  // (B, L, W) -> (B, L, W)
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  TextSelfAttention self_attn{nullptr};
  std::shared_ptr<torch::nn::Module> mlp;
  models::LoraLinear fc1{nullptr}, fc2{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(TextEncoderLayer);

class TextEncoderImpl : public torch::nn::Module {
 public:
  explicit TextEncoderImpl(const TextEncoderConfig& c);
  // ids (B, L) integer in [0, vocab_size), L <= max_length; mask (B, L) bool/int (true = token) or
  // undefined (then ids != pad_id). Returns (B, L, width) with zeros at padded positions.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask = {});
  const TextEncoderConfig& config() const { return c_; }

  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;

  std::shared_ptr<torch::nn::Module> embeddings, encoder;
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};

 private:
  TextEncoderConfig c_;
};
TORCH_MODULE(TextEncoder);

// ---------------------------------------------------------------- CLIP text tower
struct ClipTextConfig {
  int64_t vocab_size = 49408, context_length = 77, width = 768, heads = 12, layers = 12;  // ViT-L/14 (SD 1.5)
  // Sizes from OpenAI-named text weights (token_embedding.weight, positional_embedding, ln_final.weight,
  // transformer.resblocks.N.*); heads = width / 64 unless heads > 0.
  static ClipTextConfig infer(const std::map<std::string, at::Tensor>& openai_text_state_dict,
                              int64_t heads = 0);
};

// OpenAI or Hugging Face (CLIPModel / CLIPTextModel) CLIP weights, or the text tower's OpenAI names alone
// -> the text tower's OpenAI-named tensors (vision tower, projections and logit_scale dropped).
std::map<std::string, at::Tensor> clip_text_state_dict(const std::map<std::string, at::Tensor>& sd);

class ClipTextAdapterImpl : public torch::nn::Module {
 public:
  explicit ClipTextAdapterImpl(const ClipTextConfig& c);
  void load(const std::map<std::string, at::Tensor>& state_dict);  // any format clip_text_state_dict takes
  void load(const std::string& path);

  // ids (N, L) CLIP token ids, 1 <= L <= context_length -> last_hidden_state (N, L, width).
  torch::Tensor forward(const torch::Tensor& ids);
  const ClipTextConfig& config() const { return c_; }

  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;

  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;
  models::ClipTransformer transformer{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};

 private:
  ClipTextConfig c_;
};
TORCH_MODULE(ClipTextAdapter);

}  // namespace mmref::diffusion
