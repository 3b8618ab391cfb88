// LoRA adapters with PEFT-compatible files; see lora.h.
#include "models/common/lora.h"

#include <cmath>
#include <regex>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>
#include <torch/nn/init.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"

namespace mmref::models {

namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

void check_config(const LoraConfig& c, const std::string& where) {
  if (c.r < 1) MMREF_FAIL("{}: LoRA rank r must be >= 1, got {}", where, c.r);
  if (!(c.alpha > 0)) MMREF_FAIL("{}: lora_alpha must be > 0, got {}", where, c.alpha);
  if (!(c.dropout >= 0 && c.dropout < 1)) MMREF_FAIL("{}: lora_dropout must be in [0, 1), got {}", where, c.dropout);
}

// kaiming_uniform_(a = sqrt(5)) as nn.Linear / nn.Conv1d and PEFT's lora_A init.
void kaiming_init(torch::Tensor& w) {
  torch::NoGradGuard ng;
  torch::nn::init::kaiming_uniform_(w, std::sqrt(5.0));
}

void bias_init(torch::Tensor& b, int64_t fan_in) {
  torch::NoGradGuard ng;
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  b.uniform_(-bound, bound);
}

LoraState make_state(torch::nn::Module& m, const LoraConfig& c, bool already, const std::string& what) {
  if (already) MMREF_FAIL("{}: LoRA is already enabled on this layer", what);
  check_config(c, what);
  LoraState s;
  s.enabled = true;
  s.scale = c.alpha / static_cast<double>(c.r);
  s.dropout = m.register_module("lora_dropout", torch::nn::Dropout(torch::nn::DropoutOptions(c.dropout)));
  return s;
}

template <typename F>
void for_each_lora(torch::nn::Module& model, F f) {
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    if (auto l = std::dynamic_pointer_cast<LoraLinearImpl>(item.value())) f(item.key(), l.get());
    if (auto c = std::dynamic_pointer_cast<LoraConv1dImpl>(item.value())) f(item.key(), c.get());
  }
}

}  // namespace

// ---------------------------------------------------------------- LoraLinear
LoraLinearImpl::LoraLinearImpl(int64_t in_features, int64_t out_features, bool with_bias)
    : in_(in_features), out_(out_features) {
  if (in_features < 1 || out_features < 1) {
    MMREF_FAIL("LoraLinear: features must be >= 1, got in {} out {}", in_features, out_features);
  }
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  kaiming_init(weight);
  if (with_bias) {
    bias = register_parameter("bias", torch::empty({out_features}));
    bias_init(bias, in_features);
  }
}

torch::Tensor LoraLinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = at::linear(x, weight, bias);  // (..., out)
  if (lora_.enabled && !lora_.merged) {
    y = y + lora_B->forward(lora_A->forward(lora_.dropout->forward(x))) * lora_.scale;  // (..., out)
  }
  return y;
}

void LoraLinearImpl::enable_lora(const LoraConfig& c) {
  lora_ = make_state(*this, c, lora_.enabled, "LoraLinear");
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_, c.r).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(c.r, out_).bias(false)));
  kaiming_init(lora_A->weight);
  {
    torch::NoGradGuard ng;
    lora_B->weight.zero_();
  }
  lora_A->to(weight.device(), weight.scalar_type());
  lora_B->to(weight.device(), weight.scalar_type());
}

void LoraLinearImpl::merge() {
  if (!lora_.enabled || lora_.merged) return;
  torch::NoGradGuard ng;
  weight.add_(lora_B->weight.mm(lora_A->weight), lora_.scale);  // (out, r) x (r, in)
  lora_.merged = true;
}

void LoraLinearImpl::unmerge() {
  if (!lora_.enabled || !lora_.merged) return;
  torch::NoGradGuard ng;
  weight.sub_(lora_B->weight.mm(lora_A->weight), lora_.scale);
  lora_.merged = false;
}

// ---------------------------------------------------------------- LoraConv1d
LoraConv1dImpl::LoraConv1dImpl(const LoraConv1dOptions& o) : o_(o) {
  if (o.in_channels < 1 || o.out_channels < 1 || o.kernel_size < 1 || o.groups < 1 ||
      o.in_channels % o.groups != 0 || o.out_channels % o.groups != 0) {
    MMREF_FAIL("LoraConv1d: bad shape: in {} out {} kernel {} groups {}", o.in_channels, o.out_channels,
               o.kernel_size, o.groups);
  }
  weight = register_parameter("weight", torch::empty({o.out_channels, o.in_channels / o.groups, o.kernel_size}));
  kaiming_init(weight);
  if (o.bias) {
    bias = register_parameter("bias", torch::empty({o.out_channels}));
    bias_init(bias, o.in_channels / o.groups * o.kernel_size);
  }
}

torch::Tensor LoraConv1dImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = at::conv1d(x, weight, bias, o_.stride, o_.padding, o_.dilation, o_.groups);  // (B, out, T')
  if (lora_.enabled && !lora_.merged) {
    y = y + lora_B->forward(lora_A->forward(lora_.dropout->forward(x))) * lora_.scale;
  }
  return y;
}

void LoraConv1dImpl::enable_lora(const LoraConfig& c) {
  if (o_.groups != 1) MMREF_FAIL("LoraConv1d: LoRA needs groups == 1 (this layer has {})", o_.groups);
  lora_ = make_state(*this, c, lora_.enabled, "LoraConv1d");
  lora_A = register_module("lora_A", torch::nn::Conv1d(torch::nn::Conv1dOptions(o_.in_channels, c.r, o_.kernel_size)
                                                           .stride(o_.stride)
                                                           .padding(o_.padding)
                                                           .dilation(o_.dilation)
                                                           .bias(false)));
  lora_B = register_module("lora_B", torch::nn::Conv1d(torch::nn::Conv1dOptions(c.r, o_.out_channels, 1).bias(false)));
  kaiming_init(lora_A->weight);
  {
    torch::NoGradGuard ng;
    lora_B->weight.zero_();
  }
  lora_A->to(weight.device(), weight.scalar_type());
  lora_B->to(weight.device(), weight.scalar_type());
}

namespace {
// (alpha / r) * B A as a (out, in, K) conv weight: B (out, r, 1), A (r, in, K).
torch::Tensor conv_delta(const torch::Tensor& A, const torch::Tensor& B, double scale) {
  const int64_t r = A.size(0), in = A.size(1), K = A.size(2);
  return B.squeeze(-1).mm(A.reshape({r, in * K})).reshape({B.size(0), in, K}) * scale;
}
}  // namespace

void LoraConv1dImpl::merge() {
  if (!lora_.enabled || lora_.merged) return;
  torch::NoGradGuard ng;
  weight.add_(conv_delta(lora_A->weight, lora_B->weight, lora_.scale));
  lora_.merged = true;
}

void LoraConv1dImpl::unmerge() {
  if (!lora_.enabled || !lora_.merged) return;
  torch::NoGradGuard ng;
  weight.sub_(conv_delta(lora_A->weight, lora_B->weight, lora_.scale));
  lora_.merged = false;
}

// ---------------------------------------------------------------- model-level
std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraConfig& c) {
  check_config(c, "lora");
  std::regex re;
  try {
    re = std::regex(c.target_modules, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    MMREF_FAIL("lora: target_modules '{}' is not a valid regex: {}", c.target_modules, e.what());
  }
  std::vector<std::string> candidates, chosen;
  for_each_lora(model, [&](const std::string& path, auto*) {
    candidates.push_back(path);
    if (std::regex_match(path, re)) chosen.push_back(path);
  });
  if (chosen.empty()) {
    std::string some;
    for (size_t i = 0; i < candidates.size() && i < 8; ++i) some += (i ? ", " : "") + candidates[i];
    MMREF_FAIL("lora: target_modules '{}' matches none of the model's {} adaptable layers ({}{})", c.target_modules,
               candidates.size(), some.empty() ? "none" : some, candidates.size() > 8 ? ", ..." : "");
  }
  for (auto& p : model.parameters()) p.requires_grad_(false);
  for_each_lora(model, [&](const std::string& path, auto* layer) {
    if (std::regex_match(path, re)) layer->enable_lora(c);
  });
  return chosen;
}

std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

int64_t count_trainable(const torch::nn::Module& model) {
  int64_t n = 0;
  for (const auto& p : trainable_parameters(model)) n += p.numel();
  return n;
}

void merge_lora(torch::nn::Module& model) {
  for_each_lora(model, [](const std::string&, auto* layer) { layer->merge(); });
}

void unmerge_lora(torch::nn::Module& model) {
  for_each_lora(model, [](const std::string&, auto* layer) { layer->unmerge(); });
}

void save_lora_adapter(const torch::nn::Module& model, const LoraConfig& c, const std::string& dir) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : module_state_dict(model)) {
    if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos ||
        name.rfind("lora_A.", 0) == 0 || name.rfind("lora_B.", 0) == 0) {
      tensors[kPeftPrefix + name] = t.detach();
    }
  }
  if (tensors.empty()) MMREF_FAIL("lora: the model has no LoRA adapters to save (call apply_lora first)");
  fs::make_dirs(dir);
  save_safetensors(dir + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  const nlohmann::json cfg = {{"peft_type", "LORA"},
                              {"r", c.r},
                              {"lora_alpha", c.alpha},
                              {"lora_dropout", c.dropout},
                              {"target_modules", c.target_modules},
                              {"bias", "none"},
                              {"fan_in_fan_out", false},
                              {"init_lora_weights", true},
                              {"inference_mode", true},
                              {"modules_to_save", nullptr},
                              {"base_model_name_or_path", nullptr},
                              {"task_type", nullptr}};
  fs::atomic_write(dir + "/adapter_config.json", cfg.dump(2) + "\n");
}

LoraConfig load_lora_adapter(torch::nn::Module& model, const std::string& dir) {
  const std::string cfg_path = dir + "/adapter_config.json";
  const std::string st_path = dir + "/adapter_model.safetensors";
  if (!fs::exists(cfg_path)) MMREF_FAIL("lora: '{}' not found (a PEFT adapter folder has adapter_config.json)", cfg_path);
  LoraConfig c;
  try {
    const auto j = nlohmann::json::parse(fs::read_file(cfg_path));
    if (j.value("peft_type", std::string()) != "LORA") {
      MMREF_FAIL("lora: '{}': peft_type is '{}', expected LORA", cfg_path, j.value("peft_type", std::string()));
    }
    c.r = j.at("r").get<int64_t>();
    c.alpha = j.at("lora_alpha").get<double>();
    c.dropout = j.value("lora_dropout", 0.0);
    const auto& tm = j.at("target_modules");
    if (tm.is_string()) {
      c.target_modules = tm.get<std::string>();
    } else {  // PEFT's list form: module names matched as a suffix of the path
      std::string alt;
      for (const auto& n : tm) alt += (alt.empty() ? "" : "|") + std::regex_replace(n.get<std::string>(), std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
      c.target_modules = "(.*\\.)?(" + alt + ")";
    }
  } catch (const nlohmann::json::exception& e) {
    MMREF_FAIL("lora: '{}': {}", cfg_path, e.what());
  }
  apply_lora(model, c);
  std::map<std::string, torch::Tensor> sd;
  for (auto& [k, t] : load_weights(st_path)) {
    if (k.rfind(kPeftPrefix, 0) != 0) MMREF_FAIL("lora: '{}': key '{}' lacks the PEFT prefix '{}'", st_path, k, kPeftPrefix);
    sd[k.substr(std::string(kPeftPrefix).size())] = t;
  }
  LoadOptions lo;
  lo.strict = false;
  LoadReport rep = load_state_dict(model, sd, lo);
  std::vector<std::string> missing;
  for (const auto& m : rep.missing) {
    if (m.find("lora_A.") != std::string::npos || m.find("lora_B.") != std::string::npos) missing.push_back(m);
  }
  if (!missing.empty() || !rep.unexpected.empty() || !rep.mismatched.empty()) {
    LoadReport r2 = rep;
    r2.missing = missing;
    MMREF_FAIL("lora: '{}' does not fit the model: {}", st_path, r2.summary());
  }
  return c;
}

}  // namespace mmref::models
