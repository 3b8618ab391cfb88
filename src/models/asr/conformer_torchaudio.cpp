// torchaudio's Conformer; see conformer_torchaudio.h.
#include "models/asr/conformer_torchaudio.h"

#include <cmath>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/init.h>

#include "core/config.h"
#include "core/error.h"
#include "core/state_dict.h"
#include "kernels/dispatch.h"
#include "models/asr/rel_attention.h"

namespace mmref::models {

using torch::Tensor;

namespace {

Tensor maybe_dropout(const Tensor& x, double p, bool training) {
  return training && p > 0 ? at::dropout(x, p, /*train=*/true) : x;
}

torch::nn::LayerNorm layer_norm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5));
}

[[noreturn]] void config_fail(const std::string& what) {
  throw ConfigError("torchaudio conformer config: " + what);
}

}  // namespace

// ---------------------------------------------------------------- config
void TorchaudioConformerConfig::validate() const {
  if (input_dim < 1) config_fail(fmt::format("input_dim must be >= 1, got {}", input_dim));
  if (num_heads < 1 || input_dim % num_heads != 0) {
    config_fail(fmt::format("input_dim {} must be divisible by num_heads {}", input_dim, num_heads));
  }
  if (ffn_dim < 1) config_fail(fmt::format("ffn_dim must be >= 1, got {}", ffn_dim));
  if (num_layers < 0) config_fail(fmt::format("num_layers must be >= 0, got {}", num_layers));
  if (depthwise_conv_kernel_size < 1 || depthwise_conv_kernel_size % 2 == 0) {
    config_fail(fmt::format("depthwise_conv_kernel_size must be odd to achieve 'SAME' padding, got {}",
                            depthwise_conv_kernel_size));
  }
  if (!(dropout >= 0 && dropout < 1)) config_fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
}

void parse(config::Reader& r, TorchaudioConformerConfig& c) {
  r.opt("input_dim", c.input_dim, config::Range::at_least(1));
  r.opt("num_heads", c.num_heads, config::Range::at_least(1));
  r.opt("ffn_dim", c.ffn_dim, config::Range::at_least(1));
  r.opt("num_layers", c.num_layers, config::Range::at_least(0));
  r.opt("depthwise_conv_kernel_size", c.depthwise_conv_kernel_size, config::Range::at_least(1));
  r.opt("dropout", c.dropout, config::Range::between(0, 0.999));
  r.opt("use_group_norm", c.use_group_norm);
  r.opt("convolution_first", c.convolution_first);
  r.finish();
  if (c.input_dim % c.num_heads != 0) r.fail("num_heads", "must divide input_dim");
  if (c.depthwise_conv_kernel_size % 2 == 0) r.fail("depthwise_conv_kernel_size", "must be odd");
  c.validate();
}

// ---------------------------------------------------------------- feed-forward
TorchaudioFeedForwardImpl::TorchaudioFeedForwardImpl(int64_t input_dim, int64_t hidden_dim, double dropout)
    : dropout_(dropout) {
  auto seq = register_module("sequential", std::make_shared<torch::nn::Module>());
  norm = seq->register_module("0", layer_norm(input_dim));
  fc1 = seq->register_module("1", LoraLinear(input_dim, hidden_dim));
  fc2 = seq->register_module("4", LoraLinear(hidden_dim, input_dim));
}

Tensor TorchaudioFeedForwardImpl::forward(const Tensor& x) {
  const bool train = is_training();
  Tensor h = maybe_dropout(at::silu(fc1->forward(norm->forward(x))), dropout_, train);  // (B, T, F)
  return maybe_dropout(fc2->forward(h), dropout_, train);                               // (B, T, D)
}

// ---------------------------------------------------------------- convolution module
TorchaudioConvolutionModuleImpl::TorchaudioConvolutionModuleImpl(int64_t input_dim, int64_t kernel_size,
                                                                 double dropout, bool use_group_norm)
    : dw_(kernels::DepthwiseConv1dOptions::padding("same", kernel_size)), dropout_(dropout) {
  using torch::nn::Conv1dOptions;
  layer_norm = register_module("layer_norm", models::layer_norm(input_dim));
  auto seq = register_module("sequential", std::make_shared<torch::nn::Module>());
  pointwise1 = seq->register_module("0", torch::nn::Conv1d(Conv1dOptions(input_dim, 2 * input_dim, 1)));
  depthwise = seq->register_module(
      "2",
      torch::nn::Conv1d(
          Conv1dOptions(input_dim, input_dim, kernel_size).groups(input_dim).padding((kernel_size - 1) / 2)));
  if (use_group_norm) {
    group_norm = seq->register_module("3", torch::nn::GroupNorm(torch::nn::GroupNormOptions(1, input_dim)));
  } else {
    batch_norm = seq->register_module("3", torch::nn::BatchNorm1d(torch::nn::BatchNormOptions(input_dim)));
  }
  pointwise2 = seq->register_module("5", torch::nn::Conv1d(Conv1dOptions(input_dim, input_dim, 1)));
}

Tensor TorchaudioConvolutionModuleImpl::forward(const Tensor& x, kernels::ConvBackend backend) {
  // Kernel-1 convolutions as matmuls on (B, T, C): the same arithmetic without two layout changes.
  Tensor h =
      at::linear(layer_norm->forward(x), pointwise1->weight.squeeze(-1), pointwise1->bias);  // (B, T, 2C)
  h = at::glu(h, -1);                                                                        // (B, T, C)
  h = kernels::depthwise_conv1d(h.transpose(1, 2), depthwise->weight, depthwise->bias, dw_,
                                backend);  // (B, C, T)
  if (group_norm) {
    kernels::GroupNormOptions o;
    o.groups = 1;
    o.eps = group_norm->options.eps();
    h = kernels::group_norm_silu(h, group_norm->weight, group_norm->bias, o, backend);  // (B, C, T)
  } else {
    h = at::silu(batch_norm->forward(h));  // (B, C, T)
  }
  h = at::linear(h.transpose(1, 2), pointwise2->weight.squeeze(-1), pointwise2->bias);  // (B, T, C)
  return maybe_dropout(h, dropout_, is_training());
}

// ---------------------------------------------------------------- self-attention
TorchaudioSelfAttentionImpl::TorchaudioSelfAttentionImpl(int64_t embed_dim, int64_t num_heads, double dropout)
    : heads_(num_heads), dropout_(dropout) {
  in_proj_weight = register_parameter("in_proj_weight", at::empty({3 * embed_dim, embed_dim}));
  in_proj_bias = register_parameter("in_proj_bias", at::zeros({3 * embed_dim}));
  out_proj = register_module("out_proj", torch::nn::Linear(embed_dim, embed_dim));
  torch::NoGradGuard ng;
  torch::nn::init::xavier_uniform_(in_proj_weight);  // nn.MultiheadAttention._reset_parameters
  out_proj->bias.zero_();
}

Tensor TorchaudioSelfAttentionImpl::forward(const Tensor& x, const std::optional<Tensor>& k_lengths,
                                            kernels::AttentionBackend backend) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2), hd = d / heads_;
  const Tensor qkv =
      at::linear(x, in_proj_weight, in_proj_bias).view({b, t, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  kernels::AttentionOptions o;  // qkv (3, B, H, T, hd)
  if (k_lengths.has_value()) o.k_lengths = *k_lengths;
  if (is_training() && dropout_ > 0) {
    o.dropout_p = dropout_;
    o.seed = attention_dropout_seed();
  }
  const Tensor y = kernels::attention(qkv[0], qkv[1], qkv[2], o, backend);  // (B, H, T, hd)
  return out_proj->forward(y.transpose(1, 2).reshape({b, t, d}));           // (B, T, D)
}

// ---------------------------------------------------------------- layer
TorchaudioConformerLayerImpl::TorchaudioConformerLayerImpl(const TorchaudioConformerConfig& c)
    : dropout_(c.dropout), convolution_first_(c.convolution_first) {
  const int64_t d = c.input_dim;
  ffn1 = register_module("ffn1", TorchaudioFeedForward(d, c.ffn_dim, c.dropout));
  self_attn_layer_norm = register_module("self_attn_layer_norm", layer_norm(d));
  self_attn = register_module("self_attn", TorchaudioSelfAttention(d, c.num_heads, c.dropout));
  conv_module = register_module("conv_module", TorchaudioConvolutionModule(d, c.depthwise_conv_kernel_size,
                                                                           c.dropout, c.use_group_norm));
  ffn2 = register_module("ffn2", TorchaudioFeedForward(d, c.ffn_dim, c.dropout));
  final_layer_norm = register_module("final_layer_norm", layer_norm(d));
}

Tensor TorchaudioConformerLayerImpl::forward(Tensor x, const std::optional<Tensor>& k_lengths,
                                             const TorchaudioBackends& backends) {
  x = ffn1->forward(x) * 0.5 + x;  // (B, T, D)
  if (convolution_first_) x = x + conv_module->forward(x, backends.conv);
  const Tensor att = self_attn->forward(self_attn_layer_norm->forward(x), k_lengths, backends.attention);
  x = maybe_dropout(att, dropout_, is_training()) + x;  // (B, T, D)
  if (!convolution_first_) x = x + conv_module->forward(x, backends.conv);
  x = ffn2->forward(x) * 0.5 + x;
  return final_layer_norm->forward(x);  // (B, T, D)
}

// ---------------------------------------------------------------- model
TorchaudioConformerImpl::TorchaudioConformerImpl(const TorchaudioConformerConfig& c) : c_(c) {
  c_.validate();
  conformer_layers = register_module("conformer_layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c_.num_layers; ++i) conformer_layers->push_back(TorchaudioConformerLayer(c_));
  eval();
}

void TorchaudioConformerImpl::load(const std::map<std::string, at::Tensor>& state_dict) {
  load_state_dict(*this, state_dict);
}

void TorchaudioConformerImpl::load(const std::string& path) { load(load_weights(path)); }

std::pair<Tensor, Tensor> TorchaudioConformerImpl::forward(const Tensor& x_in, const Tensor& lengths_in) {
  if (x_in.dim() != 3 || x_in.size(2) != c_.input_dim || !x_in.is_floating_point()) {
    MMREF_FAIL("torchaudio conformer: expected float input (B, T, {}) (input_dim {}), got [{}] {}",
               c_.input_dim, c_.input_dim, fmt::join(x_in.sizes(), ", "), c10::toString(x_in.scalar_type()));
  }
  const int64_t b = x_in.size(0), t = x_in.size(1);
  if (lengths_in.dim() != 1 || lengths_in.size(0) != b) {
    MMREF_FAIL("torchaudio conformer: lengths [{}] must be (B,) = ({}) for input [{}]",
               fmt::join(lengths_in.sizes(), ", "), b, fmt::join(x_in.sizes(), ", "));
  }
  const Tensor lengths = lengths_in.to(x_in.device(), at::kLong);
  std::optional<Tensor> k_lengths;
  if (b > 0) {
    const int64_t lo = lengths.min().item<int64_t>(), hi = lengths.max().item<int64_t>();
    if (lo < 0 || hi > t)
      MMREF_FAIL("torchaudio conformer: lengths in [{}, {}] must lie in [0, T = {}]", lo, hi, t);
    if (lo < t) k_lengths = lengths;
  }
  const auto params = parameters();
  Tensor x = params.empty() ? x_in : x_in.to(params.front().dtype());  // (B, T, D)
  for (size_t i = 0; i < conformer_layers->size(); ++i) {
    x = conformer_layers->ptr<TorchaudioConformerLayerImpl>(i)->forward(x, k_lengths, backends);  // (B, T, D)
  }
  return {x, lengths_in};
}

}  // namespace mmref::models
