// The diffusion UNet (diffusers' UNet2DConditionModel layout) and its text conditioning:
//   Unet2d           shapes (text / class conditioning, odd batch), input and config errors, the sd15 layout
//                    by shape, flops against a hand count, kernel backends agreeing, LoRA on the attention
//                    projections, weight loading (round trip, errors, deprecated names)
//   Unet2dReference  the same UNet in plain PyTorch (tests/models/unet2d_reference.py, run once per process
//                    with /usr/bin/python3, skipped with the reason when torch is missing): weights loaded by
//                    diffusers name, outputs and input gradients in fp32 (1e-4 relative) and fp64 (1e-9),
//                    flops equal to the reference's hook count
//   TextEncoder      shapes, padding never reaching real tokens, vocab, CLIP text tower adapter, joint use
//   build/cpu/tests/mmref_models_tests --gtest_filter='Unet2d*:TextEncoder*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include <ATen/Functions.h>
#include <torch/nn/module.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "models/clip/clip_model.h"
#include "models/common/lora.h"
#include "models/diffusion/text_encoder.h"
#include "models/diffusion/unet2d.h"

namespace mmref::diffusion {
namespace {

using kernels::AttentionBackend;
using kernels::ConvBackend;
using nlohmann::json;
namespace stdfs = std::filesystem;

// The message of the mmref::Error `fn` throws ("" when it does not throw).
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

UNet2DConfig parse_config(const std::string& yaml) {
  const auto n = config::parse_yaml(yaml, "unet.yaml");
  config::Reader r(&n, "", nullptr);
  UNet2DConfig c;
  parse(r, c);
  return c;
}

// max |a - b| / max |ref|.
double rel_err(const at::Tensor& got, const at::Tensor& ref) {
  const at::Tensor a = got.to(at::kDouble), b = ref.to(at::kDouble);
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

struct TinyInputs {
  at::Tensor sample, t, ehs, mask, labels;
};

TinyInputs tiny_inputs(const UNet2DConfig& c, int64_t b, int64_t l) {
  torch::manual_seed(3);
  TinyInputs in;
  in.sample = at::randn({b, c.in_channels, 32, 32});
  in.t = at::randint(0, 1000, {b}, at::kLong);
  if (c.has_cross_attention()) {
    in.ehs = at::randn({b, l, c.cross_attention_dim});
    in.mask = at::ones({b, l});
    if (b > 1) in.mask[1].narrow(0, l - 2, 2).zero_();
  }
  if (c.num_class_embeds > 0) in.labels = at::randint(0, c.num_class_embeds, {b}, at::kLong);
  return in;
}

// ------------------------------------------------------------------------------------------ Unet2d
TEST(Unet2d, TinyTextConditionedShapes) {
  const UNet2DConfig c = unet2d_preset("tiny");
  UNet2DConditionModel unet(c);
  unet->eval();
  for (int64_t b : {1, 3}) {
    const TinyInputs in = tiny_inputs(c, b, 7);
    torch::NoGradGuard ng;
    const at::Tensor y = unet->forward(in.sample, in.t, in.ehs, in.mask);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{b, 3, 32, 32}));
    EXPECT_TRUE(at::isfinite(y).all().item<bool>());
    // Without a mask (all tokens kept) and with float timesteps the shapes are the same.
    const at::Tensor y2 = unet->forward(in.sample, in.t.to(at::kFloat), in.ehs);
    EXPECT_EQ(y2.sizes(), y.sizes());
    if (b == 1) {
      EXPECT_LT(rel_err(y2, y), 1e-6) << "an all-ones mask must equal no mask";
    }
  }
  int64_t params = 0;
  for (const auto& p : unet->parameters()) params += p.numel();
  std::printf("  tiny: %lld parameters, %.3f GFLOP per 32x32 sample with 8 tokens\n",
              static_cast<long long>(params), static_cast<double>(unet->flops(1, 32, 32, 8)) / 1e9);
  // Other spatial sizes: multiples of 4 (three levels).
  torch::NoGradGuard ng;
  const at::Tensor y = unet->forward(at::randn({2, 3, 16, 24}), at::tensor({10.0}), at::randn({2, 5, 64}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 16, 24}));
}

TEST(Unet2d, TinyClassConditionedShapesAndEffect) {
  const UNet2DConfig c = unet2d_preset("tiny_class");
  ASSERT_FALSE(c.has_cross_attention());
  UNet2DConditionModel unet(c);
  unet->eval();
  torch::NoGradGuard ng;
  const TinyInputs in = tiny_inputs(c, 5, 0);
  const at::Tensor y = unet->forward(in.sample, in.t, {}, {}, in.labels);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 3, 32, 32}));
  // The class changes the output (through the time embedding); a scalar timestep broadcasts.
  const at::Tensor other = (in.labels + 1).remainder(c.num_class_embeds);
  EXPECT_GT(rel_err(unet->forward(in.sample, in.t, {}, {}, other), y), 1e-4);
  const at::Tensor y_scalar = unet->forward(in.sample, at::scalar_tensor(123, at::kLong), {}, {}, in.labels);
  const at::Tensor y_vector = unet->forward(in.sample, at::full({5}, 123, at::kLong), {}, {}, in.labels);
  EXPECT_EQ(rel_err(y_scalar, y_vector), 0.0);
  // The transformers of this preset carry self-attention only.
  const auto sd = module_state_dict(*unet);
  EXPECT_TRUE(sd.count("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"));
  EXPECT_FALSE(sd.count("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_q.weight"));
  EXPECT_TRUE(sd.count("class_embedding.weight"));
}

TEST(Unet2d, MaskedKeysDoNotMatter) {
  // Padding tokens masked by encoder_attention_mask do not change the output (diffusers' -10000 bias
  // makes their softmax weight exp(-10000) = 0 in fp32).
  const UNet2DConfig c = unet2d_preset("tiny");
  UNet2DConditionModel unet(c);
  unet->eval();
  torch::NoGradGuard ng;
  TinyInputs in = tiny_inputs(c, 2, 6);
  in.mask = at::ones({2, 6});
  in.mask.narrow(1, 4, 2).zero_();
  const at::Tensor y = unet->forward(in.sample, in.t, in.ehs, in.mask);
  at::Tensor ehs2 = in.ehs.clone();
  ehs2.narrow(1, 4, 2).normal_();
  EXPECT_LT(rel_err(unet->forward(in.sample, in.t, ehs2, in.mask), y), 1e-6);
  const at::Tensor short_y = unet->forward(in.sample, in.t, in.ehs.narrow(1, 0, 4).contiguous());
  EXPECT_LT(rel_err(short_y, y), 1e-5) << "masking the last 2 tokens = dropping them";
}

TEST(Unet2d, InputErrorsNameTheTensor) {
  const UNet2DConfig c = unet2d_preset("tiny");
  UNet2DConditionModel unet(c);
  UNet2DConditionModel cls(unet2d_preset("tiny_class"));
  torch::NoGradGuard ng;
  const at::Tensor x = at::randn({2, 3, 32, 32}), t = at::tensor({1, 2}), e = at::randn({2, 5, 64});
  struct Case {
    std::function<void()> fn;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[&] {
         unet->forward(at::randn({2, 4, 32, 32}), t, e);
       },
       "sample must be a float (B, 3, H, W)"},
      {[&] {
         unet->forward(at::randn({2, 3, 30, 32}), t, e);
       },
       "multiples of 2^(levels-1) = 4"},
      {[&] {
         unet->forward(at::randn({3, 32, 32}), t, e);
       },
       "sample"},
      {[&] {
         unet->forward(x, at::tensor({1, 2, 3}), e);
       },
       "timesteps"},
      {[&] { unet->forward(x, t); }, "encoder_hidden_states must be a float (B, L, 64)"},
      {[&] {
         unet->forward(x, t, at::randn({2, 5, 32}));
       },
       "encoder_hidden_states"},
      {[&] {
         unet->forward(x, t, e, at::ones({2, 4}));
       },
       "encoder_attention_mask must be (B, L) = (2, 5)"},
      {[&] {
         unet->forward(x, t, e, {}, at::tensor({1, 2}));
       },
       "not class-conditioned"},
      {[&] { cls->forward(x, t); }, "class_labels must be an integer (B,)"},
      {[&] {
         cls->forward(x, t, {}, {}, at::tensor({1, 10}));
       },
       "class_labels must lie in [0, 10)"},
      {[&] {
         cls->forward(x, t, e, {}, at::tensor({1, 2}));
       },
       "no cross-attention"},
      {[&] {
         cls->forward(x, t, {}, at::ones({2, 5}), at::tensor({1, 2}));
       },
       "without encoder_hidden_states"},
  };
  for (const auto& cs : cases) {
    const std::string msg = error_of(cs.fn);
    EXPECT_NE(msg.find(cs.needle), std::string::npos) << "expected '" << cs.needle << "' in: " << msg;
  }
}

TEST(Unet2d, ConfigParsingAndErrors) {
  const UNet2DConfig c =
      parse_config("preset: tiny\ncross_attention_dim: 32\nattention_head_dim: [2, 4, 8]\n");
  EXPECT_EQ(c.block_out_channels, (std::vector<int64_t>{32, 64, 64}));
  EXPECT_EQ(c.cross_attention_dim, 32);
  EXPECT_EQ(c.attention_head_dim, (std::vector<int64_t>{2, 4, 8}));
  EXPECT_EQ(parse_config("preset: sd15\n").cross_attention_dim, 768);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"preset: tiny\ncross_attention_dims: 3\n", "cross_attention_dims"},
      {"preset: huge\n", "preset"},
      {"preset: tiny\ndown_block_types: [DownBlock2D, Foo, DownBlock2D]\n", "Foo"},
      {"preset: tiny\nblock_out_channels: [32, 64]\n", "one entry per"},
      {"preset: tiny\nnorm_num_groups: 7\n", "multiples of norm_num_groups 7"},
      {"preset: tiny\nattention_head_dim: 3\n", "not divisible into 3 heads"},
      {"preset: tiny\nattention_head_dim: [4, 4]\n", "one number or one per level"},
      {"preset: tiny\nsample_size: 30\n", "sample_size 30"},
      {"preset: tiny\nmid_block_type: UNetMidBlock3D\n", "mid_block_type"},
      {"preset: tiny\nact_fn: gelu\n", "act_fn"},
      {"preset: tiny\ndropout: 1.5\n", "dropout"},
  };
  for (const auto& [yaml, needle] : bad) {
    std::string msg;
    try {
      parse_config(yaml);
    } catch (const ConfigError& e) {
      msg = e.what();
    }
    EXPECT_NE(msg.find(needle), std::string::npos) << yaml << " -> '" << msg << "'";
  }
}

// Stable Diffusion 1.5's UNet: 859,520,964 parameters in 686 tensors (diffusers' count for
// runwayml/stable-diffusion-v1-5/unet) and a few of its shapes. Slow: building 3.4 GB of fp32 weights
// takes ~10 s on 2 cores.
TEST(Unet2dSlow, Sd15LayoutByShape) {
  const UNet2DConfig c = unet2d_preset("sd15");
  UNet2DConditionModel unet(c);
  const auto sd = module_state_dict(*unet);
  int64_t params = 0;
  for (const auto& [k, v] : sd) params += v.numel();
  EXPECT_EQ(params, 859520964);
  EXPECT_EQ(sd.size(), 686u);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"conv_in.weight", {320, 4, 3, 3}},
      {"time_embedding.linear_1.weight", {1280, 320}},
      {"down_blocks.0.attentions.0.proj_in.weight", {320, 320, 1, 1}},
      {"down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", {320, 768}},
      {"down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight", {2560, 320}},
      {"down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight", {320, 1280}},
      {"down_blocks.1.resnets.0.conv_shortcut.weight", {640, 320, 1, 1}},
      {"down_blocks.2.downsamplers.0.conv.weight", {1280, 1280, 3, 3}},
      {"down_blocks.3.resnets.1.time_emb_proj.weight", {1280, 1280}},
      {"mid_block.attentions.0.transformer_blocks.0.attn1.to_out.0.bias", {1280}},
      {"mid_block.resnets.1.norm2.weight", {1280}},
      {"up_blocks.0.resnets.0.conv1.weight", {1280, 2560, 3, 3}},
      {"up_blocks.1.resnets.2.conv_shortcut.weight", {1280, 1920, 1, 1}},
      {"up_blocks.2.upsamplers.0.conv.weight", {640, 640, 3, 3}},
      {"up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_v.weight", {320, 768}},
      {"up_blocks.3.resnets.0.conv1.weight", {320, 960, 3, 3}},
      {"up_blocks.3.resnets.2.conv1.weight", {320, 640, 3, 3}},
      {"conv_norm_out.weight", {320}},
      {"conv_out.weight", {4, 320, 3, 3}},
  };
  for (const auto& [k, shape] : shapes) {
    ASSERT_TRUE(sd.count(k)) << k;
    EXPECT_EQ(sd.at(k).sizes(), shape) << k;
  }
  EXPECT_FALSE(sd.count("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias"));
  EXPECT_FALSE(sd.count("up_blocks.3.upsamplers.0.conv.weight"));
  const double gflops = static_cast<double>(unet->flops(1, 64, 64, 77)) / 1e9;
  std::printf("  sd15 flops(1, 64, 64, 77) = %.1f GFLOP\n", gflops);
}

// A one-level UNet (DownBlock2D / UpBlock2D, no mid block) by hand, B 1, 4x4, in 3, C0 8, temb 32, out 3:
//   conv_in             2*16*8*3*9            =   6912
//   time_embedding      2*8*32 + 2*32*32       =   2560
//   down resnet 8->8    2*(2*16*8*8*9) + 2*32*8 =  37376
//   up resnets 16->8    2 x (2*16*8*16*9 + 2*16*8*8*9 + 2*32*8 + 2*16*8*16) = 2 x 59904 = 119808
//   conv_out            2*16*3*8*9             =   6912
//   total                                       = 173568
TEST(Unet2d, FlopsMatchHandCount) {
  UNet2DConfig c;
  c.in_channels = 3, c.out_channels = 3, c.sample_size = 4;
  c.block_out_channels = {8};
  c.down_block_types = {"DownBlock2D"};
  c.up_block_types = {"UpBlock2D"};
  c.mid_block_type = "none";
  c.layers_per_block = 1;
  c.norm_num_groups = 4;
  UNet2DConditionModel unet(c);
  EXPECT_EQ(unet->flops(1, 4, 4, 0), 173568);
  EXPECT_EQ(unet->flops(3, 4, 4, 0), 3 * 173568);
  torch::NoGradGuard ng;
  EXPECT_EQ(unet->forward(at::randn({1, 3, 4, 4}), at::tensor({5})).sizes(),
            (std::vector<int64_t>{1, 3, 4, 4}));
}

TEST(Unet2d, KernelBackendsAgree) {
  const UNet2DConfig c = unet2d_preset("tiny");
  UNet2DConditionModel unet(c);
  unet->eval();
  const TinyInputs in = tiny_inputs(c, 3, 6);
  torch::NoGradGuard ng;
  unet->set_backends(AttentionBackend::kReference, ConvBackend::kReference);
  const at::Tensor ref = unet->forward(in.sample, in.t, in.ehs, in.mask);
  for (const auto& [a, g] : {std::pair{AttentionBackend::kMmref, ConvBackend::kMmref},
                             std::pair{AttentionBackend::kTorch, ConvBackend::kTorch},
                             std::pair{AttentionBackend::kMmref, ConvBackend::kTorch}}) {
    unet->set_backends(a, g);
    const double err = rel_err(unet->forward(in.sample, in.t, in.ehs, in.mask), ref);
    EXPECT_LT(err, 1e-4) << kernels::attention_backend_name(a) << " / " << kernels::conv_backend_name(g);
    std::printf("  %s attention, %s group norm vs reference: rel err %.2g\n",
                kernels::attention_backend_name(a), kernels::conv_backend_name(g), err);
  }
}

// Tiny preset transformers: down_blocks.1/2 (1 each), mid (1), up_blocks.0/1 (2 each) = 7, each with attn1
// (q, k, v: 64 -> 64) and attn2 (q: 64 -> 64; k, v: cross 64 -> 64), all 64 wide. LoRA r on a (in -> out)
// layer adds r * (in + out): 7 transformers x 6 projections x r * (64 + 64).
TEST(Unet2d, LoraOnAttentionProjections) {
  const UNet2DConfig c = unet2d_preset("tiny");
  UNet2DConditionModel unet(c);
  unet->eval();
  const TinyInputs in = tiny_inputs(c, 2, 5);
  at::Tensor before;
  {
    torch::NoGradGuard ng;
    before = unet->forward(in.sample, in.t, in.ehs, in.mask);
  }
  models::LoraConfig lc;
  lc.r = 4, lc.alpha = 8, lc.target_modules = ".*attn[12]\\.to_[qkv]";
  const auto paths = models::apply_lora(*unet, lc);
  EXPECT_EQ(paths.size(), 7u * 6u);
  EXPECT_EQ(models::count_trainable(*unet), 7 * 6 * 4 * (64 + 64));
  for (const auto& p : paths) EXPECT_NE(p.find("transformer_blocks.0.attn"), std::string::npos) << p;
  // B = 0 at init: the adapted model starts at the base model; gradients reach only the adapters.
  const at::Tensor after = unet->forward(in.sample, in.t, in.ehs, in.mask);
  EXPECT_LT(rel_err(after, before), 1e-6);
  after.square().mean().backward();
  int64_t with_grad = 0;
  for (const auto& [name, p] : module_state_dict(*unet)) {
    if (p.grad().defined()) {
      ++with_grad;
      EXPECT_NE(name.find("lora_"), std::string::npos) << name;
    }
  }
  EXPECT_EQ(with_grad, 7 * 6 * 2);
}

TEST(Unet2d, LoadRoundTripAndErrors) {
  UNet2DConfig c = unet2d_preset("tiny");
  c.down_block_types = {"DownBlock2D", "AttnDownBlock2D", "CrossAttnDownBlock2D"};  // an AttnBlock too
  c.attention_head_dim = {4, 16, 4};  // Attn block: 64 / 16 = 4 heads; transformers: 4 heads
  torch::manual_seed(1);
  UNet2DConditionModel a(c);
  torch::manual_seed(2);
  UNet2DConditionModel b(c);
  a->eval(), b->eval();
  const TinyInputs in = tiny_inputs(c, 2, 4);
  torch::NoGradGuard ng;
  const at::Tensor ya = a->forward(in.sample, in.t, in.ehs);
  ASSERT_GT(rel_err(b->forward(in.sample, in.t, in.ehs), ya), 1e-3);
  const std::string dir = fs::make_temp_dir("mmref_unet2d_");
  auto sd = module_state_dict(*a);
  ASSERT_TRUE(sd.count("down_blocks.1.attentions.0.group_norm.weight"));
  save_safetensors(dir + "/unet.safetensors", sd);
  b->load(dir + "/unet.safetensors");
  EXPECT_EQ(rel_err(b->forward(in.sample, in.t, in.ehs), ya), 0.0);

  // Deprecated attention-block names load too.
  std::map<std::string, at::Tensor> old;
  for (const auto& [k, v] : sd) {
    std::string key = k;
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{".attentions.0.to_q.", ".attentions.0.query."},
          {".attentions.0.to_out.0.", ".attentions.0.proj_attn."}}) {
      if (auto pos = key.find(from); pos != std::string::npos && key.rfind("down_blocks.1.", 0) == 0)
        key.replace(pos, from.size(), to);
    }
    old["unet." + key] = v;
  }
  ASSERT_TRUE(old.count("unet.down_blocks.1.attentions.0.proj_attn.weight"));
  UNet2DConditionModel d(c);
  d->eval();
  d->load(old);
  EXPECT_EQ(rel_err(d->forward(in.sample, in.t, in.ehs), ya), 0.0);

  auto missing = sd;
  missing.erase("mid_block.resnets.1.conv2.bias");
  missing["down_blocks.9.extra.weight"] = at::zeros({1});
  const std::string msg = error_of([&] { b->load(missing); });
  EXPECT_NE(msg.find("missing 1 (mid_block.resnets.1.conv2.bias)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected 1 (down_blocks.9.extra.weight)"), std::string::npos) << msg;
  const std::string file_msg = error_of([&] { b->load(dir + "/absent.safetensors"); });
  EXPECT_NE(file_msg.find("absent.safetensors"), std::string::npos) << file_msg;
  stdfs::remove_all(dir);
}

// ------------------------------------------------------------------------------------------ Unet2dReference
struct RefCase {
  std::string name, yaml;
  int64_t batch, height, width, seq_len;
  bool mask, float_timesteps;
};

const std::vector<RefCase>& ref_cases() {
  static const std::vector<RefCase> cases = {
      // The tiny preset (conv proj_in/out) with a text mask, odd batch.
      {"text_mask", "preset: tiny\n", 3, 32, 32, 7, true, false},
      // Class-conditioned, no cross-attention: AttnDown/UpBlock2D attention blocks (with q/k/v biases),
      // a self-attention-only mid transformer, float timesteps, downsample padding 0, flipped sin/cos off.
      {"class_attn",
       "preset: tiny_class\ndown_block_types: [DownBlock2D, AttnDownBlock2D, AttnDownBlock2D]\n"
       "up_block_types: [AttnUpBlock2D, AttnUpBlock2D, UpBlock2D]\nattention_head_dim: [8, 16, 32]\n"
       "flip_sin_to_cos: false\nfreq_shift: 1\ndownsample_padding: 0\nmid_block_scale_factor: 2\n",
       2, 16, 16, 0, false, true},
      // use_linear_projection, 2 transformer layers per block, 2 resnets per block, per-level heads.
      {"linear_proj",
       "preset: tiny\nuse_linear_projection: true\ntransformer_layers_per_block: 2\nlayers_per_block: 2\n"
       "attention_head_dim: [2, 4, 2]\ncross_attention_dim: 24\n",
       2, 16, 16, 5, true, false},
  };
  return cases;
}

struct RefRun {
  std::string dir, skip_reason;
};

const RefRun& ref_run() {
  static const RefRun r = [] {
    RefRun out;
    const std::string py = "/usr/bin/python3";
    if (!stdfs::exists(py)) {
      out.skip_reason = "no " + py + " (needs torch)";
      return out;
    }
    out.dir = fs::make_temp_dir("mmref_unet2d_ref");
    json cases = json::array();
    int seed = 100;
    for (const auto& c : ref_cases()) {
      cases.push_back({{"name", c.name},
                       {"seed", seed++},
                       {"batch", c.batch},
                       {"height", c.height},
                       {"width", c.width},
                       {"seq_len", c.seq_len},
                       {"mask", c.mask},
                       {"float_timesteps", c.float_timesteps},
                       {"config", to_diffusers_config(parse_config(c.yaml))}});
    }
    fs::atomic_write(out.dir + "/cases.json", cases.dump(1));
    const std::string err = out.dir + "/stderr.txt";
    const std::string cmd = py + " " + std::string(MMREF_SOURCE_DIR) + "/tests/models/unet2d_reference.py " +
                            out.dir + " " + out.dir + "/cases.json 2>" + err;
    const int st = std::system(cmd.c_str());
    const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc == 3) {
      out.skip_reason = "torch unavailable: " + fs::read_file(err);
    } else if (rc != 0) {
      ADD_FAILURE() << cmd << " failed (rc " << rc << "): " << fs::read_file(err);
      out.dir.clear();
    }
    return out;
  }();
  return r;
}

void check_reference_case(const std::string& name) {
  const RefRun& R = ref_run();
  if (!R.skip_reason.empty()) GTEST_SKIP() << R.skip_reason;
  ASSERT_FALSE(R.dir.empty()) << "reference generation failed";
  const RefCase* rc = nullptr;
  for (const auto& c : ref_cases()) rc = c.name == name ? &c : rc;
  ASSERT_NE(rc, nullptr);
  const UNet2DConfig cfg = parse_config(rc->yaml);
  const auto f = SafetensorsFile::open(R.dir + "/" + name + ".safetensors");
  std::map<std::string, at::Tensor> weights;
  for (const auto& info : f.tensors()) {
    if (info.name.rfind("weight.", 0) == 0) weights[info.name.substr(7)] = f.get(info.name);
  }
  auto get = [&](const std::string& k) { return f.contains(k) ? f.get(k) : at::Tensor(); };
  const at::Tensor x = f.get("input.sample"), t = f.get("input.timesteps"), w = f.get("input.loss_weight");
  const at::Tensor ehs = get("input.encoder_hidden_states"), mask = get("input.encoder_attention_mask"),
                   labels = get("input.class_labels");
  UNet2DConditionModel unet(cfg);
  unet->eval();
  unet->load(weights);  // strict: every diffusers key of the reference, nothing else
  EXPECT_EQ(unet->flops(rc->batch, rc->height, rc->width, rc->seq_len),
            f.get("output.flops").item<int64_t>());

  for (const bool f64 : {false, true}) {
    SCOPED_TRACE(f64 ? "float64" : "float32");
    if (f64) unet->to(at::kDouble);
    const auto dt = f64 ? at::kDouble : at::kFloat;
    const at::Tensor xin = x.to(dt).detach().clone().requires_grad_(true);
    const at::Tensor y = unet->forward(xin, t, ehs.defined() ? ehs.to(dt) : ehs, mask, labels);
    (y * w.to(dt)).sum().backward();
    const at::Tensor ref = f.get(f64 ? "output.sample_f64" : "output.sample");
    const at::Tensor gref = f.get(f64 ? "output.grad_sample_f64" : "output.grad_sample");
    ASSERT_EQ(y.sizes(), ref.sizes());
    const double err = rel_err(y.detach(), ref), gerr = rel_err(xin.grad(), gref);
    // fp32: different kernels (fused GroupNorm+SiLU, online-softmax attention) vs torch's; fp64: the same
    // composition, exact to rounding.
    EXPECT_LT(err, f64 ? 1e-9 : 1e-4);
    EXPECT_LT(gerr, f64 ? 1e-9 : 1e-4);
    if (!f64) {
      // FlashAttention's bar: our fp32 error vs torch's fp32 error, both against fp64.
      const double ours = rel_err(y.detach(), f.get("output.sample_f64"));
      const double torch32 = rel_err(ref, f.get("output.sample_f64"));
      EXPECT_LE(ours, 2 * torch32 + 1e-7) << "our fp32 error must stay within twice torch's";
      std::printf("  %s: fp32 rel err vs torch fp32 %.2g (grad %.2g); vs fp64: ours %.2g, torch %.2g\n",
                  name.c_str(), err, gerr, ours, torch32);
    } else {
      std::printf("  %s: fp64 rel err %.2g (grad %.2g)\n", name.c_str(), err, gerr);
    }
  }
}

TEST(Unet2dReference, TextConditionedWithMask) { check_reference_case("text_mask"); }
TEST(Unet2dReference, ClassConditionedAttnBlocksNoCrossAttention) { check_reference_case("class_attn"); }
TEST(Unet2dReference, LinearProjectionTwoTransformerLayers) { check_reference_case("linear_proj"); }

// ------------------------------------------------------------------------------------------ TextEncoder
TextEncoderConfig small_text_config() {
  TextEncoderConfig c;
  c.vocab_size = 40, c.max_length = 12, c.width = 64, c.layers = 2, c.heads = 4;
  return c;
}

TEST(TextEncoder, ShapesAndZeroPadding) {
  TextEncoder enc(small_text_config());
  enc->eval();
  const at::Tensor ids = at::tensor({5, 6, 7, 0, 0, 9, 3, 2, 8, 4}, at::kLong).view({2, 5});
  const at::Tensor y = enc->forward(ids);  // mask from pad_id 0
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 5, 64}));
  EXPECT_EQ(y[0].narrow(0, 3, 2).abs().max().item<double>(), 0.0);
  EXPECT_GT(y[1].abs().min().item<double>(), 0.0);
  const std::vector<std::pair<std::function<void()>, std::string>> bad = {
      {[&] {
         enc->forward(at::zeros({2, 13}, at::kLong));
       },
       "max_length 12"},
      {[&] {
         enc->forward(at::full({1, 3}, 40, at::kLong));
       },
       "vocab_size 40"},
      {[&] { enc->forward(at::zeros({3}, at::kLong)); }, "integer (B, L)"},
      {[&] {
         enc->forward(ids, at::ones({2, 4}));
       },
       "mask [2, 4]"},
  };
  for (const auto& [fn, needle] : bad) {
    const std::string msg = error_of(fn);
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

TEST(TextEncoder, PaddingDoesNotChangeRealTokens) {
  TextEncoder enc(small_text_config());
  enc->eval();
  torch::NoGradGuard ng;
  const at::Tensor alone =
      enc->forward(at::tensor({11, 12, 13}, at::kLong).view({1, 3}));  // (1, 3, W), no padding
  // The same text padded to 8 with arbitrary ids under an explicit mask, next to a longer text.
  at::Tensor ids = at::randint(1, 40, {2, 8}, at::kLong);
  ids[0].narrow(0, 0, 3).copy_(at::tensor({11, 12, 13}, at::kLong));
  at::Tensor mask = at::ones({2, 8}, at::kBool);
  mask[0].narrow(0, 3, 5).fill_(false);
  const at::Tensor y = enc->forward(ids, mask);
  EXPECT_LT(rel_err(y[0].narrow(0, 0, 3), alone[0]), 1e-6);
  EXPECT_EQ(y[0].narrow(0, 3, 5).abs().max().item<double>(), 0.0);
  // Backends agree, causal variant too.
  for (const bool causal : {false, true}) {
    TextEncoderConfig c = small_text_config();
    c.causal = causal;
    TextEncoder e2(c);
    e2->eval();
    e2->attention_backend = AttentionBackend::kReference;
    const at::Tensor ref = e2->forward(ids, mask);
    e2->attention_backend = AttentionBackend::kMmref;
    EXPECT_LT(rel_err(e2->forward(ids, mask), ref), 1e-5) << "causal " << causal;
  }
}

TEST(TextEncoder, VocabularyWordAndChar) {
  const std::vector<std::string> texts = {"a red circle", "A blue square, left of a red circle."};
  const TextVocab words = TextVocab::build(texts, TextVocab::Level::kWord);
  // <pad>, <unk>, then a blue circle left of red square (sorted).
  EXPECT_EQ(words.tokens(), (std::vector<std::string>{"<pad>", "<unk>", "a", "blue", "circle", "left", "of",
                                                      "red", "square"}));
  EXPECT_EQ(words.encode("Red circle, green!"), (std::vector<int64_t>{7, 4, TextVocab::kUnkId}));
  const TokenBatch tb = words.encode_batch({"a red circle", "square", ""}, /*max_length=*/2);
  EXPECT_EQ(tb.ids.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(at::equal(tb.ids, at::tensor({2, 7, 8, 0, 0, 0}, at::kLong).view({3, 2})));
  EXPECT_TRUE(at::equal(tb.mask, at::tensor({1, 1, 1, 0, 0, 0}).to(at::kBool).view({3, 2})));
  const TextVocab chars = TextVocab::build({"ab a"}, TextVocab::Level::kChar);
  EXPECT_EQ(chars.tokens(), (std::vector<std::string>{"<pad>", "<unk>", " ", "a", "b"}));
  EXPECT_EQ(chars.encode("Ba c"), (std::vector<int64_t>{4, 3, 2, 1}));
  const std::string dir = fs::make_temp_dir("mmref_vocab_");
  words.save_json(dir + "/vocab.json");
  const TextVocab back = TextVocab::load_json(dir + "/vocab.json");
  EXPECT_EQ(back.tokens(), words.tokens());
  EXPECT_EQ(back.level(), TextVocab::Level::kWord);
  fs::atomic_write(dir + "/bad.json", "{\"level\": \"word\", \"tokens\": [\"x\"]}");
  EXPECT_NE(error_of([&] { TextVocab::load_json(dir + "/bad.json"); }).find("bad.json"), std::string::npos);
  stdfs::remove_all(dir);
  // Every batch the encoder reads fits the encoder's contract.
  TextEncoderConfig c = small_text_config();
  c.vocab_size = words.size();
  TextEncoder enc(c);
  EXPECT_EQ(enc->forward(tb.ids, tb.mask).sizes(), (std::vector<int64_t>{3, 2, 64}));
}

TEST(TextEncoder, ConditionsTheUnetJointly) {
  TextEncoder enc(small_text_config());
  UNet2DConditionModel unet(unet2d_preset("tiny"));
  const at::Tensor ids = at::randint(1, 40, {2, 6}, at::kLong);
  at::Tensor mask = at::ones({2, 6}, at::kBool);
  mask[1].narrow(0, 4, 2).fill_(false);
  const at::Tensor ehs = enc->forward(ids, mask);  // (2, 6, 64) = cross_attention_dim
  const at::Tensor y =
      unet->forward(at::randn({2, 3, 32, 32}), at::tensor({1, 500}), ehs, mask.to(at::kFloat));
  y.square().mean().backward();
  EXPECT_TRUE(enc->token_embedding->weight.grad().defined());
  EXPECT_GT(enc->token_embedding->weight.grad().abs().sum().item<double>(), 0.0);
}

TEST(TextEncoder, ConfigParsing) {
  const auto n = config::parse_yaml("width: 32\nheads: 4\nlayers: 1\ncausal: true\n", "te.yaml");
  config::Reader r(&n, "", nullptr);
  TextEncoderConfig c;
  parse(r, c);
  EXPECT_EQ(c.width, 32);
  EXPECT_TRUE(c.causal);
  for (const char* bad : {"width: 30\nheads: 4\n", "widht: 32\n", "pad_id: 300\n"}) {
    const auto nb = config::parse_yaml(bad, "bad.yaml");
    config::Reader rb(&nb, "", nullptr);
    TextEncoderConfig cb;
    EXPECT_THROW(parse(rb, cb), ConfigError) << bad;
  }
}

// The adapter's last_hidden_state, pooled at the EOT token and projected, is CLIP's encode_text.
TEST(TextEncoder, ClipAdapterMatchesClipTextTower) {
  models::ClipConfig cc;
  cc.embed_dim = 16, cc.image_resolution = 32, cc.vision_layers = 1, cc.vision_width = 64,
  cc.vision_patch_size = 16;
  cc.context_length = 10, cc.vocab_size = 50, cc.transformer_width = 64, cc.transformer_heads = 4;
  cc.transformer_layers = 2;
  torch::manual_seed(5);
  models::ClipModel clip(cc);
  auto sd = module_state_dict(*clip);
  {
    torch::NoGradGuard ng;
    for (auto& [k, v] : sd) v.normal_(0, 0.05);  // the model's zero-initialised tensors become random
  }
  const ClipTextConfig tc = ClipTextConfig::infer(clip_text_state_dict(sd), /*heads=*/4);
  EXPECT_EQ(tc.layers, 2);
  EXPECT_EQ(tc.width, 64);
  EXPECT_EQ(tc.context_length, 10);
  ClipTextAdapter adapter(tc);
  adapter->load(sd);  // the whole CLIP file: vision tower and projections are dropped
  torch::NoGradGuard ng;
  const at::Tensor ids =
      at::tensor({3, 7, 9, 49, 0, 0, 0, 0, 0, 0, 3, 4, 5, 6, 8, 49, 0, 0, 0, 0}, at::kLong).view({2, 10});
  const at::Tensor h = adapter->forward(ids);
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 10, 64}));
  const at::Tensor pooled = h.index({at::arange(2), ids.argmax(-1)});
  const at::Tensor ours = at::matmul(pooled, sd.at("text_projection"));
  EXPECT_LT(rel_err(ours, clip->encode_text(ids)), 1e-5);
  // A prefix of the context (causal attention: the first L outputs do not see later tokens).
  EXPECT_LT(rel_err(adapter->forward(ids.narrow(1, 0, 4)), h.narrow(1, 0, 4)), 1e-5);
  EXPECT_NE(error_of([&] {
              adapter->forward(at::zeros({1, 11}, at::kLong));
            }).find("1 <= L <= 10"),
            std::string::npos);
}

}  // namespace
}  // namespace mmref::diffusion
