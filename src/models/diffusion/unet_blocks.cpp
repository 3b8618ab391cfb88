// diffusers UNet building blocks; see unet_blocks.h.
#include "models/diffusion/unet_blocks.h"

#include <ATen/Functions.h>

#include "core/error.h"
#include "kernels/dispatch.h"

namespace mmref::diffusion {

using torch::Tensor;

namespace {

Tensor maybe_dropout(const Tensor& x, double p, bool training) {
  return training && p > 0 ? at::dropout(x, p, /*train=*/true) : x;
}

torch::nn::GroupNorm make_group_norm(int64_t groups, int64_t channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, channels).eps(eps).affine(true));
}

torch::nn::Conv2d conv2d(int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(cin, cout, k).stride(stride).padding(padding));
}

torch::nn::LayerNorm layer_norm(int64_t d) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-5).elementwise_affine(true));
}

int64_t linear_flops(int64_t rows, int64_t in, int64_t out) { return 2 * rows * in * out; }

}  // namespace

Tensor group_norm_act(const torch::nn::GroupNorm& norm, const Tensor& x, bool silu,
                      kernels::ConvBackend backend) {
  kernels::GroupNormOptions o;
  o.groups = norm->options.num_groups();
  o.eps = norm->options.eps();
  o.silu = silu;
  return kernels::group_norm_silu(x, norm->weight, norm->bias, o, backend);
}

int64_t conv2d_flops(int64_t b, int64_t cin, int64_t cout, int64_t k, int64_t h, int64_t w) {
  return 2 * b * h * w * cout * cin * k * k;
}

// ---------------------------------------------------------------- ResnetBlock2D
ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t temb_channels,
                                     int64_t groups, double eps, double dropout, double output_scale_factor)
    : in_(in_channels),
      out_(out_channels),
      temb_(temb_channels),
      dropout_(dropout),
      output_scale_factor_(output_scale_factor) {
  norm1 = register_module("norm1", make_group_norm(groups, in_channels, eps));
  conv1 = register_module("conv1", conv2d(in_channels, out_channels, 3, 1, 1));
  time_emb_proj = register_module("time_emb_proj", models::LoraLinear(temb_channels, out_channels));
  norm2 = register_module("norm2", make_group_norm(groups, out_channels, eps));
  conv2 = register_module("conv2", conv2d(out_channels, out_channels, 3, 1, 1));
  if (in_channels != out_channels) {
    conv_shortcut = register_module("conv_shortcut", conv2d(in_channels, out_channels, 1, 1, 0));
  }
}

Tensor ResnetBlock2DImpl::forward(const Tensor& x, const UnetRunContext& ctx) {
  const auto be = ctx.group_norm_backend;
  Tensor h = group_norm_act(norm1, x, /*silu=*/true, be);             // (B, Cin, H, W)
  h = conv1->forward(h);                                              // (B, Cout, H, W)
  const Tensor t = time_emb_proj->forward(at::silu(ctx.temb));        // (B, Cout)
  h = h + t.unsqueeze(-1).unsqueeze(-1);                              // (B, Cout, H, W)
  h = group_norm_act(norm2, h, /*silu=*/true, be);                    // (B, Cout, H, W)
  h = conv2->forward(maybe_dropout(h, dropout_, is_training()));      // (B, Cout, H, W)
  const Tensor skip = conv_shortcut ? conv_shortcut->forward(x) : x;  // (B, Cout, H, W)
  Tensor y = skip + h;                                                // (B, Cout, H, W)
  return output_scale_factor_ == 1.0 ? y : y / output_scale_factor_;
}

int64_t ResnetBlock2DImpl::flops(int64_t b, int64_t h, int64_t w) const {
  int64_t f = conv2d_flops(b, in_, out_, 3, h, w) + conv2d_flops(b, out_, out_, 3, h, w) +
              linear_flops(b, temb_, out_);
  if (conv_shortcut) f += conv2d_flops(b, in_, out_, 1, h, w);
  return f;
}

// ---------------------------------------------------------------- Downsample2D / Upsample2D
Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t padding)
    : channels_(channels), padding_(padding) {
  conv = register_module("conv", conv2d(channels, channels, 3, 2, padding));
}

Tensor Downsample2DImpl::forward(const Tensor& x) {
  // diffusers: padding 0 pads one zero row/column at the bottom/right before the valid stride-2 conv.
  const Tensor in = padding_ == 0 ? at::constant_pad_nd(x, {0, 1, 0, 1}, 0) : x;  // (B, C, H(+1), W(+1))
  return conv->forward(in);                                                       // (B, C, H/2, W/2)
}

int64_t Downsample2DImpl::flops(int64_t b, int64_t h, int64_t w) const {
  return conv2d_flops(b, channels_, channels_, 3, h / 2, w / 2);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels) : channels_(channels) {
  conv = register_module("conv", conv2d(channels, channels, 3, 1, 1));
}

Tensor Upsample2DImpl::forward(const Tensor& x) {
  const Tensor up = at::upsample_nearest2d(x, {2 * x.size(2), 2 * x.size(3)});  // (B, C, 2H, 2W)
  return conv->forward(up);                                                     // (B, C, 2H, 2W)
}

int64_t Upsample2DImpl::flops(int64_t b, int64_t h, int64_t w) const {
  return conv2d_flops(b, channels_, channels_, 3, 2 * h, 2 * w);
}

// ---------------------------------------------------------------- Attention
AttentionImpl::AttentionImpl(const AttentionConfig& o) : o_(o) {
  MMREF_CHECK(o.query_dim > 0 && o.heads > 0 && o.dim_head > 0, "attention sizes must be positive");
  const int64_t inner = o.heads * o.dim_head;
  const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  if (o.norm_groups > 0)
    group_norm = register_module("group_norm", make_group_norm(o.norm_groups, o.query_dim, o.norm_eps));
  to_q = register_module("to_q", models::LoraLinear(o.query_dim, inner, o.bias));
  to_k = register_module("to_k", models::LoraLinear(kv_dim, inner, o.bias));
  to_v = register_module("to_v", models::LoraLinear(kv_dim, inner, o.bias));
  to_out = register_module("to_out", torch::nn::ModuleList());
  out_proj_ = models::LoraLinear(inner, o.query_dim, o.out_bias);
  to_out->push_back(out_proj_);
}

Tensor AttentionImpl::forward(const Tensor& x, const Tensor& context, const std::optional<Tensor>& bias,
                              const UnetRunContext& ctx) {
  const int64_t b = x.size(0), n = x.size(1), h = o_.heads, d = o_.dim_head;
  const Tensor& kv_in = context.defined() ? context : x;  // (B, L, Dkv)
  const int64_t l = kv_in.size(1);
  Tensor q = to_q->forward(x).view({b, n, h, d}).transpose(1, 2);      // (B, h, N, d)
  Tensor k = to_k->forward(kv_in).view({b, l, h, d}).transpose(1, 2);  // (B, h, L, d)
  Tensor v = to_v->forward(kv_in).view({b, l, h, d}).transpose(1, 2);  // (B, h, L, d)
  const auto dtype = q.scalar_type();
  const bool upcast = ctx.upcast_attention && (dtype == at::kHalf || dtype == at::kBFloat16);
  if (upcast) q = q.to(at::kFloat), k = k.to(at::kFloat), v = v.to(at::kFloat);
  kernels::AttentionOptions ao;
  if (bias) ao.bias = upcast ? bias->to(at::kFloat) : bias->to(q.scalar_type());
  Tensor y = kernels::attention(q, k, v, ao, ctx.attention_backend);  // (B, h, N, d)
  if (upcast) y = y.to(dtype);
  y = y.transpose(1, 2).reshape({b, n, h * d});  // (B, N, inner)
  y = out_proj_->forward(y);                     // (B, N, query_dim)
  return maybe_dropout(y, o_.dropout, is_training());
}

Tensor AttentionImpl::forward_spatial(const Tensor& x, const UnetRunContext& ctx) {
  MMREF_CHECK(static_cast<bool>(group_norm), "forward_spatial needs the group_norm attention block");
  const int64_t b = x.size(0), c = x.size(1), hh = x.size(2), ww = x.size(3);
  Tensor h = group_norm_act(group_norm, x, /*silu=*/false, ctx.group_norm_backend);  // (B, C, H, W)
  h = h.flatten(2).transpose(1, 2);                                                  // (B, H*W, C)
  h = forward(h, Tensor(), std::nullopt, ctx);                                       // (B, H*W, C)
  h = h.transpose(1, 2).reshape({b, c, hh, ww});                                     // (B, C, H, W)
  h = h + x;                                                                         // (B, C, H, W)
  return o_.rescale_output_factor == 1.0 ? h : h / o_.rescale_output_factor;
}

int64_t AttentionImpl::flops(int64_t b, int64_t n, int64_t l) const {
  const int64_t inner = o_.heads * o_.dim_head;
  const int64_t kv_dim = o_.cross_attention_dim > 0 ? o_.cross_attention_dim : o_.query_dim;
  return linear_flops(b * n, o_.query_dim, inner) + 2 * linear_flops(b * l, kv_dim, inner) +
         2 * (2 * b * o_.heads * n * l * o_.dim_head) + linear_flops(b * n, inner, o_.query_dim);
}

// ---------------------------------------------------------------- FeedForward (GEGLU)
GegluImpl::GegluImpl(int64_t dim_in, int64_t dim_out) {
  proj = register_module("proj", models::LoraLinear(dim_in, 2 * dim_out));
}

Tensor GegluImpl::forward(const Tensor& x) {
  const auto parts = proj->forward(x).chunk(2, -1);  // 2 x (..., dim_out)
  return parts[0] * at::gelu(parts[1]);              // (..., dim_out), erf GELU
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult, double dropout)
    : dim_(dim), inner_(dim * mult), dropout_(dropout) {
  net = register_module("net", std::make_shared<torch::nn::Module>());
  geglu = net->register_module("0", Geglu(dim, inner_));
  proj_out = net->register_module("2", models::LoraLinear(inner_, dim));
}

Tensor FeedForwardImpl::forward(const Tensor& x) {
  const Tensor h = maybe_dropout(geglu->forward(x), dropout_, is_training());  // (B, N, inner)
  return proj_out->forward(h);                                                 // (B, N, dim)
}

int64_t FeedForwardImpl::flops(int64_t rows) const {
  return linear_flops(rows, dim_, 2 * inner_) + linear_flops(rows, inner_, dim_);
}

// ---------------------------------------------------------------- BasicTransformerBlock
BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head,
                                                     int64_t cross_attention_dim, double dropout) {
  AttentionConfig a;
  a.query_dim = dim, a.heads = heads, a.dim_head = dim_head, a.dropout = dropout;
  norm1 = register_module("norm1", layer_norm(dim));
  attn1 = register_module("attn1", Attention(a));
  if (cross_attention_dim > 0) {
    a.cross_attention_dim = cross_attention_dim;
    norm2 = register_module("norm2", layer_norm(dim));
    attn2 = register_module("attn2", Attention(a));
  }
  norm3 = register_module("norm3", layer_norm(dim));
  ff = register_module("ff", FeedForward(dim, /*mult=*/4, dropout));
}

Tensor BasicTransformerBlockImpl::forward(const Tensor& x_in, const UnetRunContext& ctx) {
  Tensor x = x_in + attn1->forward(norm1->forward(x_in), Tensor(), std::nullopt, ctx);  // (B, N, D)
  if (attn2) {
    x = x + attn2->forward(norm2->forward(x), ctx.encoder_hidden_states, ctx.cross_bias, ctx);  // (B, N, D)
  }
  return x + ff->forward(norm3->forward(x));  // (B, N, D)
}

int64_t BasicTransformerBlockImpl::flops(int64_t b, int64_t n, int64_t l) const {
  int64_t f = attn1->flops(b, n, n) + ff->flops(b * n);
  if (attn2) f += attn2->flops(b, n, l);
  return f;
}

// ---------------------------------------------------------------- Transformer2DModel
Transformer2DModelImpl::Transformer2DModelImpl(int64_t heads, int64_t dim_head, int64_t in_channels,
                                               int64_t num_layers, int64_t cross_attention_dim,
                                               int64_t norm_groups, bool use_linear_projection,
                                               double dropout)
    : in_(in_channels), inner_(heads * dim_head), linear_(use_linear_projection) {
  norm =
      register_module("norm", make_group_norm(norm_groups, in_channels, 1e-6));  // diffusers: eps 1e-6 here
  if (linear_) {
    proj_in_linear = register_module("proj_in", models::LoraLinear(in_channels, inner_));
  } else {
    proj_in_conv = register_module("proj_in", conv2d(in_channels, inner_, 1, 1, 0));
  }
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    transformer_blocks->push_back(
        BasicTransformerBlock(inner_, heads, dim_head, cross_attention_dim, dropout));
  }
  if (linear_) {
    proj_out_linear = register_module("proj_out", models::LoraLinear(inner_, in_channels));
  } else {
    proj_out_conv = register_module("proj_out", conv2d(inner_, in_channels, 1, 1, 0));
  }
}

Tensor Transformer2DModelImpl::forward(const Tensor& x, const UnetRunContext& ctx) {
  const int64_t b = x.size(0), hh = x.size(2), ww = x.size(3);
  Tensor h = group_norm_act(norm, x, /*silu=*/false, ctx.group_norm_backend);  // (B, C, H, W)
  if (linear_) {
    h = h.permute({0, 2, 3, 1}).reshape({b, hh * ww, in_});  // (B, H*W, C)
    h = proj_in_linear->forward(h);                          // (B, H*W, inner)
  } else {
    h = proj_in_conv->forward(h);                               // (B, inner, H, W)
    h = h.permute({0, 2, 3, 1}).reshape({b, hh * ww, inner_});  // (B, H*W, inner)
  }
  for (size_t i = 0; i < transformer_blocks->size(); ++i) {
    h = transformer_blocks->ptr<BasicTransformerBlockImpl>(i)->forward(h, ctx);  // (B, H*W, inner)
  }
  if (linear_) {
    h = proj_out_linear->forward(h);                        // (B, H*W, C)
    h = h.reshape({b, hh, ww, in_}).permute({0, 3, 1, 2});  // (B, C, H, W)
  } else {
    h = h.reshape({b, hh, ww, inner_}).permute({0, 3, 1, 2});  // (B, inner, H, W)
    h = proj_out_conv->forward(h);                             // (B, C, H, W)
  }
  return h + x;  // (B, C, H, W)
}

int64_t Transformer2DModelImpl::flops(int64_t b, int64_t h, int64_t w, int64_t l) const {
  const int64_t n = h * w;
  int64_t f = 2 * linear_flops(b * n, in_, inner_);  // proj_in + proj_out (1x1 conv = linear)
  for (size_t i = 0; i < transformer_blocks->size(); ++i) {
    f += transformer_blocks->ptr<BasicTransformerBlockImpl>(i)->flops(b, n, l);
  }
  return f;
}

// ---------------------------------------------------------------- blocks
namespace {

Transformer2DModel make_transformer(int64_t channels, const UnetBlockShape& s, const UnetBlockAttention& a) {
  return Transformer2DModel(a.heads, channels / a.heads, channels, a.transformer_layers,
                            a.cross_attention_dim, s.groups, a.use_linear_projection, s.dropout);
}

Attention make_attention_block(int64_t channels, const UnetBlockShape& s, const UnetBlockAttention& a) {
  AttentionConfig o;
  o.query_dim = channels, o.heads = channels / a.attn_dim_head, o.dim_head = a.attn_dim_head;
  o.bias = true, o.norm_groups = s.groups, o.norm_eps = s.eps,
  o.rescale_output_factor = s.output_scale_factor;
  return Attention(o);
}

ResnetBlock2D make_resnet(int64_t in, int64_t out, const UnetBlockShape& s) {
  return ResnetBlock2D(in, out, s.temb_channels, s.groups, s.eps, s.dropout, s.output_scale_factor);
}

}  // namespace

UnetDownBlockImpl::UnetDownBlockImpl(int64_t in_channels, int64_t out_channels, bool add_downsample,
                                     int64_t downsample_padding, const UnetBlockShape& s,
                                     const UnetBlockAttention& a) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (a.kind != UnetBlockKind::kPlain) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < s.num_layers; ++i) {
    resnet_.push_back(make_resnet(i == 0 ? in_channels : out_channels, out_channels, s));
    resnets->push_back(resnet_.back());
    if (a.kind == UnetBlockKind::kCrossAttn) {
      transformer_.push_back(make_transformer(out_channels, s, a));
      attentions->push_back(transformer_.back());
    } else if (a.kind == UnetBlockKind::kAttn) {
      attn_.push_back(make_attention_block(out_channels, s, a));
      attentions->push_back(attn_.back());
    }
  }
  if (add_downsample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    downsampler_ = Downsample2D(out_channels, downsample_padding);
    downsamplers->push_back(downsampler_);
  }
}

Tensor UnetDownBlockImpl::forward(Tensor x, const UnetRunContext& ctx, std::vector<Tensor>& skips) {
  for (size_t i = 0; i < resnet_.size(); ++i) {
    x = resnet_[i]->forward(x, ctx);                                  // (B, Cout, H, W)
    if (!transformer_.empty()) x = transformer_[i]->forward(x, ctx);  // (B, Cout, H, W)
    if (!attn_.empty()) x = attn_[i]->forward_spatial(x, ctx);        // (B, Cout, H, W)
    skips.push_back(x);
  }
  if (downsampler_) {
    x = downsampler_->forward(x);  // (B, Cout, H/2, W/2)
    skips.push_back(x);
  }
  return x;
}

int64_t UnetDownBlockImpl::flops(int64_t b, int64_t h, int64_t w, int64_t l) const {
  int64_t f = 0;
  for (size_t i = 0; i < resnet_.size(); ++i) {
    f += resnet_[i]->flops(b, h, w);
    if (!transformer_.empty()) f += transformer_[i]->flops(b, h, w, l);
    if (!attn_.empty()) f += attn_[i]->flops(b, h * w, h * w);
  }
  if (downsampler_) f += downsampler_->flops(b, h, w);
  return f;
}

UnetUpBlockImpl::UnetUpBlockImpl(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels,
                                 bool add_upsample, const UnetBlockShape& s, const UnetBlockAttention& a) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (a.kind != UnetBlockKind::kPlain) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < s.num_layers; ++i) {
    const int64_t skip_channels = i == s.num_layers - 1 ? in_channels : out_channels;
    const int64_t resnet_in = i == 0 ? prev_output_channels : out_channels;
    resnet_.push_back(make_resnet(resnet_in + skip_channels, out_channels, s));
    resnets->push_back(resnet_.back());
    if (a.kind == UnetBlockKind::kCrossAttn) {
      transformer_.push_back(make_transformer(out_channels, s, a));
      attentions->push_back(transformer_.back());
    } else if (a.kind == UnetBlockKind::kAttn) {
      attn_.push_back(make_attention_block(out_channels, s, a));
      attentions->push_back(attn_.back());
    }
  }
  if (add_upsample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    upsampler_ = Upsample2D(out_channels);
    upsamplers->push_back(upsampler_);
  }
}

Tensor UnetUpBlockImpl::forward(Tensor x, const UnetRunContext& ctx, std::vector<Tensor>& skips) {
  for (size_t i = 0; i < resnet_.size(); ++i) {
    MMREF_CHECK(!skips.empty(), "up block ran out of skip connections");
    x = at::cat({x, skips.back()}, 1);  // (B, C + Cskip, H, W)
    skips.pop_back();
    x = resnet_[i]->forward(x, ctx);                                  // (B, Cout, H, W)
    if (!transformer_.empty()) x = transformer_[i]->forward(x, ctx);  // (B, Cout, H, W)
    if (!attn_.empty()) x = attn_[i]->forward_spatial(x, ctx);        // (B, Cout, H, W)
  }
  if (upsampler_) x = upsampler_->forward(x);  // (B, Cout, 2H, 2W)
  return x;
}

int64_t UnetUpBlockImpl::flops(int64_t b, int64_t h, int64_t w, int64_t l) const {
  int64_t f = 0;
  for (size_t i = 0; i < resnet_.size(); ++i) {
    f += resnet_[i]->flops(b, h, w);
    if (!transformer_.empty()) f += transformer_[i]->flops(b, h, w, l);
    if (!attn_.empty()) f += attn_[i]->flops(b, h * w, h * w);
  }
  if (upsampler_) f += upsampler_->flops(b, h, w);
  return f;
}

UnetMidBlockImpl::UnetMidBlockImpl(int64_t channels, const UnetBlockShape& s, const UnetBlockAttention& a) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  resnet_.push_back(make_resnet(channels, channels, s));
  resnets->push_back(resnet_.back());
  if (a.kind == UnetBlockKind::kCrossAttn) {
    attentions = register_module("attentions", torch::nn::ModuleList());
    transformer_.push_back(make_transformer(channels, s, a));
    attentions->push_back(transformer_.back());
    resnet_.push_back(make_resnet(channels, channels, s));
    resnets->push_back(resnet_.back());
  }
  MMREF_CHECK(a.kind != UnetBlockKind::kAttn, "the mid block has no AttnBlock variant here");
}

Tensor UnetMidBlockImpl::forward(Tensor x, const UnetRunContext& ctx) {
  x = resnet_[0]->forward(x, ctx);  // (B, C, H, W)
  for (size_t i = 0; i < transformer_.size(); ++i) {
    x = transformer_[i]->forward(x, ctx);  // (B, C, H, W)
    x = resnet_[i + 1]->forward(x, ctx);   // (B, C, H, W)
  }
  return x;
}

int64_t UnetMidBlockImpl::flops(int64_t b, int64_t h, int64_t w, int64_t l) const {
  int64_t f = 0;
  for (const auto& r : resnet_) f += r->flops(b, h, w);
  for (const auto& t : transformer_) f += t->flops(b, h, w, l);
  return f;
}

}  // namespace mmref::diffusion
