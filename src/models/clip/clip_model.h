// CLIP (openai/CLIP clip/model.py, the ViT variant): image tower (patch conv, class token, pre/post
// LayerNorm, transformer, projection) and text tower (token + position embeddings, causal transformer,
// final LayerNorm, EOT pooling, projection), QuickGELU MLPs, with OpenAI's parameter names
// (visual.conv1.weight, visual.transformer.resblocks.0.attn.in_proj_weight, token_embedding.weight,
// text_projection, logit_scale, ...) so official checkpoints load; Hugging Face CLIPModel files
// (vision_model.* / text_model.* / *_projection.weight) are mapped onto them on load.
//
// Attention goes through the kernel dispatch layer (kernels::attention, causal for text).
// Ref: openai/CLIP model.py (VisionTransformer, Transformer, CLIP.encode_image/encode_text/forward,
// build_model's shape inference); transformers models/clip/modeling_clip.py (key names only).
// Tests: tests/models/clip_golden_test.cpp.
#pragma once
#include <map>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"

namespace mmref::models {

struct ClipConfig {
  int64_t embed_dim = 512;
  int64_t image_resolution = 224;
  int64_t vision_layers = 12, vision_width = 768, vision_patch_size = 32;  // vision heads = width / 64
  int64_t context_length = 77, vocab_size = 49408;
  int64_t transformer_width = 512, transformer_heads = 8, transformer_layers = 12;
  // As build_model: every size from the weights' shapes; text heads = width / 64 unless text_heads > 0.
  static ClipConfig infer(const std::map<std::string, at::Tensor>& openai_state_dict, int64_t text_heads = 0);
};

// nn.MultiheadAttention's parameters (in_proj_weight, in_proj_bias, out_proj.weight/bias), computed by
// the dispatch layer's attention on (B, H, L, D).
class ClipAttentionImpl : public torch::nn::Module {
 public:
  ClipAttentionImpl(int64_t width, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, bool causal, kernels::AttentionBackend backend);  // (B, L, W)

 private:
  int64_t heads_;
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(ClipAttention);

class ClipTransformerImpl : public torch::nn::Module {
 public:
  ClipTransformerImpl(int64_t width, int64_t layers, int64_t heads);
  torch::Tensor forward(torch::Tensor x, bool causal, kernels::AttentionBackend backend);  // (B, L, W)

 private:
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(ClipTransformer);

class ClipModelImpl : public torch::nn::Module {
 public:
  explicit ClipModelImpl(const ClipConfig& c);
  // OpenAI names or Hugging Face CLIPModel names (mapped); strict apart from HF's position_ids buffers.
  void load(const std::map<std::string, at::Tensor>& state_dict);
  void load(const std::string& path);
  // For training from scratch: openai/CLIP's CLIP.initialize_parameters (token embedding N(0, 0.02),
  // text positions N(0, 0.01), text blocks' in_proj / out_proj / c_fc / c_proj with its attn, proj and fc
  // stds, text_projection N(0, width^-0.5)), VisionTransformer's width^-0.5-scaled class and position
  // embeddings and projection, attention biases zero, logit_scale log(1/0.07). Uses the global generator.
  void initialize_parameters();

  // (N, 3, R, R) already normalized with CLIP's mean/std -> (N, embed_dim), not normalized.
  torch::Tensor encode_image(const torch::Tensor& image);
  // (N, context) token ids -> (N, embed_dim), not normalized (features at the argmax id, the EOT).
  torch::Tensor encode_text(const torch::Tensor& text);
  // logits_per_image (N_img, N_txt) = exp(logit_scale) x cosine similarities.
  torch::Tensor logits_per_image(const torch::Tensor& image, const torch::Tensor& text);

  const ClipConfig& config() const { return c_; }
  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;

 private:
  ClipConfig c_;
  // visual.*
  std::shared_ptr<torch::nn::Module> visual;
  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, vis_pos, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  ClipTransformer vis_transformer{nullptr};
  // text
  ClipTransformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection, logit_scale;
  torch::nn::LayerNorm ln_final{nullptr};
};
TORCH_MODULE(ClipModel);

// Hugging Face CLIPModel keys -> OpenAI keys (q/k/v projections concatenated into in_proj_*, projection
// matrices transposed). OpenAI keys pass through unchanged.
std::map<std::string, at::Tensor> clip_openai_state_dict(const std::map<std::string, at::Tensor>& sd);

// CLIP image preprocessing: resize the short side to `size` (bicubic, antialiased, as PIL's BICUBIC),
// center crop size x size, normalise with CLIP's mean/std. (N, 3, H, W) in [0, 1] -> (N, 3, size, size).
torch::Tensor clip_preprocess(const torch::Tensor& images01, int64_t size);

}  // namespace mmref::models
