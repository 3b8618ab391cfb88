// CLIP image and text towers; see clip_model.h.
#include "models/clip/clip_model.h"

#include <cmath>
#include <regex>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/state_dict.h"
#include "kernels/dispatch.h"

namespace mmref::models {

using torch::Tensor;

namespace {

Tensor quick_gelu(const Tensor& x) { return x * at::sigmoid(1.702 * x); }

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t width, int64_t heads) {
    attn = register_module("attn", ClipAttention(width, heads));
    ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
    mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
    c_fc = mlp->register_module("c_fc", torch::nn::Linear(width, 4 * width));
    c_proj = mlp->register_module("c_proj", torch::nn::Linear(4 * width, width));
    ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5)));
  }
  Tensor forward(Tensor x, bool causal, kernels::AttentionBackend backend) {
    x = x + attn->forward(ln_1->forward(x), causal, backend);
    return x + c_proj->forward(quick_gelu(c_fc->forward(ln_2->forward(x))));
  }
  ClipAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  std::shared_ptr<torch::nn::Module> mlp;
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(ResidualBlock);

int64_t count_layers(const std::map<std::string, Tensor>& sd, const std::string& prefix) {
  static const std::regex re(R"(^(.*resblocks)\.(\d+)\.)");
  int64_t n = 0;
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (k.rfind(prefix, 0) == 0 && std::regex_search(k, m, re) && m[1].str() == prefix + "resblocks") {
      n = std::max<int64_t>(n, std::stoll(m[2].str()) + 1);
    }
  }
  return n;
}

const Tensor& need(const std::map<std::string, Tensor>& sd, const std::string& k) {
  auto it = sd.find(k);
  if (it == sd.end()) MMREF_FAIL("CLIP weights: no '{}' (expected OpenAI CLIP or Hugging Face CLIPModel names)", k);
  return it->second;
}

}  // namespace

ClipConfig ClipConfig::infer(const std::map<std::string, at::Tensor>& sd, int64_t text_heads) {
  ClipConfig c;
  const Tensor& conv = need(sd, "visual.conv1.weight");
  c.vision_width = conv.size(0);
  c.vision_patch_size = conv.size(2);
  c.vision_layers = count_layers(sd, "visual.transformer.");
  const int64_t grid = static_cast<int64_t>(std::llround(std::sqrt(need(sd, "visual.positional_embedding").size(0) - 1)));
  c.image_resolution = grid * c.vision_patch_size;
  c.embed_dim = need(sd, "text_projection").size(1);
  c.context_length = need(sd, "positional_embedding").size(0);
  c.vocab_size = need(sd, "token_embedding.weight").size(0);
  c.transformer_width = need(sd, "ln_final.weight").size(0);
  c.transformer_heads = text_heads > 0 ? text_heads : c.transformer_width / 64;
  c.transformer_layers = count_layers(sd, "transformer.");
  return c;
}

ClipAttentionImpl::ClipAttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  if (heads < 1 || width % heads != 0) MMREF_FAIL("CLIP attention: width {} is not divisible by {} heads", width, heads);
  in_proj_weight = register_parameter("in_proj_weight", at::randn({3 * width, width}) * std::pow(width, -0.5));
  in_proj_bias = register_parameter("in_proj_bias", at::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

Tensor ClipAttentionImpl::forward(const Tensor& x, bool causal, kernels::AttentionBackend backend) {
  const int64_t b = x.size(0), l = x.size(1), w = x.size(2), d = w / heads_;
  const Tensor qkv = at::linear(x, in_proj_weight, in_proj_bias).view({b, l, 3, heads_, d}).permute({2, 0, 3, 1, 4});
  kernels::AttentionOptions o;
  o.causal = causal;
  const Tensor y = kernels::attention(qkv[0], qkv[1], qkv[2], o, backend);  // (B, H, L, D)
  return out_proj->forward(y.permute({0, 2, 1, 3}).reshape({b, l, w}));
}

ClipTransformerImpl::ClipTransformerImpl(int64_t width, int64_t layers, int64_t heads) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) resblocks->push_back(ResidualBlock(width, heads));
}

Tensor ClipTransformerImpl::forward(Tensor x, bool causal, kernels::AttentionBackend backend) {
  for (size_t i = 0; i < resblocks->size(); ++i) x = resblocks->ptr<ResidualBlockImpl>(i)->forward(x, causal, backend);
  return x;
}

ClipModelImpl::ClipModelImpl(const ClipConfig& c) : c_(c) {
  const int64_t vw = c.vision_width, grid = c.image_resolution / c.vision_patch_size;
  visual = register_module("visual", std::make_shared<torch::nn::Module>());
  conv1 = visual->register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, vw, c.vision_patch_size)
                                                                 .stride(c.vision_patch_size)
                                                                 .bias(false)));
  class_embedding = visual->register_parameter("class_embedding", at::zeros({vw}));
  vis_pos = visual->register_parameter("positional_embedding", at::zeros({grid * grid + 1, vw}));
  ln_pre = visual->register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({vw}).eps(1e-5)));
  vis_transformer = visual->register_module("transformer", ClipTransformer(vw, c.vision_layers, vw / 64));
  ln_post = visual->register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({vw}).eps(1e-5)));
  proj = visual->register_parameter("proj", at::zeros({vw, c.embed_dim}));
  transformer = register_module("transformer",
                                ClipTransformer(c.transformer_width, c.transformer_layers, c.transformer_heads));
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.transformer_width));
  positional_embedding = register_parameter("positional_embedding", at::zeros({c.context_length, c.transformer_width}));
  ln_final = register_module("ln_final",
                             torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.transformer_width}).eps(1e-5)));
  text_projection = register_parameter("text_projection", at::zeros({c.transformer_width, c.embed_dim}));
  logit_scale = register_parameter("logit_scale", at::full({}, std::log(1 / 0.07)));
  eval();
}

void ClipModelImpl::load(const std::map<std::string, at::Tensor>& sd) {
  auto openai = clip_openai_state_dict(sd);
  // Official OpenAI checkpoints also carry these three scalars, which build_model drops.
  for (const char* k : {"input_resolution", "context_length", "vocab_size"}) openai.erase(k);
  load_state_dict(*this, openai);
}

void ClipModelImpl::load(const std::string& path) { load(load_weights(path)); }

void ClipModelImpl::initialize_parameters() {
  torch::NoGradGuard ng;
  auto ends_with = [](const std::string& s, const char* tail) {
    const std::string t(tail);
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  const double vscale = std::pow(static_cast<double>(c_.vision_width), -0.5);
  class_embedding.normal_(0, vscale);
  vis_pos.normal_(0, vscale);
  proj.normal_(0, vscale);
  token_embedding->weight.normal_(0, 0.02);
  positional_embedding.normal_(0, 0.01);
  const double w = static_cast<double>(c_.transformer_width);
  const double attn_std = std::pow(w, -0.5), proj_std = attn_std * std::pow(2.0 * static_cast<double>(c_.transformer_layers), -0.5),
               fc_std = std::pow(2.0 * w, -0.5);
  for (auto& p : transformer->named_parameters()) {
    const std::string& k = p.key();
    if (ends_with(k, "attn.in_proj_weight")) p.value().normal_(0, attn_std);
    else if (ends_with(k, "attn.out_proj.weight") || ends_with(k, "mlp.c_proj.weight")) p.value().normal_(0, proj_std);
    else if (ends_with(k, "mlp.c_fc.weight")) p.value().normal_(0, fc_std);
  }
  // nn.MultiheadAttention starts its in_proj and out_proj biases at zero (both towers).
  for (auto& p : named_parameters()) {
    if (ends_with(p.key(), "attn.in_proj_bias") || ends_with(p.key(), "attn.out_proj.bias")) p.value().zero_();
  }
  text_projection.normal_(0, attn_std);
  logit_scale.fill_(std::log(1 / 0.07));
}

Tensor ClipModelImpl::encode_image(const Tensor& image) {
  const int64_t r = c_.image_resolution;
  if (image.dim() != 4 || image.size(1) != 3 || image.size(2) != r || image.size(3) != r) {
    MMREF_FAIL("CLIP encode_image: expected (N, 3, {}, {}) normalized images (see clip_preprocess), got [{}]", r, r,
               fmt::join(image.sizes(), ", "));
  }
  Tensor x = conv1->forward(image.to(at::kFloat));              // (N, W, g, g)
  x = x.flatten(2).transpose(1, 2);                             // (N, g*g, W)
  const Tensor cls = class_embedding.view({1, 1, -1}).expand({x.size(0), 1, x.size(2)});
  x = at::cat({cls, x}, 1) + vis_pos.unsqueeze(0);              // (N, g*g+1, W)
  x = vis_transformer->forward(ln_pre->forward(x), /*causal=*/false, attention_backend);
  return at::matmul(ln_post->forward(x.select(1, 0)), proj);    // (N, E)
}

Tensor ClipModelImpl::encode_text(const Tensor& text) {
  if (text.dim() != 2 || text.size(1) != c_.context_length) {
    MMREF_FAIL("CLIP encode_text: expected (N, {}) token ids, got [{}]", c_.context_length, fmt::join(text.sizes(), ", "));
  }
  Tensor x = token_embedding->forward(text) + positional_embedding.unsqueeze(0);  // (N, L, W)
  x = ln_final->forward(transformer->forward(x, /*causal=*/true, attention_backend));
  const Tensor eot = text.argmax(-1);                                              // (N,)
  return at::matmul(x.index({at::arange(x.size(0)), eot}), text_projection);       // (N, E)
}

Tensor ClipModelImpl::logits_per_image(const Tensor& image, const Tensor& text) {
  Tensor i = encode_image(image), t = encode_text(text);
  i = i / i.norm(2, -1, true);
  t = t / t.norm(2, -1, true);
  return logit_scale.exp() * at::matmul(i, t.t());
}

std::map<std::string, at::Tensor> clip_openai_state_dict(const std::map<std::string, at::Tensor>& sd) {
  if (sd.count("visual.conv1.weight")) return sd;  // already OpenAI names
  if (!sd.count("vision_model.embeddings.patch_embedding.weight")) {
    MMREF_FAIL("CLIP weights: neither OpenAI names (visual.conv1.weight) nor Hugging Face CLIPModel names "
               "(vision_model.embeddings.patch_embedding.weight) found");
  }
  std::map<std::string, at::Tensor> out;
  static const std::regex layer(R"(^(vision|text)_model\.encoder\.layers\.(\d+)\.(.*)$)");
  std::map<std::string, std::map<std::string, Tensor>> qkv;  // out prefix -> {q_proj.weight, ...}
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (std::regex_match(k, m, layer)) {
      const std::string pre = (m[1] == "vision" ? "visual.transformer.resblocks." : "transformer.resblocks.") +
                              m[2].str() + ".";
      const std::string rest = m[3];
      if (rest.rfind("self_attn.q_proj.", 0) == 0 || rest.rfind("self_attn.k_proj.", 0) == 0 ||
          rest.rfind("self_attn.v_proj.", 0) == 0) {
        qkv[pre][rest.substr(10)] = v;  // "q_proj.weight", ...
        continue;
      }
      static const std::vector<std::pair<std::string, std::string>> names = {
          {"self_attn.out_proj.", "attn.out_proj."}, {"layer_norm1.", "ln_1."}, {"layer_norm2.", "ln_2."},
          {"mlp.fc1.", "mlp.c_fc."}, {"mlp.fc2.", "mlp.c_proj."}};
      bool done = false;
      for (const auto& [hf, oa] : names) {
        if (rest.rfind(hf, 0) == 0) out[pre + oa + rest.substr(hf.size())] = v, done = true;
      }
      if (!done) out[k] = v;  // reported as unexpected by the strict load
      continue;
    }
    static const std::map<std::string, std::string> flat = {
        {"vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"},
        {"vision_model.embeddings.class_embedding", "visual.class_embedding"},
        {"vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"},
        {"vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"},
        {"vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"},
        {"vision_model.post_layernorm.weight", "visual.ln_post.weight"},
        {"vision_model.post_layernorm.bias", "visual.ln_post.bias"},
        {"text_model.embeddings.token_embedding.weight", "token_embedding.weight"},
        {"text_model.embeddings.position_embedding.weight", "positional_embedding"},
        {"text_model.final_layer_norm.weight", "ln_final.weight"},
        {"text_model.final_layer_norm.bias", "ln_final.bias"},
        {"logit_scale", "logit_scale"}};
    if (k == "visual_projection.weight") {
      out["visual.proj"] = v.t().contiguous();
    } else if (k == "text_projection.weight") {
      out["text_projection"] = v.t().contiguous();
    } else if (k.find("position_ids") != std::string::npos) {
      continue;  // HF buffers, not weights
    } else if (auto it = flat.find(k); it != flat.end()) {
      out[it->second] = v;
    } else {
      out[k] = v;
    }
  }
  for (auto& [pre, p] : qkv) {
    for (const char* kind : {"weight", "bias"}) {
      const std::string q = std::string("q_proj.") + kind, k = std::string("k_proj.") + kind,
                        v = std::string("v_proj.") + kind;
      if (!p.count(q) || !p.count(k) || !p.count(v)) MMREF_FAIL("CLIP weights: {} lacks one of q/k/v_proj.{}", pre, kind);
      out[pre + "attn.in_proj_" + kind] = at::cat({p[q], p[k], p[v]}, 0);
    }
  }
  return out;
}

Tensor clip_preprocess(const Tensor& images01, int64_t size) {
  if (images01.dim() != 4 || images01.size(1) != 3) {
    MMREF_FAIL("CLIP preprocess: expected (N, 3, H, W) RGB in [0, 1], got [{}] (convert grayscale/RGBA to RGB)",
               fmt::join(images01.sizes(), ", "));
  }
  const int64_t h = images01.size(2), w = images01.size(3);
  const double s = static_cast<double>(size) / static_cast<double>(std::min(h, w));
  const int64_t nh = std::max<int64_t>(size, std::llround(h * s)), nw = std::max<int64_t>(size, std::llround(w * s));
  Tensor x = images01.to(at::kFloat);
  if (nh != h || nw != w) x = at::_upsample_bicubic2d_aa(x, {nh, nw}, /*align_corners=*/false).clamp(0, 1);
  // torchvision CenterCrop: int(round((H - size) / 2)).
  const int64_t top = std::llround((nh - size) / 2.0), left = std::llround((nw - size) / 2.0);
  x = x.narrow(2, top, size).narrow(3, left, size);
  const Tensor mean = at::tensor({0.48145466f, 0.4578275f, 0.40821073f}).view({1, 3, 1, 1});
  const Tensor std = at::tensor({0.26862954f, 0.26130258f, 0.27577711f}).view({1, 3, 1, 1});
  return (x - mean) / std;
}

}  // namespace mmref::models
