// LoRA adapters (Hu et al. 2021) for mmref models, with PEFT-compatible files.
//
// Models build their projections from LoraLinear / LoraConv1d: drop-in nn::Linear / nn::Conv1d whose base
// parameters keep the reference names ("<path>.weight", "<path>.bias"), so official checkpoints load as
// before. apply_lora(model, config) turns adapters on for every such layer whose dotted module path fully
// matches config.target_modules (a regex, as PEFT's string form: re.fullmatch), freezes every other
// parameter, and returns the adapted paths. An adapted layer computes
//   Linear:  y = W x + b + (alpha / r) * B (A dropout(x))          A (r, in), B (out, r), B = 0 at init
//   Conv1d:  y = conv(x; W) + (alpha / r) * conv1x1(conv(dropout(x); A); B)   A (r, in, K), B (out, r, 1)
// with A ~ kaiming-uniform(a = sqrt(5)) and B = 0, PEFT's default init, so an adapted model starts exactly
// at the base model.
// Files: save_lora_adapter(model, dir) writes dir/adapter_model.safetensors with PEFT's key names
// "base_model.model.<path>.lora_A.weight" / ".lora_B.weight" and dir/adapter_config.json
// ({"peft_type": "LORA", "r", "lora_alpha", "lora_dropout", "target_modules", ...}); load_lora_adapter
// applies the config found there and loads the tensors (strict: every adapted layer must be in the file).
// merge_lora folds (alpha / r) B A into W (the adapter then stays idle), unmerge_lora subtracts it back.
//
// Ref: Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (2021); huggingface/peft
// src/peft/tuners/lora/layer.py (Linear, Conv1d) and config.py (key names, adapter_config.json fields).
// Tests: tests/models/lora_test.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace mmref::models {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16;
  double dropout = 0.0;
  std::string target_modules = ".*";  // regex over dotted module paths, full match
};

// The LoRA branch of one layer: lora_A, lora_B (and dropout), registered under the adapted layer.
struct LoraState {
  bool enabled = false;
  bool merged = false;
  double scale = 0;  // alpha / r
  torch::nn::Dropout dropout{nullptr};
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  torch::Tensor forward(const torch::Tensor& x);  // (..., in) -> (..., out)

  void enable_lora(const LoraConfig& c);
  void merge();
  void unmerge();
  const LoraState& lora() const { return lora_; }
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }

  torch::Tensor weight, bias;           // (out, in), (out) -- the base layer's reference names
  torch::nn::Linear lora_A{nullptr};    // in -> r, no bias
  torch::nn::Linear lora_B{nullptr};    // r -> out, no bias

 private:
  int64_t in_, out_;
  LoraState lora_;
};
TORCH_MODULE(LoraLinear);

struct LoraConv1dOptions {
  int64_t in_channels = 1, out_channels = 1, kernel_size = 1, stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

class LoraConv1dImpl : public torch::nn::Module {
 public:
  explicit LoraConv1dImpl(const LoraConv1dOptions& o);
  torch::Tensor forward(const torch::Tensor& x);  // (B, Cin, T) -> (B, Cout, T_out)

  void enable_lora(const LoraConfig& c);  // groups must be 1 (PEFT's rule too)
  void merge();
  void unmerge();
  const LoraState& lora() const { return lora_; }
  const LoraConv1dOptions& options() const { return o_; }

  torch::Tensor weight, bias;           // (out, in / groups, K), (out)
  torch::nn::Conv1d lora_A{nullptr};    // in -> r, same kernel/stride/padding/dilation as the base
  torch::nn::Conv1d lora_B{nullptr};    // r -> out, kernel 1

 private:
  LoraConv1dOptions o_;
  LoraState lora_;
};
TORCH_MODULE(LoraConv1d);

// Turns LoRA on for every LoraLinear / LoraConv1d whose path fully matches c.target_modules; freezes all
// other parameters (base weights included); returns the adapted paths in module order. Throws
// mmref::Error when nothing matches (naming the pattern and a few candidate paths) or the regex is bad.
std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraConfig& c);

// Parameters that require grad, and their element count (what the optimizer should get).
std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& model);
int64_t count_trainable(const torch::nn::Module& model);

void merge_lora(torch::nn::Module& model);
void unmerge_lora(torch::nn::Module& model);

// PEFT-format adapter files in `dir` (created): adapter_model.safetensors + adapter_config.json.
void save_lora_adapter(const torch::nn::Module& model, const LoraConfig& c, const std::string& dir);
// Reads dir/adapter_config.json, applies it to `model` and loads dir/adapter_model.safetensors. Returns
// the config. Errors name the file and the missing or mismatched keys.
LoraConfig load_lora_adapter(torch::nn::Module& model, const std::string& dir);

}  // namespace mmref::models
