// diffusers' UNet2DConditionModel; see unet2d.h.
#include "models/diffusion/unet2d.h"

#include <cmath>
#include <regex>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/config.h"
#include "core/error.h"
#include "core/state_dict.h"
#include "kernels/dispatch.h"

namespace mmref::diffusion {

using torch::Tensor;

namespace {

[[noreturn]] void config_fail(const std::string& what) { throw ConfigError("unet2d config: " + what); }

const char* const kDownTypes[] = {"DownBlock2D", "CrossAttnDownBlock2D", "AttnDownBlock2D"};
const char* const kUpTypes[] = {"UpBlock2D", "CrossAttnUpBlock2D", "AttnUpBlock2D"};

// One number per level from a one-or-per-level list.
int64_t per_level(const std::vector<int64_t>& v, int64_t i) { return v.size() == 1 ? v[0] : v.at(i); }

std::vector<int64_t> heads_per_level(const UNet2DConfig& c) {
  const auto& src = c.num_attention_heads.empty() ? c.attention_head_dim : c.num_attention_heads;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < c.levels(); ++i) out.push_back(per_level(src, i));
  return out;
}

std::string sizes(const Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

// A key that is one number or a list of numbers.
void opt_number_or_list(config::Reader& r, const std::string& key, std::vector<int64_t>& v) {
  const config::Node* n = r.raw(key);
  if (n != nullptr && n->is_scalar()) {
    int64_t x = 0;
    r.opt(key, x, config::Range::at_least(1));
    v = {x};
  } else {
    r.opt(key, v, config::Range::at_least(1));
  }
}

}  // namespace

UnetBlockKind unet_block_kind(const std::string& type, bool up) {
  const auto& names = up ? kUpTypes : kDownTypes;
  for (int k = 0; k < 3; ++k) {
    if (type == names[k]) return static_cast<UnetBlockKind>(k);
  }
  config_fail(fmt::format("{} block type '{}' is not supported ({}, {}, {})", up ? "up" : "down", type,
                          names[0], names[1], names[2]));
}

// ---------------------------------------------------------------- config
bool UNet2DConfig::has_cross_attention() const {
  if (cross_attention_dim <= 0) return false;
  if (mid_block_type == "UNetMidBlock2DCrossAttn") return true;
  for (const auto& t : down_block_types) {
    if (t == "CrossAttnDownBlock2D") return true;
  }
  for (const auto& t : up_block_types) {
    if (t == "CrossAttnUpBlock2D") return true;
  }
  return false;
}

void UNet2DConfig::validate() const {
  if (in_channels < 1 || out_channels < 1) {
    config_fail(fmt::format("in_channels {} and out_channels {} must be >= 1", in_channels, out_channels));
  }
  if (block_out_channels.empty()) config_fail("block_out_channels must list at least one level");
  const int64_t n = levels();
  if (static_cast<int64_t>(down_block_types.size()) != n ||
      static_cast<int64_t>(up_block_types.size()) != n) {
    config_fail(
        fmt::format("down_block_types ({}) and up_block_types ({}) must have one entry per "
                    "block_out_channels level ({})",
                    down_block_types.size(), up_block_types.size(), n));
  }
  if (norm_num_groups < 1) config_fail(fmt::format("norm_num_groups must be >= 1, got {}", norm_num_groups));
  for (int64_t ch : block_out_channels) {
    // Every GroupNorm sees a level's channels or a sum of them (up-block concatenations).
    if (ch < 1 || ch % norm_num_groups != 0) {
      config_fail(fmt::format("block_out_channels {} must be positive multiples of norm_num_groups {}",
                              fmt::join(block_out_channels, ", "), norm_num_groups));
    }
  }
  if (layers_per_block < 1)
    config_fail(fmt::format("layers_per_block must be >= 1, got {}", layers_per_block));
  if (transformer_layers_per_block < 1) {
    config_fail(
        fmt::format("transformer_layers_per_block must be >= 1, got {}", transformer_layers_per_block));
  }
  if (downsample_padding != 0 && downsample_padding != 1) {
    config_fail(fmt::format("downsample_padding must be 0 or 1, got {}", downsample_padding));
  }
  if (!(norm_eps > 0)) config_fail(fmt::format("norm_eps must be > 0, got {}", norm_eps));
  if (!(dropout >= 0 && dropout < 1)) config_fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
  if (!(mid_block_scale_factor > 0)) {
    config_fail(fmt::format("mid_block_scale_factor must be > 0, got {}", mid_block_scale_factor));
  }
  if (act_fn != "silu") config_fail(fmt::format("act_fn '{}' is not supported (only silu)", act_fn));
  if (cross_attention_dim < 0)
    config_fail(fmt::format("cross_attention_dim must be >= 0, got {}", cross_attention_dim));
  if (num_class_embeds < 0)
    config_fail(fmt::format("num_class_embeds must be >= 0, got {}", num_class_embeds));
  if (mid_block_type != "UNetMidBlock2DCrossAttn" && mid_block_type != "UNetMidBlock2D" &&
      mid_block_type != "none") {
    config_fail(
        fmt::format("mid_block_type '{}' is not supported (UNetMidBlock2DCrossAttn, UNetMidBlock2D, none)",
                    mid_block_type));
  }
  for (const auto* v : {&attention_head_dim, &num_attention_heads}) {
    const char* name = v == &attention_head_dim ? "attention_head_dim" : "num_attention_heads";
    if (v == &attention_head_dim && v->empty()) config_fail("attention_head_dim must not be empty");
    if (!v->empty() && v->size() != 1 && static_cast<int64_t>(v->size()) != n) {
      config_fail(fmt::format("{} must be one number or one per level ({}), got {}", name, n, v->size()));
    }
    for (int64_t x : *v) {
      if (x < 1) config_fail(fmt::format("{} entries must be >= 1, got {}", name, x));
    }
  }
  if (sample_size < 1 || sample_size % size_multiple() != 0) {
    config_fail(fmt::format("sample_size {} must be a positive multiple of 2^(levels-1) = {}", sample_size,
                            size_multiple()));
  }
  // Heads must divide the channels of every attention (diffusers: dim_head = channels // heads).
  const auto heads = heads_per_level(*this);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t ch = block_out_channels[i], rch = block_out_channels[n - 1 - i];
    const UnetBlockKind dk = unet_block_kind(down_block_types[i], false);
    const UnetBlockKind uk = unet_block_kind(up_block_types[i], true);
    if (dk == UnetBlockKind::kCrossAttn && ch % heads[i] != 0) {
      config_fail(fmt::format("down block {} ({} channels) is not divisible into {} heads", i, ch, heads[i]));
    }
    if (dk == UnetBlockKind::kAttn && ch % per_level(attention_head_dim, i) != 0) {
      config_fail(fmt::format("down block {} ({} channels) is not divisible by attention_head_dim {}", i, ch,
                              per_level(attention_head_dim, i)));
    }
    if (uk == UnetBlockKind::kCrossAttn && rch % heads[n - 1 - i] != 0) {
      config_fail(
          fmt::format("up block {} ({} channels) is not divisible into {} heads", i, rch, heads[n - 1 - i]));
    }
    if (uk == UnetBlockKind::kAttn && rch % per_level(attention_head_dim, i) != 0) {
      config_fail(fmt::format("up block {} ({} channels) is not divisible by attention_head_dim {}", i, rch,
                              per_level(attention_head_dim, i)));
    }
  }
  if (mid_block_type == "UNetMidBlock2DCrossAttn" && block_out_channels.back() % heads.back() != 0) {
    config_fail(fmt::format("the mid block ({} channels) is not divisible into {} heads",
                            block_out_channels.back(), heads.back()));
  }
}

void parse(config::Reader& r, UNet2DConfig& c) {
  std::string preset;
  r.opt("preset", preset);
  if (!preset.empty()) {
    try {
      c = unet2d_preset(preset);
    } catch (const Error& e) {
      r.fail("preset", e.what());
    }
  }
  r.opt("sample_size", c.sample_size, config::Range::at_least(1));
  r.opt("in_channels", c.in_channels, config::Range::at_least(1));
  r.opt("out_channels", c.out_channels, config::Range::at_least(1));
  r.opt("center_input_sample", c.center_input_sample);
  r.opt("flip_sin_to_cos", c.flip_sin_to_cos);
  r.opt("freq_shift", c.freq_shift, config::Range::at_least(0));
  r.opt("down_block_types", c.down_block_types);
  r.choice("mid_block_type", c.mid_block_type, {"UNetMidBlock2DCrossAttn", "UNetMidBlock2D", "none"});
  r.opt("up_block_types", c.up_block_types);
  r.opt("block_out_channels", c.block_out_channels, config::Range::at_least(1));
  r.opt("layers_per_block", c.layers_per_block, config::Range::at_least(1));
  r.opt("downsample_padding", c.downsample_padding, config::Range::between(0, 1));
  r.opt("mid_block_scale_factor", c.mid_block_scale_factor, config::Range::positive());
  r.opt("dropout", c.dropout, config::Range::between(0, 0.999));
  r.choice("act_fn", c.act_fn, {"silu"});
  r.opt("norm_num_groups", c.norm_num_groups, config::Range::at_least(1));
  r.opt("norm_eps", c.norm_eps, config::Range::positive());
  r.opt("cross_attention_dim", c.cross_attention_dim, config::Range::at_least(0));
  r.opt("transformer_layers_per_block", c.transformer_layers_per_block, config::Range::at_least(1));
  opt_number_or_list(r, "attention_head_dim", c.attention_head_dim);
  opt_number_or_list(r, "num_attention_heads", c.num_attention_heads);
  r.opt("use_linear_projection", c.use_linear_projection);
  r.opt("upcast_attention", c.upcast_attention);
  r.opt("num_class_embeds", c.num_class_embeds, config::Range::at_least(0));
  r.finish();
  for (const auto& [key, list, up] : {std::tuple<const char*, const std::vector<std::string>*, bool>{
                                          "down_block_types", &c.down_block_types, false},
                                      {"up_block_types", &c.up_block_types, true}}) {
    for (const auto& t : *list) {
      try {
        unet_block_kind(t, up);
      } catch (const ConfigError& e) {
        r.fail(key, e.what());
      }
    }
  }
  c.validate();
}

nlohmann::json to_diffusers_config(const UNet2DConfig& c) {
  using nlohmann::json;
  return {{"in_channels", c.in_channels},
          {"out_channels", c.out_channels},
          {"flip_sin_to_cos", c.flip_sin_to_cos},
          {"freq_shift", c.freq_shift},
          {"down_block_types", c.down_block_types},
          {"mid_block_type", c.mid_block_type},
          {"up_block_types", c.up_block_types},
          {"block_out_channels", c.block_out_channels},
          {"layers_per_block", c.layers_per_block},
          {"downsample_padding", c.downsample_padding},
          {"mid_block_scale_factor", c.mid_block_scale_factor},
          {"dropout", c.dropout},
          {"norm_num_groups", c.norm_num_groups},
          {"norm_eps", c.norm_eps},
          {"cross_attention_dim", c.cross_attention_dim},
          {"transformer_layers_per_block", c.transformer_layers_per_block},
          {"attention_head_dim", c.attention_head_dim},
          {"num_attention_heads", c.num_attention_heads.empty() ? json(nullptr) : json(c.num_attention_heads)},
          {"use_linear_projection", c.use_linear_projection},
          {"num_class_embeds", c.num_class_embeds}};
}

UNet2DConfig unet2d_preset(const std::string& name) {
  UNet2DConfig c;
  if (name == "tiny" || name == "tiny_class") {
    c.sample_size = 32, c.in_channels = 3, c.out_channels = 3;
    c.block_out_channels = {32, 64, 64};
    c.layers_per_block = 1;
    c.down_block_types = {"DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"};
    c.up_block_types = {"CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"};
    c.attention_head_dim = {4};  // 4 heads of 16 (diffusers' naming, see unet2d.h)
    c.norm_num_groups = 8;
    c.cross_attention_dim = 64;
    if (name == "tiny_class") c.cross_attention_dim = 0, c.num_class_embeds = 10;
  } else if (name == "sd15") {
    // runwayml/stable-diffusion-v1-5 unet/config.json; the struct defaults are that config otherwise.
    c.sample_size = 64;
    c.cross_attention_dim = 768;
  } else {
    MMREF_FAIL("unet2d preset '{}' is unknown: expected tiny, tiny_class or sd15", name);
  }
  c.validate();
  return c;
}

// ---------------------------------------------------------------- time embedding
TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim) {
  linear_1 = register_module("linear_1", models::LoraLinear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", models::LoraLinear(time_embed_dim, time_embed_dim));
}

Tensor TimestepEmbeddingImpl::forward(const Tensor& x) {
  return linear_2->forward(at::silu(linear_1->forward(x)));  // (B, T)
}

Tensor timestep_embedding(const Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                          double max_period) {
  MMREF_CHECK(timesteps.dim() == 1, "timesteps must be (B,), got {}", sizes(timesteps));
  const int64_t half = dim / 2;
  const auto f32 = timesteps.options().dtype(at::kFloat);
  Tensor exponent = at::arange(0, half, f32) * (-std::log(max_period));            // (half)
  exponent = exponent / (static_cast<double>(half) - freq_shift);                  // (half)
  const Tensor freqs = at::exp(exponent);                                          // (half)
  const Tensor args = timesteps.to(at::kFloat).unsqueeze(1) * freqs.unsqueeze(0);  // (B, half)
  Tensor emb = flip_sin_to_cos ? at::cat({at::cos(args), at::sin(args)}, -1)
                               : at::cat({at::sin(args), at::cos(args)}, -1);  // (B, 2*half)
  if (dim % 2 == 1) emb = at::constant_pad_nd(emb, {0, 1}, 0);                 // (B, dim)
  return emb;
}

// ---------------------------------------------------------------- model
UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConfig& c) : c_(c) {
  c_.validate();
  const int64_t n = c_.levels(), c0 = c_.block_out_channels[0], temb = c_.time_embed_dim();
  const auto heads = heads_per_level(c_);
  conv_in = register_module("conv_in",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(c_.in_channels, c0, 3).padding(1)));
  time_embedding = register_module("time_embedding", TimestepEmbedding(c0, temb));
  if (c_.num_class_embeds > 0) {
    class_embedding = register_module("class_embedding", torch::nn::Embedding(c_.num_class_embeds, temb));
  }
  UnetBlockShape shape;
  shape.temb_channels = temb, shape.groups = c_.norm_num_groups, shape.eps = c_.norm_eps,
  shape.dropout = c_.dropout;
  auto attention_of = [&](UnetBlockKind kind, int64_t heads_i, int64_t level_for_head_dim) {
    UnetBlockAttention a;
    a.kind = kind, a.heads = heads_i, a.attn_dim_head = per_level(c_.attention_head_dim, level_for_head_dim);
    a.transformer_layers = c_.transformer_layers_per_block, a.cross_attention_dim = c_.cross_attention_dim;
    a.use_linear_projection = c_.use_linear_projection;
    return a;
  };
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out_ch = c0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t in_ch = out_ch;
    out_ch = c_.block_out_channels[i];
    UnetBlockShape s = shape;
    s.num_layers = c_.layers_per_block;
    down_.push_back(UnetDownBlock(in_ch, out_ch, /*add_downsample=*/i < n - 1, c_.downsample_padding, s,
                                  attention_of(unet_block_kind(c_.down_block_types[i], false), heads[i], i)));
    down_blocks->push_back(down_.back());
  }
  if (c_.mid_block_type != "none") {
    UnetBlockShape s = shape;
    s.output_scale_factor = c_.mid_block_scale_factor;
    const UnetBlockKind kind =
        c_.mid_block_type == "UNetMidBlock2DCrossAttn" ? UnetBlockKind::kCrossAttn : UnetBlockKind::kPlain;
    mid_block = register_module(
        "mid_block", UnetMidBlock(c_.block_out_channels.back(), s, attention_of(kind, heads.back(), n - 1)));
  }
  // Up path as diffusers builds it: heads reversed, attention_head_dim indexed by the up block's position.
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  out_ch = c_.block_out_channels[n - 1];
  for (int64_t i = 0; i < n; ++i) {
    const int64_t prev_ch = out_ch;
    out_ch = c_.block_out_channels[n - 1 - i];
    const int64_t in_ch = c_.block_out_channels[std::max<int64_t>(n - 2 - i, 0)];
    UnetBlockShape s = shape;
    s.num_layers = c_.layers_per_block + 1;
    up_.push_back(
        UnetUpBlock(in_ch, prev_ch, out_ch, /*add_upsample=*/i < n - 1, s,
                    attention_of(unet_block_kind(c_.up_block_types[i], true), heads[n - 1 - i], i)));
    up_blocks->push_back(up_.back());
  }
  conv_norm_out =
      register_module("conv_norm_out",
                      torch::nn::GroupNorm(
                          torch::nn::GroupNormOptions(c_.norm_num_groups, c0).eps(c_.norm_eps).affine(true)));
  conv_out = register_module("conv_out",
                             torch::nn::Conv2d(torch::nn::Conv2dOptions(c0, c_.out_channels, 3).padding(1)));
}

void UNet2DConditionModelImpl::check_inputs(const Tensor& sample, const Tensor& timesteps, const Tensor& ehs,
                                            const Tensor& mask, const Tensor& class_labels) const {
  constexpr const char* kWho = "UNet2DConditionModel";
  if (!sample.defined() || sample.dim() != 4 || sample.size(1) != c_.in_channels ||
      !sample.is_floating_point()) {
    MMREF_FAIL(
        "{}: sample must be a float (B, {}, H, W) tensor, got {}", kWho, c_.in_channels,
        sample.defined() ? sizes(sample) + " " + std::string(c10::toString(sample.scalar_type())) : "none");
  }
  const int64_t b = sample.size(0), h = sample.size(2), w = sample.size(3), m = c_.size_multiple();
  if (h < 1 || w < 1 || h % m != 0 || w % m != 0) {
    MMREF_FAIL(
        "{}: sample {} has H x W = {} x {}; both must be positive multiples of 2^(levels-1) = {} "
        "(resize or pad the input)",
        kWho, sizes(sample), h, w, m);
  }
  if (!timesteps.defined() || timesteps.dim() > 1 ||
      (timesteps.dim() == 1 && timesteps.size(0) != b && timesteps.size(0) != 1) || timesteps.is_complex() ||
      timesteps.scalar_type() == at::kBool) {
    MMREF_FAIL("{}: timesteps must be a real scalar, (1,) or (B,) = ({}) tensor, got {}", kWho, b,
               timesteps.defined() ? sizes(timesteps) : "none");
  }
  const bool cross = c_.has_cross_attention();
  if (cross) {
    if (!ehs.defined() || ehs.dim() != 3 || ehs.size(0) != b || ehs.size(2) != c_.cross_attention_dim ||
        !ehs.is_floating_point()) {
      MMREF_FAIL(
          "{}: encoder_hidden_states must be a float (B, L, {}) = ({}, L, {}) tensor (the model has "
          "cross-attention), got {}",
          kWho, c_.cross_attention_dim, b, c_.cross_attention_dim, ehs.defined() ? sizes(ehs) : "none");
    }
    if (ehs.size(1) < 1) MMREF_FAIL("{}: encoder_hidden_states {} has no tokens (L = 0)", kWho, sizes(ehs));
  } else if (ehs.defined()) {
    MMREF_FAIL(
        "{}: encoder_hidden_states {} given, but the model has no cross-attention (cross_attention_dim {}, "
        "or no CrossAttn blocks)",
        kWho, sizes(ehs), c_.cross_attention_dim);
  }
  if (mask.defined()) {
    if (!ehs.defined()) MMREF_FAIL("{}: encoder_attention_mask given without encoder_hidden_states", kWho);
    if (mask.dim() != 2 || mask.size(0) != b || mask.size(1) != ehs.size(1)) {
      MMREF_FAIL("{}: encoder_attention_mask must be (B, L) = ({}, {}) like encoder_hidden_states, got {}",
                 kWho, b, ehs.size(1), sizes(mask));
    }
  }
  if (c_.num_class_embeds > 0) {
    if (!class_labels.defined() || class_labels.dim() != 1 || class_labels.size(0) != b ||
        class_labels.is_floating_point() || class_labels.scalar_type() == at::kBool) {
      MMREF_FAIL("{}: class_labels must be an integer (B,) = ({}) tensor (num_class_embeds {}), got {}", kWho,
                 b, c_.num_class_embeds, class_labels.defined() ? sizes(class_labels) : "none");
    }
    if (b > 0) {
      const int64_t lo = class_labels.min().item<int64_t>(), hi = class_labels.max().item<int64_t>();
      if (lo < 0 || hi >= c_.num_class_embeds) {
        MMREF_FAIL("{}: class_labels must lie in [0, {}), got values in [{}, {}]", kWho, c_.num_class_embeds,
                   lo, hi);
      }
    }
  } else if (class_labels.defined()) {
    MMREF_FAIL("{}: class_labels {} given, but the model is not class-conditioned (num_class_embeds 0)", kWho,
               sizes(class_labels));
  }
}

Tensor UNet2DConditionModelImpl::forward(const Tensor& sample, const Tensor& timesteps, const Tensor& ehs,
                                         const Tensor& mask, const Tensor& class_labels) {
  check_inputs(sample, timesteps, ehs, mask, class_labels);
  const auto dtype = conv_in->weight.scalar_type();
  const auto device = conv_in->weight.device();
  const int64_t b = sample.size(0);
  Tensor x = sample.to(device, dtype);  // (B, in, H, W)
  if (c_.center_input_sample) x = 2 * x - 1.0;
  const Tensor t = timesteps.to(device).reshape({-1}).expand({b});  // (B)
  Tensor temb =
      timestep_embedding(t, c_.block_out_channels[0], c_.flip_sin_to_cos, c_.freq_shift);           // (B, C0)
  temb = time_embedding->forward(temb.to(dtype));                                                   // (B, T)
  if (class_embedding) temb = temb + class_embedding->forward(class_labels.to(device, at::kLong));  // (B, T)

  UnetRunContext ctx;
  ctx.temb = temb;
  ctx.attention_backend = attention_backend;
  ctx.group_norm_backend = group_norm_backend;
  ctx.upcast_attention = c_.upcast_attention;
  if (ehs.defined()) ctx.encoder_hidden_states = ehs.to(device, dtype);  // (B, L, Dc)
  if (mask.defined()) {
    // diffusers: (1 - mask) * -10000 as an additive bias on the keys, broadcast over heads and queries.
    const Tensor keep = mask.to(device, dtype);                                // (B, L)
    ctx.cross_bias = ((1.0 - keep) * -10000.0).view({b, 1, 1, mask.size(1)});  // (B, 1, 1, L)
  }

  x = conv_in->forward(x);  // (B, C0, H, W)
  std::vector<Tensor> skips{x};
  for (auto& down : down_) x = down->forward(x, ctx, skips);  // (B, C_i, H / 2^i, W / 2^i)
  if (mid_block) x = mid_block->forward(x, ctx);              // (B, C_last, H / 2^(n-1), W / 2^(n-1))
  for (auto& up : up_) x = up->forward(x, ctx, skips);        // (B, C_(n-1-i), ...) upsampled but the last
  MMREF_CHECK(skips.empty(), "{} skip connections left over", skips.size());
  x = group_norm_act(conv_norm_out, x, /*silu=*/true, group_norm_backend);  // (B, C0, H, W)
  return conv_out->forward(x);                                              // (B, out, H, W)
}

int64_t UNet2DConditionModelImpl::flops(int64_t b, int64_t h, int64_t w, int64_t l) const {
  if (b < 0 || h % c_.size_multiple() != 0 || w % c_.size_multiple() != 0) {
    MMREF_FAIL("UNet2DConditionModel::flops: H x W = {} x {} must be multiples of {}", h, w,
               c_.size_multiple());
  }
  const int64_t c0 = c_.block_out_channels[0], temb = c_.time_embed_dim();
  int64_t f = conv2d_flops(b, c_.in_channels, c0, 3, h, w) + 2 * b * c0 * temb + 2 * b * temb * temb;
  for (const auto& down : down_) {
    f += down->flops(b, h, w, l);
    if (down->downsamples()) h /= 2, w /= 2;
  }
  if (mid_block) f += mid_block->flops(b, h, w, l);
  for (size_t i = 0; i < up_.size(); ++i) {
    f += up_[i]->flops(b, h, w, l);
    if (i + 1 < up_.size()) h *= 2, w *= 2;
  }
  return f + conv2d_flops(b, c0, c_.out_channels, 3, h, w);
}

void UNet2DConditionModelImpl::load(const std::map<std::string, at::Tensor>& state_dict) {
  static const std::regex deprecated(
      R"(^(.*\.attentions\.\d+)\.(query|key|value|proj_attn)\.(weight|bias)$)");
  static const std::map<std::string, std::string> renamed = {
      {"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj_attn", "to_out.0"}};
  std::map<std::string, at::Tensor> sd;
  for (const auto& [key, value] : state_dict) {
    std::string k = key.rfind("unet.", 0) == 0 ? key.substr(5) : key;
    std::smatch m;
    if (std::regex_match(k, m, deprecated)) k = m[1].str() + "." + renamed.at(m[2].str()) + "." + m[3].str();
    sd[k] = value;
  }
  try {
    load_state_dict(*this, sd);
  } catch (const Error& e) {
    MMREF_FAIL("UNet2DConditionModel weights do not fit the config: {}", e.what());
  }
}

void UNet2DConditionModelImpl::load(const std::string& path) {
  const auto sd = load_weights(path);
  try {
    load(sd);
  } catch (const Error& e) {
    MMREF_FAIL("'{}': {}", path, e.what());
  }
}

}  // namespace mmref::diffusion
