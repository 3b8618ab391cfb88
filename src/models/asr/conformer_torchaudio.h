// torchaudio's Conformer (torchaudio.models.Conformer): a stack of ConformerLayers on (B, T, D) frames
// without subsampling or positional encoding, with torchaudio's exact state_dict names:
//   conformer_layers.N.ffn1.sequential.{0: LayerNorm, 1: Linear D->ffn, 4: Linear ffn->D}   (ffn2 alike)
//   conformer_layers.N.self_attn_layer_norm.*
//   conformer_layers.N.self_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}
//   conformer_layers.N.conv_module.layer_norm.*
//   conformer_layers.N.conv_module.sequential.{0: pointwise Conv1d D->2D, 2: depthwise Conv1d k,
//                                              3: BatchNorm1d (or GroupNorm(1) with use_group_norm),
//                                              5: pointwise Conv1d D->D}
//   conformer_layers.N.final_layer_norm.*
// One layer:  x = x + 0.5 FFN1(x);  [x = x + Conv(x) if convolution_first]
//             x = x + MHSA(LN(x), key padding);  [x = x + Conv(x) otherwise]
//             x = x + 0.5 FFN2(x);  x = LN_final(x)
// with Conv(x) = pw2(SiLU(BN(dw(GLU(pw1(LN(x))))))). As in torchaudio, padded frames are not zeroed
// before the depthwise conv, so the last valid frames see padded-frame values (reference behaviour:
// compare valid frames only, and a padded batch is not equal to unpadded utterances near their ends).
// Attention (k_lengths key padding), the depthwise conv and, with use_group_norm, the fused
// GroupNorm + SiLU go through kernels/dispatch.h.
//
// Ref: pytorch/audio 0.13.1 torchaudio/models/conformer.py; torch.nn.MultiheadAttention (names, init).
// Tests: tests/models/conformer_golden_test.cpp (../shared/golden/conformer_torchaudio), conformer_test.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"
#include "kernels/conv/conv.h"
#include "models/common/lora.h"

namespace mmref::config {
class Reader;
}

namespace mmref::models {

// Conformer's constructor arguments (torchaudio names; no defaults there for the first five).
struct TorchaudioConformerConfig {
  int64_t input_dim = 80;
  int64_t num_heads = 4;
  int64_t ffn_dim = 128;
  int64_t num_layers = 4;
  int64_t depthwise_conv_kernel_size = 31;  // odd ("SAME" padding)
  double dropout = 0.0;
  bool use_group_norm = false;
  bool convolution_first = false;

  void validate() const;  // throws mmref::ConfigError naming the field
};
void parse(config::Reader& r, TorchaudioConformerConfig& c);

// _FeedForwardModule: sequential = LayerNorm, Linear, SiLU, Dropout, Linear, Dropout.
class TorchaudioFeedForwardImpl : public torch::nn::Module {
 public:
  TorchaudioFeedForwardImpl(int64_t input_dim, int64_t hidden_dim, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, D) -> (B, T, D)

  torch::nn::LayerNorm norm{nullptr};     // sequential.0
  LoraLinear fc1{nullptr}, fc2{nullptr};  // sequential.1, sequential.4

 private:
  double dropout_;
};
TORCH_MODULE(TorchaudioFeedForward);

// _ConvolutionModule (bias on, as ConformerLayer builds it).
class TorchaudioConvolutionModuleImpl : public torch::nn::Module {
 public:
  TorchaudioConvolutionModuleImpl(int64_t input_dim, int64_t kernel_size, double dropout,
                                  bool use_group_norm);
  torch::Tensor forward(const torch::Tensor& x, kernels::ConvBackend backend);  // (B, T, D) -> (B, T, D)

  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::Conv1d pointwise1{nullptr}, depthwise{nullptr}, pointwise2{nullptr};  // sequential.0, .2, .5
  torch::nn::BatchNorm1d batch_norm{nullptr};                                      // sequential.3
  torch::nn::GroupNorm group_norm{nullptr};  // sequential.3 with use_group_norm

 private:
  kernels::DepthwiseConv1dOptions dw_;
  double dropout_;
};
TORCH_MODULE(TorchaudioConvolutionModule);

// nn.MultiheadAttention (batch-first here) with packed in_proj_weight / in_proj_bias and out_proj.
class TorchaudioSelfAttentionImpl : public torch::nn::Module {
 public:
  TorchaudioSelfAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout);
  // x (B, T, D), k_lengths (B,) valid keys or none -> (B, T, D).
  torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& k_lengths,
                        kernels::AttentionBackend backend);

  torch::Tensor in_proj_weight, in_proj_bias;  // (3D, D), (3D)
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
  double dropout_;
};
TORCH_MODULE(TorchaudioSelfAttention);

struct TorchaudioBackends {
  kernels::AttentionBackend attention = kernels::AttentionBackend::kMmref;
  kernels::ConvBackend conv = kernels::ConvBackend::kMmref;
};

class TorchaudioConformerLayerImpl : public torch::nn::Module {
 public:
  explicit TorchaudioConformerLayerImpl(const TorchaudioConformerConfig& c);
  torch::Tensor forward(torch::Tensor x, const std::optional<torch::Tensor>& k_lengths,
                        const TorchaudioBackends& backends);  // (B, T, D) -> (B, T, D)

  TorchaudioFeedForward ffn1{nullptr}, ffn2{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  TorchaudioSelfAttention self_attn{nullptr};
  TorchaudioConvolutionModule conv_module{nullptr};

 private:
  double dropout_;
  bool convolution_first_;
};
TORCH_MODULE(TorchaudioConformerLayer);

class TorchaudioConformerImpl : public torch::nn::Module {
 public:
  explicit TorchaudioConformerImpl(const TorchaudioConformerConfig& c);
  void load(const std::map<std::string, at::Tensor>& state_dict);  // strict
  void load(const std::string& path);

  // x (B, T, input_dim), lengths (B,) int64 valid frames (<= T) -> {y (B, T, input_dim), lengths}.
  // Throws mmref::Error naming the shapes on a wrong feature dim or lengths.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& lengths);

  int64_t output_size() const { return c_.input_dim; }
  const TorchaudioConformerConfig& config() const { return c_; }
  TorchaudioBackends backends;

  torch::nn::ModuleList conformer_layers{nullptr};

 private:
  TorchaudioConformerConfig c_;
};
TORCH_MODULE(TorchaudioConformer);

}  // namespace mmref::models
