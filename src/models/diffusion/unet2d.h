// diffusers' UNet2DConditionModel in libtorch: the image-diffusion denoiser eps/v(x_t, t, text, class).
//
//   t (B) -> time_proj (sinusoidal, no weights) -> time_embedding.linear_1, SiLU, linear_2 -> temb (B, 4*C0)
//   class_labels (B) -> class_embedding (nn.Embedding)                      -> added to temb
//   sample (B, in, H, W) -> conv_in -> down_blocks.i (resnets, attentions, downsamplers) -> mid_block
//     -> up_blocks.i (resnets over [x, skip], attentions, upsamplers) -> conv_norm_out, SiLU -> conv_out
//
// State-dict names are diffusers' (README.md in this folder has the whole table), so a diffusers
// `diffusion_pytorch_model.safetensors` / `.bin` of the same config loads by name; the deprecated attention
// block names (query/key/value/proj_attn) are mapped on load. Blocks: DownBlock2D, CrossAttnDownBlock2D,
// AttnDownBlock2D (and Up twins), UNetMidBlock2DCrossAttn, UNetMidBlock2D (as UNet2DConditionModel builds it:
// one resnet), or no mid block. cross_attention_dim 0 builds the CrossAttn blocks' transformers without
// attn2 (self-attention only; diffusers' BasicTransformerBlock does the same for cross_attention_dim=None).
// Not implemented (config errors): other block types, dual/only cross-attention, class_embed_type other
// than the nn.Embedding, addition embeddings, scale_shift time norm, encoder_hid_proj, non-SiLU activations.
//
// Heads follow diffusers' naming quirk (diffusers issue 2011): for Transformer2DModel blocks the number of
// heads is num_attention_heads, which defaults to attention_head_dim; the AttnDown/UpBlock2D attention uses
// attention_head_dim as the per-head size. SD 1.5's attention_head_dim 8 therefore means 8 heads.
//
// Kernels: every GroupNorm(+SiLU) and attention goes through kernels/dispatch.h with the backends set in
// attention_backend / group_norm_backend (config `kernels.attention`, `kernels.group_norm_silu`).
//
// Ref: huggingface/diffusers src/diffusers/models/unets/unet_2d_condition.py (UNet2DConditionModel.__init__,
// forward, get_time_embed), embeddings.py (get_timestep_embedding, TimestepEmbedding),
// unets/unet_2d_blocks.py (get_down_block, get_mid_block, get_up_block); runwayml/stable-diffusion-v1-5
// unet/config.json for the sd15 preset.
// Tests: tests/models/unet2d_test.cpp (reference: tests/models/unet2d_reference.py).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "kernels/attention/attention.h"
#include "kernels/conv/conv.h"
#include "models/common/lora.h"
#include "models/diffusion/unet_blocks.h"

namespace mmref::config {
class Reader;
}

namespace mmref::diffusion {

// UNet2DConditionModel's constructor arguments (diffusers' config.json names and defaults).
struct UNet2DConfig {
  int64_t sample_size = 64;  // documentation of the trained size; any H, W divisible by 2^(levels-1) runs
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  bool center_input_sample = false;  // sample = 2 * sample - 1 first
  bool flip_sin_to_cos = true;       // time_proj emits [cos, sin] instead of [sin, cos]
  double freq_shift = 0;             // downscale_freq_shift of the sinusoidal embedding
  std::vector<std::string> down_block_types = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                               "CrossAttnDownBlock2D", "DownBlock2D"};
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";  // | UNetMidBlock2D | none
  std::vector<std::string> up_block_types = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                                             "CrossAttnUpBlock2D"};
  std::vector<int64_t> block_out_channels = {320, 640, 1280, 1280};
  int64_t layers_per_block = 2;
  int64_t downsample_padding = 1;  // 1, or 0 (pad bottom/right by one, then a valid conv)
  double mid_block_scale_factor = 1.0;
  double dropout = 0.0;
  std::string act_fn = "silu";  // only silu
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  int64_t cross_attention_dim = 1280;  // 0 = no cross-attention (no attn2, no encoder_hidden_states)
  int64_t transformer_layers_per_block = 1;
  std::vector<int64_t> attention_head_dim = {8};  // one value or one per level (see the heads note above)
  std::vector<int64_t> num_attention_heads;       // empty = attention_head_dim
  bool use_linear_projection = false;             // proj_in / proj_out as Linear instead of 1x1 Conv2d
  bool upcast_attention = false;                  // attention of fp16/bf16 models computed from fp32 q, k, v
  int64_t num_class_embeds = 0;  // > 0: class_embedding (nn.Embedding) added to the time embedding

  int64_t levels() const { return static_cast<int64_t>(block_out_channels.size()); }
  int64_t time_embed_dim() const { return 4 * block_out_channels.at(0); }
  // The input's H and W must be multiples of this (2^(levels - 1)).
  int64_t size_multiple() const { return int64_t{1} << (levels() - 1); }
  // Whether any block has attn2 (then forward needs encoder_hidden_states).
  bool has_cross_attention() const;
  // Range and consistency checks; throws mmref::ConfigError naming the field.
  void validate() const;
};

// Reads a model map (diffusers' config.json keys; unknown keys are errors with a suggestion). `preset: NAME`
// starts from unet2d_preset(NAME), the other keys override it. attention_head_dim / num_attention_heads
// take one number or a list.
void parse(config::Reader& r, UNet2DConfig& c);

// The config as diffusers' unet/config.json keys (the inverse of parse for the keys diffusers has;
// num_attention_heads null when unset), e.g. for tests/models/unet2d_reference.py and Python peers.
nlohmann::json to_diffusers_config(const UNet2DConfig& c);

// Named presets:
//   tiny        32x32 RGB, channels [32, 64, 64], 1 layer/block, cross-attention (dim 64) at the lower two
//               levels and the mid block, 4 heads, 8 groups: tests and 2-core CPU training
//   tiny_class  as tiny but class-conditioned (10 classes), no cross-attention (self-attention transformers)
//   sd15        Stable Diffusion 1.5 (runwayml/stable-diffusion-v1-5 unet/config.json): 859,520,964
//   parameters
UNet2DConfig unet2d_preset(const std::string& name);

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim);
  torch::Tensor forward(const torch::Tensor& x);  // (B, in) -> (B, time_embed_dim)
  models::LoraLinear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

// diffusers get_timestep_embedding: timesteps (B) -> (B, dim) float32, computed exactly as diffusers does
// (float32 exponent table, [sin, cos] halves, flipped to [cos, sin] with flip_sin_to_cos, odd dim
// zero-padded).
torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos,
                                 double freq_shift, double max_period = 10000.0);

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const UNet2DConfig& c);

  // sample (B, in_channels, H, W) float, H and W multiples of 2^(levels-1);
  // timesteps: a scalar, (1) or (B), float or integer;
  // encoder_hidden_states (B, L, cross_attention_dim): required when the model has cross-attention, else
  //   must be undefined; encoder_attention_mask (B, L): 1 / true = keep, 0 = padding (diffusers' bias of
  //   -10000 on masked keys); class_labels (B) integer in [0, num_class_embeds): required iff
  //   num_class_embeds > 0. Returns (B, out_channels, H, W). Errors name the offending tensor.
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timesteps,
                        const torch::Tensor& encoder_hidden_states = {},
                        const torch::Tensor& encoder_attention_mask = {},
                        const torch::Tensor& class_labels = {});

  // 2 x multiply-adds of every convolution, linear layer (time and class embeddings included) and the two
  // attention matmuls for a (B, in, H, W) input and L text tokens (ignored without cross-attention).
  // LoRA branches are not counted.
  int64_t flops(int64_t b, int64_t h, int64_t w, int64_t l) const;

  // Strict load by diffusers name. A "unet." key prefix (pipeline dumps) is stripped; deprecated
  // attention-block names (query/key/value/proj_attn) are renamed. Errors list the missing, unexpected
  // and mis-shaped keys. Load before apply_lora (the adapters are not in diffusers files).
  void load(const std::map<std::string, at::Tensor>& state_dict);
  void load(const std::string& path);  // .safetensors or torch.save .pth/.bin

  void set_backends(kernels::AttentionBackend attention, kernels::ConvBackend group_norm) {
    attention_backend = attention;
    group_norm_backend = group_norm;
  }
  const UNet2DConfig& config() const { return c_; }

  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;
  kernels::ConvBackend group_norm_backend = kernels::ConvBackend::kMmref;

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::Embedding class_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  UnetMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  void check_inputs(const torch::Tensor& sample, const torch::Tensor& timesteps, const torch::Tensor& ehs,
                    const torch::Tensor& mask, const torch::Tensor& class_labels) const;

  UNet2DConfig c_;
  std::vector<UnetDownBlock> down_;
  std::vector<UnetUpBlock> up_;
};
TORCH_MODULE(UNet2DConditionModel);

// "DownBlock2D" -> kPlain, "CrossAttnDownBlock2D" -> kCrossAttn, ... (down or up names); throws
// ConfigError listing the supported names.
UnetBlockKind unet_block_kind(const std::string& type, bool up);

}  // namespace mmref::diffusion
