// wenet's ConformerEncoder; see conformer_wenet.h.
#include "models/asr/conformer_wenet.h"

#include <limits>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/config.h"
#include "core/error.h"
#include "core/state_dict.h"
#include "kernels/dispatch.h"

namespace mmref::models {

using torch::Tensor;

namespace {

WenetActivation parse_activation(const std::string& name) {
  if (name == "swish") return WenetActivation::kSwish;
  if (name == "relu") return WenetActivation::kRelu;
  if (name == "gelu") return WenetActivation::kGelu;
  if (name == "tanh") return WenetActivation::kTanh;
  throw ConfigError(
      fmt::format("wenet conformer: activation_type '{}' is not supported (swish, relu, gelu, tanh)", name));
}

Tensor activate(const Tensor& x, WenetActivation a) {
  switch (a) {
    case WenetActivation::kSwish:
      return at::silu(x);  // x * sigmoid(x), wenet's Swish
    case WenetActivation::kRelu:
      return at::relu(x);
    case WenetActivation::kGelu:
      return at::gelu(x);  // nn.GELU(), erf form
    case WenetActivation::kTanh:
      return at::tanh(x);
  }
  return x;
}

Tensor maybe_dropout(const Tensor& x, double p, bool training) {
  return training && p > 0 ? at::dropout(x, p, /*train=*/true) : x;
}

Tensor scaled(const Tensor& x, double s) { return s == 1.0 ? x : x * s; }

torch::nn::LayerNorm layer_norm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5));
}

[[noreturn]] void config_fail(const std::string& what) {
  throw ConfigError("wenet conformer config: " + what);
}

}  // namespace

// ---------------------------------------------------------------- config
void WenetConformerConfig::validate() const {
  if (input_size < 1) config_fail(fmt::format("input_size must be >= 1, got {}", input_size));
  if (output_size < 1) config_fail(fmt::format("output_size must be >= 1, got {}", output_size));
  if (attention_heads < 1 || output_size % attention_heads != 0) {
    config_fail(
        fmt::format("output_size {} must be divisible by attention_heads {}", output_size, attention_heads));
  }
  if (linear_units < 1) config_fail(fmt::format("linear_units must be >= 1, got {}", linear_units));
  if (num_blocks < 0) config_fail(fmt::format("num_blocks must be >= 0, got {}", num_blocks));
  for (const auto& [name, p] : {std::pair<const char*, double>{"dropout_rate", dropout_rate},
                                {"positional_dropout_rate", positional_dropout_rate},
                                {"attention_dropout_rate", attention_dropout_rate},
                                {"layer_drop_prob", layer_drop_prob}}) {
    if (!(p >= 0 && p < 1)) config_fail(fmt::format("{} must be in [0, 1), got {}", name, p));
  }
  parse_wenet_input_layer(input_layer);
  if (pos_enc_layer_type != "rel_pos") {
    config_fail(fmt::format("pos_enc_layer_type '{}' is not supported (only rel_pos)", pos_enc_layer_type));
  }
  if (selfattention_layer_type != "rel_selfattn") {
    config_fail(fmt::format("selfattention_layer_type '{}' is not supported (only rel_selfattn)",
                            selfattention_layer_type));
  }
  if (cnn_module_kernel < 1 || (!causal && cnn_module_kernel % 2 == 0)) {
    config_fail(fmt::format("cnn_module_kernel {} must be odd (or causal: true)", cnn_module_kernel));
  }
  if (cnn_module_norm != "batch_norm" && cnn_module_norm != "layer_norm") {
    config_fail(fmt::format("cnn_module_norm '{}' must be batch_norm or layer_norm", cnn_module_norm));
  }
  parse_activation(activation_type);
  if (max_len < 1) config_fail(fmt::format("max_len must be >= 1, got {}", max_len));
}

void parse(config::Reader& r, WenetConformerConfig& c) {
  r.opt("input_size", c.input_size, config::Range::at_least(1));
  r.opt("output_size", c.output_size, config::Range::at_least(1));
  r.opt("attention_heads", c.attention_heads, config::Range::at_least(1));
  r.opt("linear_units", c.linear_units, config::Range::at_least(1));
  r.opt("num_blocks", c.num_blocks, config::Range::at_least(0));
  r.opt("dropout_rate", c.dropout_rate, config::Range::between(0, 0.999));
  r.opt("positional_dropout_rate", c.positional_dropout_rate, config::Range::between(0, 0.999));
  r.opt("attention_dropout_rate", c.attention_dropout_rate, config::Range::between(0, 0.999));
  r.choice("input_layer", c.input_layer, {"conv2d", "conv2d6", "conv2d8", "linear"});
  r.choice("pos_enc_layer_type", c.pos_enc_layer_type, {"rel_pos"});
  r.choice("selfattention_layer_type", c.selfattention_layer_type, {"rel_selfattn"});
  r.opt("normalize_before", c.normalize_before);
  r.opt("macaron_style", c.macaron_style);
  r.opt("use_cnn_module", c.use_cnn_module);
  r.opt("cnn_module_kernel", c.cnn_module_kernel, config::Range::at_least(1));
  r.opt("causal", c.causal);
  r.choice("cnn_module_norm", c.cnn_module_norm, {"batch_norm", "layer_norm"});
  r.choice("activation_type", c.activation_type, {"swish", "relu", "gelu", "tanh"});
  r.opt("global_cmvn", c.global_cmvn);
  r.opt("layer_drop_prob", c.layer_drop_prob, config::Range::between(0, 0.999));
  r.opt("max_len", c.max_len, config::Range::at_least(1));
  r.opt("static_chunk_size", c.static_chunk_size, config::Range::at_least(0));
  r.opt("use_dynamic_chunk", c.use_dynamic_chunk);
  r.opt("use_dynamic_left_chunk", c.use_dynamic_left_chunk);
  r.finish();
  if (c.output_size % c.attention_heads != 0) r.fail("attention_heads", "must divide output_size");
  if (!c.causal && c.cnn_module_kernel % 2 == 0)
    r.fail("cnn_module_kernel", "must be odd unless causal: true");
  c.validate();
}

WenetConformerConfig wenet_conformer_preset(const std::string& name, int64_t input_size) {
  WenetConformerConfig c;
  c.input_size = input_size;
  if (name == "tiny") {
    c.output_size = 144, c.attention_heads = 4, c.linear_units = 256, c.num_blocks = 6,
    c.cnn_module_kernel = 15;
  } else if (name == "aishell") {
    c.output_size = 256, c.attention_heads = 4, c.linear_units = 2048, c.num_blocks = 12,
    c.cnn_module_kernel = 15;
  } else {
    MMREF_FAIL("wenet conformer preset '{}' is unknown: expected tiny or aishell", name);
  }
  c.validate();
  return c;
}

// ---------------------------------------------------------------- feed-forward
WenetFeedForwardImpl::WenetFeedForwardImpl(int64_t idim, int64_t hidden, double dropout_rate,
                                           WenetActivation act)
    : dropout_rate_(dropout_rate), act_(act) {
  w_1 = register_module("w_1", LoraLinear(idim, hidden));
  w_2 = register_module("w_2", LoraLinear(hidden, idim));
}

Tensor WenetFeedForwardImpl::forward(const Tensor& x) {
  const Tensor h = maybe_dropout(activate(w_1->forward(x), act_), dropout_rate_, is_training());  // (B, T, H)
  return w_2->forward(h);                                                                         // (B, T, D)
}

// ---------------------------------------------------------------- convolution module
WenetConvolutionModuleImpl::WenetConvolutionModuleImpl(int64_t channels, int64_t kernel_size,
                                                       bool use_layer_norm, bool causal, WenetActivation act)
    : dw_(causal ? kernels::DepthwiseConv1dOptions{}
                 : kernels::DepthwiseConv1dOptions::padding("same", kernel_size)),
      act_(act),
      lorder_(causal ? kernel_size - 1 : 0) {
  using torch::nn::Conv1dOptions;
  pointwise_conv1 =
      register_module("pointwise_conv1", torch::nn::Conv1d(Conv1dOptions(channels, 2 * channels, 1)));
  depthwise_conv =
      register_module("depthwise_conv", torch::nn::Conv1d(Conv1dOptions(channels, channels, kernel_size)
                                                              .groups(channels)
                                                              .padding(causal ? 0 : (kernel_size - 1) / 2)));
  if (use_layer_norm) {
    layer_norm =
        register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({channels}).eps(1e-5)));
  } else {
    batch_norm =
        register_module("norm", torch::nn::BatchNorm1d(torch::nn::BatchNormOptions(channels).eps(1e-5)));
  }
  pointwise_conv2 =
      register_module("pointwise_conv2", torch::nn::Conv1d(Conv1dOptions(channels, channels, 1)));
}

Tensor WenetConvolutionModuleImpl::forward(const Tensor& x, const Tensor& padded,
                                           kernels::ConvBackend backend) {
  // Kernel-1 convolutions as matmuls on (B, T, C): the same arithmetic without two layout changes.
  Tensor h = padded.defined() ? x.masked_fill(padded, 0.0) : x;                   // (B, T, C)
  h = at::linear(h, pointwise_conv1->weight.squeeze(-1), pointwise_conv1->bias);  // (B, T, 2C)
  h = at::glu(h, -1);                                                             // (B, T, C)
  if (lorder_ > 0) {
    // wenet's F.pad(x, (lorder, 0)) happens before pointwise_conv1: those frames become glu(bias).
    const Tensor left =
        at::glu(pointwise_conv1->bias, 0).view({1, 1, -1}).expand({h.size(0), lorder_, h.size(2)});
    h = at::cat({left, h}, 1);  // (B, lorder + T, C)
  }
  h = kernels::depthwise_conv1d(h.transpose(1, 2), depthwise_conv->weight, depthwise_conv->bias, dw_,
                                backend);  // (B, C, T)
  if (batch_norm) {
    h = activate(batch_norm->forward(h), act_).transpose(1, 2);  // (B, T, C)
  } else {
    h = activate(layer_norm->forward(h.transpose(1, 2)), act_);  // (B, T, C)
  }
  h = at::linear(h, pointwise_conv2->weight.squeeze(-1), pointwise_conv2->bias);  // (B, T, C)
  return padded.defined() ? h.masked_fill(padded, 0.0) : h;
}

// ---------------------------------------------------------------- encoder layer
WenetConformerEncoderLayerImpl::WenetConformerEncoderLayerImpl(const WenetConformerConfig& c)
    : ff_scale_(c.macaron_style ? 0.5 : 1.0),
      dropout_rate_(c.dropout_rate),
      layer_drop_prob_(c.layer_drop_prob),
      normalize_before_(c.normalize_before) {
  const int64_t d = c.output_size;
  const WenetActivation act = parse_activation(c.activation_type);
  self_attn = register_module(
      "self_attn", RelPositionMultiHeadedAttention(c.attention_heads, d, c.attention_dropout_rate));
  feed_forward = register_module("feed_forward", WenetFeedForward(d, c.linear_units, c.dropout_rate, act));
  if (c.macaron_style) {
    feed_forward_macaron =
        register_module("feed_forward_macaron", WenetFeedForward(d, c.linear_units, c.dropout_rate, act));
  }
  if (c.use_cnn_module) {
    conv_module = register_module(
        "conv_module",
        WenetConvolutionModule(d, c.cnn_module_kernel, c.cnn_module_norm == "layer_norm", c.causal, act));
  }
  norm_ff = register_module("norm_ff", layer_norm(d));
  norm_mha = register_module("norm_mha", layer_norm(d));
  if (c.macaron_style) norm_ff_macaron = register_module("norm_ff_macaron", layer_norm(d));
  if (c.use_cnn_module) {
    norm_conv = register_module("norm_conv", layer_norm(d));
    norm_final = register_module("norm_final", layer_norm(d));
  }
}

Tensor WenetConformerEncoderLayerImpl::forward(Tensor x, const WenetLayerContext& ctx) {
  const bool train = is_training();
  double coeff = 1.0;  // stochastic depth: skip the layer, or scale its branches by 1 / (1 - p)
  if (train && layer_drop_prob_ > 0) {
    if (at::rand({1}).item<double>() < layer_drop_prob_) return x;
    coeff = 1.0 / (1.0 - layer_drop_prob_);
  }
  const bool pre = normalize_before_;
  if (feed_forward_macaron) {
    const Tensor residual = x;  // (B, T, D)
    if (pre) x = norm_ff_macaron->forward(x);
    x = residual +
        scaled(maybe_dropout(feed_forward_macaron->forward(x), dropout_rate_, train), coeff * ff_scale_);
    if (!pre) x = norm_ff_macaron->forward(x);
  }
  {
    const Tensor residual = x;
    if (pre) x = norm_mha->forward(x);
    const Tensor att = self_attn->forward(x, ctx.pos_emb, ctx.k_lengths, ctx.attention_backend, ctx.chunk_bias);  // (B, T, D)
    x = residual + scaled(maybe_dropout(att, dropout_rate_, train), coeff);
    if (!pre) x = norm_mha->forward(x);
  }
  if (conv_module) {
    const Tensor residual = x;
    if (pre) x = norm_conv->forward(x);
    const Tensor conv = conv_module->forward(x, ctx.padded, ctx.conv_backend);  // (B, T, D)
    x = residual + scaled(maybe_dropout(conv, dropout_rate_, train), coeff);
    if (!pre) x = norm_conv->forward(x);
  }
  {
    const Tensor residual = x;
    if (pre) x = norm_ff->forward(x);
    x = residual + scaled(maybe_dropout(feed_forward->forward(x), dropout_rate_, train), coeff * ff_scale_);
    if (!pre) x = norm_ff->forward(x);
  }
  if (conv_module) x = norm_final->forward(x);
  return x;  // (B, T, D)
}

// ---------------------------------------------------------------- encoder
WenetConformerEncoderImpl::WenetConformerEncoderImpl(const WenetConformerConfig& c) : c_(c) {
  c_.validate();
  if (c_.global_cmvn) {
    global_cmvn = register_module("global_cmvn", std::make_shared<torch::nn::Module>());
    cmvn_mean = global_cmvn->register_buffer("mean", at::zeros({c_.input_size}));
    cmvn_istd = global_cmvn->register_buffer("istd", at::ones({c_.input_size}));
  }
  embed =
      register_module("embed", WenetSubsampling(parse_wenet_input_layer(c_.input_layer), c_.input_size,
                                                c_.output_size, c_.dropout_rate, c_.positional_dropout_rate));
  encoders = register_module("encoders", torch::nn::ModuleList());
  for (int64_t i = 0; i < c_.num_blocks; ++i) encoders->push_back(WenetConformerEncoderLayer(c_));
  after_norm = register_module("after_norm", layer_norm(c_.output_size));
  eval();
}

int64_t WenetConformerEncoderImpl::subsampling_rate() const { return wenet_subsampling_rate(embed->layer()); }

void WenetConformerEncoderImpl::load(const std::map<std::string, at::Tensor>& state_dict) {
  std::map<std::string, at::Tensor> sd;
  bool full_model = false;
  for (const auto& [k, v] : state_dict) full_model = full_model || k.rfind("encoder.", 0) == 0;
  for (const auto& [k, v] : state_dict) {
    if (!full_model)
      sd[k] = v;
    else if (k.rfind("encoder.", 0) == 0)
      sd[k.substr(8)] = v;  // ASRModel: drop decoder.*, ctc.*, ...
  }
  if (!c_.global_cmvn && sd.count("global_cmvn.mean")) {
    MMREF_FAIL(
        "wenet encoder weights contain global_cmvn.mean/istd but the config has global_cmvn: false; set "
        "global_cmvn: true to use them");
  }
  // Older wenet versions kept pe as a plain attribute, so their checkpoints lack it: use the computed table.
  if (!sd.count("embed.pos_enc.pe")) sd["embed.pos_enc.pe"] = embed->pos_enc->pe.clone();
  load_state_dict(*this, sd);
}

void WenetConformerEncoderImpl::load(const std::string& path) { load(load_weights(path)); }

WenetEncoderOutput WenetConformerEncoderImpl::forward(const Tensor& x_in, const Tensor& lengths_in) {
  if (x_in.dim() != 3 || x_in.size(2) != c_.input_size || !x_in.is_floating_point()) {
    MMREF_FAIL("wenet conformer encoder: expected float features (B, T, {}) (input_size {}), got [{}] {}",
               c_.input_size, c_.input_size, fmt::join(x_in.sizes(), ", "),
               c10::toString(x_in.scalar_type()));
  }
  const int64_t b = x_in.size(0), t = x_in.size(1);
  if (lengths_in.dim() != 1 || lengths_in.size(0) != b) {
    MMREF_FAIL("wenet conformer encoder: lengths [{}] must be (B,) = ({}) for x [{}]",
               fmt::join(lengths_in.sizes(), ", "), b, fmt::join(x_in.sizes(), ", "));
  }
  const Tensor lengths = lengths_in.to(x_in.device(), at::kLong);
  if (b > 0 && (lengths.min().item<int64_t>() < 0 || lengths.max().item<int64_t>() > t)) {
    const Tensor l = lengths.cpu().contiguous();
    MMREF_FAIL("wenet conformer encoder: lengths [{}] must lie in [0, T = {}]",
               fmt::join(std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + b), ", "), t);
  }
  Tensor x = x_in.to(after_norm->weight.dtype());  // (B, T, F)
  if (global_cmvn) x = (x - cmvn_mean) * cmvn_istd;
  const WenetEmbedOutput e = embed->forward(x, lengths);  // (B, T', D)
  const int64_t t_out = e.x.size(1);
  const Tensor valid = at::arange(t_out, lengths.options()).unsqueeze(0) < e.lengths.unsqueeze(1);  // (B, T')
  WenetLayerContext ctx;
  ctx.pos_emb = e.pos_emb;
  ctx.attention_backend = attention_backend;
  ctx.conv_backend = conv_backend;
  ChunkSettings cs;
  cs.static_chunk_size = c_.static_chunk_size, cs.use_dynamic_chunk = c_.use_dynamic_chunk;
  cs.use_dynamic_left_chunk = c_.use_dynamic_left_chunk;
  cs.decoding_chunk_size = decoding_chunk_size, cs.num_decoding_left_chunks = num_decoding_left_chunks;
  const ChunkChoice chunk = choose_chunk(cs, t_out, is_training());
  if (chunk.chunk_size > 0 && chunk.chunk_size < t_out) {
    const Tensor allowed = subsequent_chunk_mask(t_out, chunk.chunk_size, chunk.num_left_chunks, e.x.device());
    ctx.chunk_bias = at::zeros({t_out, t_out}, e.x.options())
                         .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (b > 0 && e.lengths.min().item<int64_t>() < t_out) {
    ctx.k_lengths = e.lengths;
    ctx.padded = valid.logical_not().unsqueeze(-1);  // (B, T', 1)
  }
  Tensor y = e.x;
  for (size_t i = 0; i < encoders->size(); ++i) {
    y = encoders->ptr<WenetConformerEncoderLayerImpl>(i)->forward(y, ctx);  // (B, T', D)
  }
  if (c_.normalize_before) y = after_norm->forward(y);
  return {y, e.lengths, valid.unsqueeze(1), e.x, e.pos_emb};
}

}  // namespace mmref::models
