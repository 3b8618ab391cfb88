// wenet's ConformerEncoder: optional global CMVN, a subsampling input layer with relative positional
// encoding (subsampling.h), num_blocks ConformerEncoderLayers and after_norm, with wenet's exact
// parameter names so the `encoder.*` part of a wenet checkpoint loads as is:
//   global_cmvn.{mean,istd}  embed.conv.0.weight  embed.out.0.weight  embed.pos_enc.pe
//   encoders.N.self_attn.{linear_q,linear_k,linear_v,linear_out,linear_pos}.*  .pos_bias_u  .pos_bias_v
//   encoders.N.feed_forward{,_macaron}.{w_1,w_2}.*
//   encoders.N.conv_module.{pointwise_conv1,depthwise_conv,norm,pointwise_conv2}.*
//   encoders.N.{norm_ff,norm_mha,norm_ff_macaron,norm_conv,norm_final}.*   after_norm.*
// One layer (normalize_before = true; post-norm moves each norm after its residual add):
//   x = x + ff_scale * FFN_macaron(LN(x))        ff_scale = 0.5 with macaron_style, else 1 (no FFN_macaron)
//   x = x + RelPosMHSA(LN(x), pos_emb, key padding)
//   x = x + Conv(LN(x))                          pointwise 2C, GLU, depthwise k, BN|LN, act, pointwise;
//                                                padded frames zeroed at its input and output (mask_pad)
//   x = x + ff_scale * FFN(LN(x));  x = LN_final(x)   (norm_final only with the conv module)
// Attention has a key padding mask and, for streaming, wenet's chunk masks (chunk_mask.h: static chunks,
// dynamic chunk training, decoding_chunk_size / num_decoding_left_chunks at inference). Padding (eval mode): keys are masked, subsampling reads only valid input frames
// for valid output frames, and the conv module zeroes padded frames at its input -- but before
// pointwise_conv1, whose bias turns them into glu(bias) != 0, which the symmetric depthwise conv then
// reads across the end of each utterance (where an unpadded utterance sees zero padding). So, exactly
// as in wenet, a padded batch equals each utterance alone only with a causal conv module, or with a
// zero pointwise_conv1 bias; otherwise the last valid frames differ slightly (compare valid frames of
// the same batch layout, as the golden fixture does).
// Beyond the reference: layer_drop_prob (stochastic depth as ESPnet's ConformerEncoderLayer: in training
// a layer is skipped with that probability and its residual branches scaled by 1 / (1 - p); inference
// runs every layer unscaled). Attention and depthwise conv go through kernels/dispatch.h.
//
// Ref: wenet-e2e/wenet 015469960db7 wenet/models/transformer/{encoder.py (BaseEncoder, ConformerEncoder),
// encoder_layer.py (ConformerEncoderLayer), convolution.py (ConvolutionModule), positionwise_feed_forward.py,
// cmvn.py (GlobalCMVN)}; espnet2 conformer encoder_layer.py (stochastic_depth_rate); Gulati et al.,
// "Conformer" (2020).
// Tests: tests/models/conformer_golden_test.cpp (../shared/golden/conformer_wenet), conformer_test.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"
#include "kernels/conv/conv.h"
#include "models/asr/chunk_mask.h"
#include "models/asr/rel_attention.h"
#include "models/asr/subsampling.h"
#include "models/common/lora.h"

namespace mmref::config {
class Reader;
}

namespace mmref::models {

// ConformerEncoder's constructor arguments (wenet's encoder_conf names and defaults).
struct WenetConformerConfig {
  int64_t input_size = 80;
  int64_t output_size = 256;
  int64_t attention_heads = 4;
  int64_t linear_units = 2048;
  int64_t num_blocks = 6;
  double dropout_rate = 0.1;
  double positional_dropout_rate = 0.1;
  double attention_dropout_rate = 0.0;
  std::string input_layer = "conv2d";                     // conv2d | conv2d6 | conv2d8 | linear
  std::string pos_enc_layer_type = "rel_pos";             // only rel_pos
  std::string selfattention_layer_type = "rel_selfattn";  // only rel_selfattn
  bool normalize_before = true;
  bool macaron_style = true;
  bool use_cnn_module = true;
  int64_t cnn_module_kernel = 15;              // odd unless causal
  bool causal = false;                         // causal depthwise conv (left padding k - 1)
  std::string cnn_module_norm = "batch_norm";  // batch_norm | layer_norm
  std::string activation_type = "swish";       // swish | relu | gelu | tanh
  bool global_cmvn = false;                    // global_cmvn.{mean,istd} buffers (x - mean) * istd
  double layer_drop_prob = 0.0;                // mmref: stochastic depth, training only
  int64_t max_len = 5000;                      // rows of embed.pos_enc.pe
  // Streaming (chunk_mask.h): chunk attention masks in training and inference.
  int64_t static_chunk_size = 0;               // > 0: fixed chunks of that many output frames
  bool use_dynamic_chunk = false;              // U2 dynamic chunk training (random chunk per batch)
  bool use_dynamic_left_chunk = false;         // random number of left chunks too

  // Range and consistency checks; throws mmref::ConfigError naming the field.
  void validate() const;
};

// Reads an encoder_conf map (wenet's key names, chunk training keys included; unknown keys are errors
// with a suggestion).
void parse(config::Reader& r, WenetConformerConfig& c);

// Named presets: "tiny" (144 dims, 4 heads, 256 units, 6 blocks, kernel 15: the benchmark model) and
// "aishell" (wenet examples/aishell/s0 conf/train_conformer.yaml: 256, 4, 2048, 12 blocks, kernel 15).
WenetConformerConfig wenet_conformer_preset(const std::string& name, int64_t input_size = 80);

enum class WenetActivation { kSwish, kRelu, kGelu, kTanh };

// wenet PositionwiseFeedForward: w_2(dropout(act(w_1(x)))).
class WenetFeedForwardImpl : public torch::nn::Module {
 public:
  WenetFeedForwardImpl(int64_t idim, int64_t hidden, double dropout_rate, WenetActivation act);
  torch::Tensor forward(const torch::Tensor& x);  // (B, T, D) -> (B, T, D)

  LoraLinear w_1{nullptr}, w_2{nullptr};

 private:
  double dropout_rate_;
  WenetActivation act_;
};
TORCH_MODULE(WenetFeedForward);

// wenet ConvolutionModule (conv_inner_factor 2, bias on). Causal: wenet pads lorder = k - 1 zero frames
// on the left BEFORE pointwise_conv1, so the depthwise conv's left context is glu(pointwise_conv1.bias),
// not zeros; this is reproduced by prepending k - 1 such frames and running a valid depthwise conv.
class WenetConvolutionModuleImpl : public torch::nn::Module {
 public:
  WenetConvolutionModuleImpl(int64_t channels, int64_t kernel_size, bool use_layer_norm, bool causal,
                             WenetActivation act);
  // x (B, T, C), padded (B, T, 1) bool (true at padding) or undefined (nothing padded) -> (B, T, C) with
  // padded frames zeroed.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& padded, kernels::ConvBackend backend);

  torch::nn::Conv1d pointwise_conv1{nullptr}, depthwise_conv{nullptr}, pointwise_conv2{nullptr};
  torch::nn::BatchNorm1d batch_norm{nullptr};  // registered as "norm"
  torch::nn::LayerNorm layer_norm{nullptr};    // registered as "norm"

 private:
  kernels::DepthwiseConv1dOptions dw_;  // "same", or no padding (causal: the frames are prepended)
  WenetActivation act_;
  int64_t lorder_;  // k - 1 when causal, else 0
};
TORCH_MODULE(WenetConvolutionModule);

struct WenetLayerContext {
  torch::Tensor pos_emb;                   // (1, T, D)
  std::optional<torch::Tensor> k_lengths;  // (B,) valid frames; none when nothing is padded
  torch::Tensor chunk_bias;                // (T, T) 0 / -inf chunk attention mask; undefined: full context
  torch::Tensor padded;                    // (B, T, 1) bool, true at padding; undefined when none
  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;
  kernels::ConvBackend conv_backend = kernels::ConvBackend::kMmref;
};

class WenetConformerEncoderLayerImpl : public torch::nn::Module {
 public:
  WenetConformerEncoderLayerImpl(const WenetConformerConfig& c);
  torch::Tensor forward(torch::Tensor x, const WenetLayerContext& ctx);  // (B, T, D) -> (B, T, D)

  RelPositionMultiHeadedAttention self_attn{nullptr};
  WenetFeedForward feed_forward{nullptr}, feed_forward_macaron{nullptr};
  WenetConvolutionModule conv_module{nullptr};
  torch::nn::LayerNorm norm_ff{nullptr}, norm_mha{nullptr}, norm_ff_macaron{nullptr}, norm_conv{nullptr},
      norm_final{nullptr};

 private:
  double ff_scale_, dropout_rate_, layer_drop_prob_;
  bool normalize_before_;
};
TORCH_MODULE(WenetConformerEncoderLayer);

struct WenetEncoderOutput {
  torch::Tensor y;        // (B, T', D) encoder output; frames t >= lengths[b] are padding
  torch::Tensor lengths;  // (B,) int64 valid output frames
  torch::Tensor masks;    // (B, 1, T') bool, true = valid: what wenet's encoder returns
  torch::Tensor embed_x;  // (B, T', D) the embed output before the layers (debug)
  torch::Tensor pos_emb;  // (1, T', D) (debug)
};

class WenetConformerEncoderImpl : public torch::nn::Module {
 public:
  explicit WenetConformerEncoderImpl(const WenetConformerConfig& c);
  // Strict load of encoder weights. A full wenet ASRModel checkpoint is accepted too: when keys start
  // with "encoder.", only those are taken (prefix stripped) and decoder/ctc keys are ignored.
  void load(const std::map<std::string, at::Tensor>& state_dict);
  void load(const std::string& path);  // .pt/.pth (torch.save) or .safetensors

  // x (B, T, input_size) features, lengths (B,) int64 valid frames (<= T).
  WenetEncoderOutput forward(const torch::Tensor& x, const torch::Tensor& lengths);

  int64_t output_size() const { return c_.output_size; }
  int64_t subsampling_rate() const;
  const WenetConformerConfig& config() const { return c_; }

  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;
  kernels::ConvBackend conv_backend = kernels::ConvBackend::kMmref;
  // Inference-time streaming (wenet's decoding_chunk_size / num_decoding_left_chunks): chunk size in
  // output frames (<= 0: full context, or the static chunk size), left chunks (< 0: all).
  int64_t decoding_chunk_size = 0;
  int64_t num_decoding_left_chunks = -1;

  std::shared_ptr<torch::nn::Module> global_cmvn;  // buffers mean, istd (input_size), with config.global_cmvn
  torch::Tensor cmvn_mean, cmvn_istd;
  WenetSubsampling embed{nullptr};
  torch::nn::ModuleList encoders{nullptr};
  torch::nn::LayerNorm after_norm{nullptr};

 private:
  WenetConformerConfig c_;
};
TORCH_MODULE(WenetConformerEncoder);

}  // namespace mmref::models
