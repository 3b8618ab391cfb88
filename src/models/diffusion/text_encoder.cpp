// Text conditioning for the diffusion UNet; see text_encoder.h.
#include "models/diffusion/text_encoder.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <regex>
#include <set>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/state_dict.h"
#include "kernels/dispatch.h"

namespace mmref::diffusion {

using torch::Tensor;

namespace {

Tensor maybe_dropout(const Tensor& x, double p, bool training) {
  return training && p > 0 ? at::dropout(x, p, /*train=*/true) : x;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string sizes(const Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

// (B, L) keep mask -> (B, 1, 1, L) additive bias, -inf at padding; none when nothing is padded.
std::optional<Tensor> key_bias(const Tensor& keep, at::ScalarType dtype) {
  if (keep.numel() == 0 || keep.all().item<bool>()) return std::nullopt;
  const Tensor bias = at::zeros(keep.sizes(), keep.options().dtype(dtype))
                          .masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  return bias.view({keep.size(0), 1, 1, keep.size(1)});
}

}  // namespace

// ---------------------------------------------------------------- TextVocab
TextVocab::TextVocab(std::vector<std::string> tokens, Level level)
    : tokens_(std::move(tokens)), level_(level) {
  if (tokens_.size() < 2 || tokens_[0] != "<pad>" || tokens_[1] != "<unk>") {
    MMREF_FAIL("TextVocab: the token list must start with \"<pad>\", \"<unk>\" (got {} tokens)",
               tokens_.size());
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (!index_.emplace(tokens_[i], static_cast<int64_t>(i)).second) {
      MMREF_FAIL("TextVocab: token '{}' appears twice (ids {} and {})", tokens_[i], index_[tokens_[i]], i);
    }
  }
}

std::vector<std::string> TextVocab::split(const std::string& text) const {
  const std::string s = lower(text);
  std::vector<std::string> out;
  if (level_ == Level::kChar) {
    for (char ch : s) out.emplace_back(1, ch);
    return out;
  }
  std::string word;
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || u >= 0x80) {
      word += ch;
    } else if (!word.empty()) {
      out.push_back(word);
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

TextVocab TextVocab::build(const std::vector<std::string>& texts, Level level) {
  const TextVocab splitter({"<pad>", "<unk>"}, level);
  std::set<std::string> seen;
  for (const auto& t : texts) {
    for (auto& tok : splitter.split(t)) seen.insert(std::move(tok));
  }
  std::vector<std::string> tokens = {"<pad>", "<unk>"};
  for (const auto& tok : seen) {
    if (tok != "<pad>" && tok != "<unk>") tokens.push_back(tok);
  }
  return TextVocab(std::move(tokens), level);
}

std::vector<int64_t> TextVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& tok : split(text)) {
    auto it = index_.find(tok);
    ids.push_back(it == index_.end() ? kUnkId : it->second);
  }
  return ids;
}

TokenBatch TextVocab::encode_batch(const std::vector<std::string>& texts, int64_t max_length) const {
  if (max_length < 1) MMREF_FAIL("TextVocab::encode_batch: max_length must be >= 1, got {}", max_length);
  std::vector<std::vector<int64_t>> seqs;
  int64_t longest = 1;
  for (const auto& t : texts) {
    seqs.push_back(encode(t));
    if (static_cast<int64_t>(seqs.back().size()) > max_length) seqs.back().resize(max_length);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(seqs.back().size()));
  }
  const auto b = static_cast<int64_t>(texts.size());
  TokenBatch out{at::full({b, longest}, kPadId, at::kLong), at::zeros({b, longest}, at::kBool)};
  auto ids = out.ids.accessor<int64_t, 2>();
  auto mask = out.mask.accessor<bool, 2>();
  for (int64_t i = 0; i < b; ++i) {
    for (size_t j = 0; j < seqs[i].size(); ++j) ids[i][j] = seqs[i][j], mask[i][j] = true;
  }
  return out;
}

void TextVocab::save_json(const std::string& path) const {
  const nlohmann::json j = {{"level", level_ == Level::kWord ? "word" : "char"}, {"tokens", tokens_}};
  fs::atomic_write(path, j.dump(1) + "\n");
}

TextVocab TextVocab::load_json(const std::string& path) {
  try {
    const auto j = nlohmann::json::parse(fs::read_file(path));
    const std::string level = j.at("level").get<std::string>();
    if (level != "word" && level != "char") MMREF_FAIL("level is '{}', expected word or char", level);
    return TextVocab(j.at("tokens").get<std::vector<std::string>>(),
                     level == "word" ? Level::kWord : Level::kChar);
  } catch (const nlohmann::json::exception& e) {
    MMREF_FAIL("TextVocab '{}': {}", path, e.what());
  } catch (const Error& e) {
    MMREF_FAIL("TextVocab '{}': {}", path, e.what());
  }
}

// ---------------------------------------------------------------- config
void TextEncoderConfig::validate() const {
  auto fail = [](const std::string& what) { throw ConfigError("text encoder config: " + what); };
  if (vocab_size < 2) fail(fmt::format("vocab_size must be >= 2, got {}", vocab_size));
  if (max_length < 1) fail(fmt::format("max_length must be >= 1, got {}", max_length));
  if (width < 1 || heads < 1 || width % heads != 0) {
    fail(fmt::format("width {} must be a positive multiple of heads {}", width, heads));
  }
  if (layers < 0) fail(fmt::format("layers must be >= 0, got {}", layers));
  if (mlp_ratio < 1) fail(fmt::format("mlp_ratio must be >= 1, got {}", mlp_ratio));
  if (!(dropout >= 0 && dropout < 1)) fail(fmt::format("dropout must be in [0, 1), got {}", dropout));
  if (!(layer_norm_eps > 0)) fail(fmt::format("layer_norm_eps must be > 0, got {}", layer_norm_eps));
  if (pad_id < 0 || pad_id >= vocab_size)
    fail(fmt::format("pad_id {} must lie in [0, vocab_size {})", pad_id, vocab_size));
}

void parse(config::Reader& r, TextEncoderConfig& c) {
  r.opt("vocab_size", c.vocab_size, config::Range::at_least(2));
  r.opt("max_length", c.max_length, config::Range::at_least(1));
  r.opt("width", c.width, config::Range::at_least(1));
  r.opt("layers", c.layers, config::Range::at_least(0));
  r.opt("heads", c.heads, config::Range::at_least(1));
  r.opt("mlp_ratio", c.mlp_ratio, config::Range::at_least(1));
  r.opt("dropout", c.dropout, config::Range::between(0, 0.999));
  r.opt("layer_norm_eps", c.layer_norm_eps, config::Range::positive());
  r.opt("pad_id", c.pad_id, config::Range::at_least(0));
  r.opt("causal", c.causal);
  r.finish();
  if (c.width % c.heads != 0) r.fail("heads", fmt::format("must divide width {}", c.width));
  if (c.pad_id >= c.vocab_size) r.fail("pad_id", fmt::format("must be < vocab_size {}", c.vocab_size));
  c.validate();
}

// ---------------------------------------------------------------- TextEncoder
TextSelfAttentionImpl::TextSelfAttentionImpl(int64_t width, int64_t heads, double dropout)
    : heads_(heads), dropout_(dropout) {
  q_proj = register_module("q_proj", models::LoraLinear(width, width));
  k_proj = register_module("k_proj", models::LoraLinear(width, width));
  v_proj = register_module("v_proj", models::LoraLinear(width, width));
  out_proj = register_module("out_proj", models::LoraLinear(width, width));
}

Tensor TextSelfAttentionImpl::forward(const Tensor& x, const std::optional<Tensor>& bias, bool causal,
                                      kernels::AttentionBackend backend) {
  const int64_t b = x.size(0), l = x.size(1), w = x.size(2), d = w / heads_;
  const Tensor q = q_proj->forward(x).view({b, l, heads_, d}).transpose(1, 2);  // (B, h, L, d)
  const Tensor k = k_proj->forward(x).view({b, l, heads_, d}).transpose(1, 2);  // (B, h, L, d)
  const Tensor v = v_proj->forward(x).view({b, l, heads_, d}).transpose(1, 2);  // (B, h, L, d)
  kernels::AttentionOptions o;
  o.causal = causal;
  o.bias = bias;
  const Tensor y = kernels::attention(q, k, v, o, backend);                  // (B, h, L, d)
  const Tensor merged = y.transpose(1, 2).reshape({b, l, w});                // (B, L, W)
  return maybe_dropout(out_proj->forward(merged), dropout_, is_training());  // (B, L, W)
}

TextEncoderLayerImpl::TextEncoderLayerImpl(const TextEncoderConfig& c) : dropout_(c.dropout) {
  const auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width}).eps(c.layer_norm_eps));
  };
  layer_norm1 = register_module("layer_norm1", ln());
  self_attn = register_module("self_attn", TextSelfAttention(c.width, c.heads, c.dropout));
  layer_norm2 = register_module("layer_norm2", ln());
  mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp->register_module("fc1", models::LoraLinear(c.width, c.mlp_ratio * c.width));
  fc2 = mlp->register_module("fc2", models::LoraLinear(c.mlp_ratio * c.width, c.width));
}

Tensor TextEncoderLayerImpl::forward(const Tensor& x_in, const std::optional<Tensor>& bias, bool causal,
                                     kernels::AttentionBackend backend) {
  Tensor x = x_in + self_attn->forward(layer_norm1->forward(x_in), bias, causal, backend);  // (B, L, W)
  const Tensor h =
      maybe_dropout(at::gelu(fc1->forward(layer_norm2->forward(x))), dropout_, is_training());  // (B, L, 4W)
  return x + fc2->forward(h);                                                                   // (B, L, W)
}

TextEncoderImpl::TextEncoderImpl(const TextEncoderConfig& c) : c_(c) {
  c_.validate();
  embeddings = register_module("embeddings", std::make_shared<torch::nn::Module>());
  token_embedding =
      embeddings->register_module("token_embedding", torch::nn::Embedding(c_.vocab_size, c_.width));
  position_embedding =
      embeddings->register_module("position_embedding", torch::nn::Embedding(c_.max_length, c_.width));
  {
    // CLIP's init scale (0.02 token, 0.01 position) keeps the first LayerNorm's input O(0.1).
    torch::NoGradGuard ng;
    token_embedding->weight.normal_(0, 0.02);
    position_embedding->weight.normal_(0, 0.01);
  }
  encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  layers = encoder->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c_.layers; ++i) layers->push_back(TextEncoderLayer(c_));
  final_layer_norm =
      register_module("final_layer_norm",
                      torch::nn::LayerNorm(torch::nn::LayerNormOptions({c_.width}).eps(c_.layer_norm_eps)));
}

Tensor TextEncoderImpl::forward(const Tensor& ids, const Tensor& mask_in) {
  if (!ids.defined() || ids.dim() != 2 || ids.is_floating_point() || ids.scalar_type() == at::kBool) {
    MMREF_FAIL("TextEncoder: ids must be an integer (B, L) tensor, got {}",
               ids.defined() ? sizes(ids) : "none");
  }
  const int64_t b = ids.size(0), l = ids.size(1);
  if (l < 1 || l > c_.max_length) {
    MMREF_FAIL("TextEncoder: ids {} has L = {}; expected 1 <= L <= max_length {} (truncate the text)",
               sizes(ids), l, c_.max_length);
  }
  const auto device = token_embedding->weight.device();
  const Tensor tok = ids.to(device, at::kLong);  // (B, L)
  if (b > 0 && (tok.min().item<int64_t>() < 0 || tok.max().item<int64_t>() >= c_.vocab_size)) {
    MMREF_FAIL("TextEncoder: ids must lie in [0, vocab_size {}), got values in [{}, {}]", c_.vocab_size,
               tok.min().item<int64_t>(), tok.max().item<int64_t>());
  }
  Tensor keep;
  if (mask_in.defined()) {
    if (mask_in.sizes() != ids.sizes()) {
      MMREF_FAIL("TextEncoder: mask {} must have the shape of ids {}", sizes(mask_in), sizes(ids));
    }
    keep = mask_in.to(device).to(at::kBool);  // (B, L)
  } else {
    keep = tok.ne(c_.pad_id);  // (B, L)
  }
  const auto dtype = token_embedding->weight.scalar_type();
  const std::optional<Tensor> bias = key_bias(keep, dtype);  // (B, 1, 1, L)
  Tensor x =
      token_embedding->forward(tok) + position_embedding->weight.narrow(0, 0, l).unsqueeze(0);  // (B, L, W)
  for (size_t i = 0; i < layers->size(); ++i) {
    x = layers->ptr<TextEncoderLayerImpl>(i)->forward(x, bias, c_.causal, attention_backend);  // (B, L, W)
  }
  x = final_layer_norm->forward(x);                   // (B, L, W)
  return x * keep.unsqueeze(-1).to(x.scalar_type());  // (B, L, W), zeros at padding
}

// ---------------------------------------------------------------- CLIP text tower
ClipTextConfig ClipTextConfig::infer(const std::map<std::string, at::Tensor>& sd, int64_t heads) {
  auto need = [&](const std::string& k) -> const Tensor& {
    auto it = sd.find(k);
    if (it == sd.end()) MMREF_FAIL("CLIP text weights: no '{}' (pass clip_text_state_dict's output)", k);
    return it->second;
  };
  ClipTextConfig c;
  c.vocab_size = need("token_embedding.weight").size(0);
  c.context_length = need("positional_embedding").size(0);
  c.width = need("ln_final.weight").size(0);
  c.heads = heads > 0 ? heads : c.width / 64;
  static const std::regex layer(R"(^transformer\.resblocks\.(\d+)\.)");
  c.layers = 0;
  for (const auto& [k, v] : sd) {
    std::smatch m;
    if (std::regex_search(k, m, layer)) c.layers = std::max<int64_t>(c.layers, std::stoll(m[1].str()) + 1);
  }
  return c;
}

std::map<std::string, at::Tensor> clip_text_state_dict(const std::map<std::string, at::Tensor>& sd) {
  std::map<std::string, at::Tensor> in = sd;
  // Already the text tower's OpenAI names alone (e.g. a diffusion_unet checkpoint's text_encoder.*).
  if (in.count("token_embedding.weight") && !in.count("visual.conv1.weight")) in["visual.conv1.weight"] = at::zeros({1});
  // A text-only Hugging Face CLIPTextModel file: give clip_openai_state_dict the vision key that selects
  // its Hugging Face path; the vision output is dropped below.
  if (!in.count("visual.conv1.weight") && !in.count("vision_model.embeddings.patch_embedding.weight") &&
      in.count("text_model.embeddings.token_embedding.weight")) {
    in["vision_model.embeddings.patch_embedding.weight"] = at::zeros({1});
  }
  std::map<std::string, at::Tensor> out;
  for (auto& [k, v] : models::clip_openai_state_dict(in)) {
    if (k.rfind("token_embedding.", 0) == 0 || k == "positional_embedding" ||
        k.rfind("transformer.", 0) == 0 || k.rfind("ln_final.", 0) == 0) {
      out[k] = v;
    }
  }
  return out;
}

ClipTextAdapterImpl::ClipTextAdapterImpl(const ClipTextConfig& c) : c_(c) {
  if (c.width < 1 || c.heads < 1 || c.width % c.heads != 0 || c.context_length < 1 || c.vocab_size < 1) {
    MMREF_FAIL(
        "ClipTextAdapter: width {} must be a multiple of heads {}, context_length {} and vocab_size {} >= 1",
        c.width, c.heads, c.context_length, c.vocab_size);
  }
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.width));
  positional_embedding = register_parameter("positional_embedding", at::zeros({c.context_length, c.width}));
  transformer = register_module("transformer", models::ClipTransformer(c.width, c.layers, c.heads));
  ln_final =
      register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.width}).eps(1e-5)));
  eval();
}

void ClipTextAdapterImpl::load(const std::map<std::string, at::Tensor>& state_dict) {
  load_state_dict(*this, clip_text_state_dict(state_dict));
}

void ClipTextAdapterImpl::load(const std::string& path) {
  const auto sd = load_weights(path);
  try {
    load(sd);
  } catch (const Error& e) {
    MMREF_FAIL("'{}': {}", path, e.what());
  }
}

Tensor ClipTextAdapterImpl::forward(const Tensor& ids) {
  if (!ids.defined() || ids.dim() != 2 || ids.size(1) < 1 || ids.size(1) > c_.context_length ||
      ids.is_floating_point()) {
    MMREF_FAIL("ClipTextAdapter: ids must be integer (N, L) with 1 <= L <= {}, got {}", c_.context_length,
               ids.defined() ? sizes(ids) : "none");
  }
  const int64_t l = ids.size(1);
  Tensor x = token_embedding->forward(ids.to(positional_embedding.device(), at::kLong)) +
             positional_embedding.narrow(0, 0, l).unsqueeze(0);     // (N, L, W)
  x = transformer->forward(x, /*causal=*/true, attention_backend);  // (N, L, W)
  return ln_final->forward(x);                                      // (N, L, W)
}

}  // namespace mmref::diffusion
