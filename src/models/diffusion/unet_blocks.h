// The building blocks of diffusers' UNet2DConditionModel, registered under diffusers' state-dict names:
//   ResnetBlock2D       norm1 conv1 time_emb_proj norm2 conv2 [conv_shortcut]       (resnet.py)
//   Downsample2D        conv (3x3, stride 2)     Upsample2D  conv (nearest x2, then 3x3)
//   Attention           [group_norm] to_q to_k to_v to_out.0                       (attention_processor.py)
//   FeedForward         net.0.proj (GEGLU: Linear to 2 x inner) net.2              (attention.py)
//   BasicTransformerBlock  norm1 attn1 [norm2 attn2] norm3 ff                       (attention.py)
//   Transformer2DModel  norm proj_in transformer_blocks.N proj_out                 (transformer_2d.py)
//   UnetDownBlock / UnetUpBlock / UnetMidBlock: resnets.N attentions.N downsamplers.0 / upsamplers.0
//     for DownBlock2D, CrossAttnDownBlock2D, AttnDownBlock2D (and the Up twins), UNetMidBlock2DCrossAttn and
//     UNetMidBlock2D (unet_2d_blocks.py).
// Every GroupNorm (+SiLU) runs through kernels::group_norm_silu and every attention through
// kernels::attention (kernels/dispatch.h); the backends come in UnetRunContext. Linear layers are
// models::LoraLinear (nn.Linear's names and init) so apply_lora() can adapt to_q/to_k/to_v/to_out.0, ff, ...
// Each block also reports its cost: flops() counts 2 x the multiply-adds of its convolutions, linear layers
// and the two attention matmuls (q k^T and p v); norms, activations, softmax and additions are not counted.
//
// Ref: huggingface/diffusers src/diffusers/models/{resnet.py (ResnetBlock2D, Downsample2D, Upsample2D),
// attention_processor.py (Attention, AttnProcessor), attention.py (BasicTransformerBlock, FeedForward,
// GEGLU), transformers/transformer_2d.py (Transformer2DModel, continuous input), unets/unet_2d_blocks.py}.
// Tests: tests/models/unet2d_test.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"
#include "kernels/conv/conv.h"
#include "models/common/lora.h"

namespace mmref::diffusion {

// What every block's forward needs besides its input.
struct UnetRunContext {
  torch::Tensor temb;                       // (B, time_embed_dim) time (+ class) embedding
  torch::Tensor encoder_hidden_states;      // (B, L, cross_attention_dim); undefined without cross-attention
  std::optional<torch::Tensor> cross_bias;  // (B, 1, 1, L) additive key bias from encoder_attention_mask
  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;
  kernels::ConvBackend group_norm_backend = kernels::ConvBackend::kMmref;
  bool upcast_attention = false;  // q, k, v in fp32 for half-precision inputs
};

// silu?(group_norm(x)) through the dispatch layer with `norm`'s weight, bias, groups and eps.
torch::Tensor group_norm_act(const torch::nn::GroupNorm& norm, const torch::Tensor& x, bool silu,
                             kernels::ConvBackend backend);

// 2 x multiply-adds of a k x k convolution producing (B, cout, h, w) from cin channels.
int64_t conv2d_flops(int64_t b, int64_t cin, int64_t cout, int64_t k, int64_t h, int64_t w);

class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t temb_channels, int64_t groups,
                    double eps, double dropout, double output_scale_factor);
  torch::Tensor forward(const torch::Tensor& x,
                        const UnetRunContext& ctx);  // (B, Cin, H, W) -> (B, Cout, H, W)
  int64_t flops(int64_t b, int64_t h, int64_t w) const;

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  models::LoraLinear time_emb_proj{nullptr};

 private:
  int64_t in_, out_, temb_;
  double dropout_, output_scale_factor_;
};
TORCH_MODULE(ResnetBlock2D);

class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);         // (B, C, H, W) -> (B, C, H/2, W/2)
  int64_t flops(int64_t b, int64_t h, int64_t w) const;  // h, w: the input size

  torch::nn::Conv2d conv{nullptr};

 private:
  int64_t channels_, padding_;
};
TORCH_MODULE(Downsample2D);

class Upsample2DImpl : public torch::nn::Module {
 public:
  explicit Upsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);         // (B, C, H, W) -> (B, C, 2H, 2W)
  int64_t flops(int64_t b, int64_t h, int64_t w) const;  // h, w: the input size

  torch::nn::Conv2d conv{nullptr};

 private:
  int64_t channels_;
};
TORCH_MODULE(Upsample2D);

// diffusers' Attention with AttnProcessor semantics. cross_attention_dim 0: keys and values come from the
// queries' own input. norm_groups > 0 adds group_norm (the UNet2DModel-style attention block: GroupNorm,
// attention over H*W tokens, residual, / rescale_output_factor).
struct AttentionConfig {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;
  int64_t heads = 1;
  int64_t dim_head = 64;
  bool bias = false;     // on to_q, to_k, to_v
  bool out_bias = true;  // on to_out.0
  double dropout = 0.0;  // after to_out.0 (diffusers' to_out.1)
  int64_t norm_groups = 0;
  double norm_eps = 1e-5;
  double rescale_output_factor = 1.0;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionConfig& o);
  // x (B, N, query_dim), context (B, L, cross_attention_dim) or undefined -> (B, N, query_dim).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context,
                        const std::optional<torch::Tensor>& bias, const UnetRunContext& ctx);
  // The attention block on feature maps (requires group_norm): (B, C, H, W) -> (B, C, H, W), residual added.
  torch::Tensor forward_spatial(const torch::Tensor& x, const UnetRunContext& ctx);
  int64_t flops(int64_t b, int64_t n, int64_t l) const;  // n queries, l keys

  torch::nn::GroupNorm group_norm{nullptr};
  models::LoraLinear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};  // [0] = LoraLinear (diffusers' [1] is a Dropout without weights)

 private:
  AttentionConfig o_;
  models::LoraLinear out_proj_{nullptr};  // to_out[0]
};
TORCH_MODULE(Attention);

class GegluImpl : public torch::nn::Module {
 public:
  GegluImpl(int64_t dim_in, int64_t dim_out);
  torch::Tensor forward(const torch::Tensor& x);  // (..., dim_in) -> (..., dim_out)
  models::LoraLinear proj{nullptr};               // dim_in -> 2 * dim_out
};
TORCH_MODULE(Geglu);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t mult, double dropout);
  torch::Tensor forward(const torch::Tensor& x);  // (B, N, dim) -> (B, N, dim)
  int64_t flops(int64_t rows) const;

  std::shared_ptr<torch::nn::Module> net;  // net.0 = GEGLU, net.2 = Linear
  Geglu geglu{nullptr};
  models::LoraLinear proj_out{nullptr};

 private:
  int64_t dim_, inner_;
  double dropout_;
};
TORCH_MODULE(FeedForward);

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head, int64_t cross_attention_dim,
                            double dropout);
  torch::Tensor forward(const torch::Tensor& x, const UnetRunContext& ctx);  // (B, N, dim) -> (B, N, dim)
  int64_t flops(int64_t b, int64_t n, int64_t l) const;

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  Transformer2DModelImpl(int64_t heads, int64_t dim_head, int64_t in_channels, int64_t num_layers,
                         int64_t cross_attention_dim, int64_t norm_groups, bool use_linear_projection,
                         double dropout);
  torch::Tensor forward(const torch::Tensor& x, const UnetRunContext& ctx);  // (B, C, H, W) -> (B, C, H, W)
  int64_t flops(int64_t b, int64_t h, int64_t w, int64_t l) const;

  torch::nn::GroupNorm norm{nullptr};
  models::LoraLinear proj_in_linear{nullptr}, proj_out_linear{nullptr};  // use_linear_projection
  torch::nn::Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};       // otherwise (1x1)
  torch::nn::ModuleList transformer_blocks{nullptr};

 private:
  int64_t in_, inner_;
  bool linear_;
};
TORCH_MODULE(Transformer2DModel);

// Which attention a down / up block carries.
enum class UnetBlockKind {
  kPlain,      // DownBlock2D / UpBlock2D
  kCrossAttn,  // CrossAttnDownBlock2D / CrossAttnUpBlock2D: Transformer2DModel (attn2 iff cross dim > 0)
  kAttn,       // AttnDownBlock2D / AttnUpBlock2D: Attention with group_norm, q/k/v biases, residual
};

// Attention settings of one block (heads: Transformer2DModel; attn_dim_head: the Attention block).
struct UnetBlockAttention {
  UnetBlockKind kind = UnetBlockKind::kPlain;
  int64_t heads = 1;
  int64_t attn_dim_head = 1;
  int64_t transformer_layers = 1;
  int64_t cross_attention_dim = 0;
  bool use_linear_projection = false;
};

struct UnetBlockShape {
  int64_t temb_channels = 0, groups = 32, num_layers = 1;
  double eps = 1e-5, dropout = 0.0, output_scale_factor = 1.0;
};

class UnetDownBlockImpl : public torch::nn::Module {
 public:
  UnetDownBlockImpl(int64_t in_channels, int64_t out_channels, bool add_downsample,
                    int64_t downsample_padding, const UnetBlockShape& s, const UnetBlockAttention& a);
  // (B, Cin, H, W) -> (B, Cout, H', W'); pushes every resnet/attention output and the downsampled map.
  torch::Tensor forward(torch::Tensor x, const UnetRunContext& ctx, std::vector<torch::Tensor>& skips);
  int64_t flops(int64_t b, int64_t h, int64_t w, int64_t l) const;  // h, w: the input size
  bool downsamples() const { return static_cast<bool>(downsampler_); }

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, downsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_;
  std::vector<Transformer2DModel> transformer_;
  std::vector<Attention> attn_;
  Downsample2D downsampler_{nullptr};
};
TORCH_MODULE(UnetDownBlock);

class UnetUpBlockImpl : public torch::nn::Module {
 public:
  // num_layers resnets; resnet i reads (i == 0 ? prev_output_channels : out) + skip channels, the skip of
  // the last one having in_channels (diffusers' res_skip_channels).
  UnetUpBlockImpl(int64_t in_channels, int64_t prev_output_channels, int64_t out_channels, bool add_upsample,
                  const UnetBlockShape& s, const UnetBlockAttention& a);
  // (B, Cprev, H, W) -> (B, Cout, H'', W''); pops one skip per resnet from the back of `skips`.
  torch::Tensor forward(torch::Tensor x, const UnetRunContext& ctx, std::vector<torch::Tensor>& skips);
  int64_t flops(int64_t b, int64_t h, int64_t w, int64_t l) const;  // h, w: the input size
  int64_t num_resnets() const { return static_cast<int64_t>(resnet_.size()); }

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, upsamplers{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_;
  std::vector<Transformer2DModel> transformer_;
  std::vector<Attention> attn_;
  Upsample2D upsampler_{nullptr};
};
TORCH_MODULE(UnetUpBlock);

// UNetMidBlock2DCrossAttn (resnets.0, attentions.0 = Transformer2DModel, resnets.1) or, with
// kind kPlain, UNetMidBlock2D as UNet2DConditionModel builds it (num_layers 0, no attention: resnets.0).
class UnetMidBlockImpl : public torch::nn::Module {
 public:
  UnetMidBlockImpl(int64_t channels, const UnetBlockShape& s, const UnetBlockAttention& a);
  torch::Tensor forward(torch::Tensor x, const UnetRunContext& ctx);  // (B, C, H, W) -> (B, C, H, W)
  int64_t flops(int64_t b, int64_t h, int64_t w, int64_t l) const;

  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr};

 private:
  std::vector<ResnetBlock2D> resnet_;
  std::vector<Transformer2DModel> transformer_;
};
TORCH_MODULE(UnetMidBlock);

}  // namespace mmref::diffusion
