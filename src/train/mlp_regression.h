// The built-in default experiment: an MLP fit to the synthetic regression dataset (data/regression_*).
// Small and quick on 2 cores, yet it runs the whole path a model family takes: YAML config -> data made
// when absent -> the training engine (trainer.h: AdamW, warmup+cosine LR, clipping, EMA, data parallel)
// -> metrics.jsonl, TensorBoard, progress, a sample image (predictions against targets) -> atomic
// checkpoints with exact resume -> summary.json.
//
//   mmref train configs/default.yaml            (see configs/default.yaml for every key)
#pragma once
#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include "data/regression_dataset.h"
#include "models/common/lora.h"
#include "train/task.h"
#include "train/trainer.h"

namespace mmref::train {

struct MlpConfig {
  int64_t hidden = 64;
  int64_t layers = 3;  // Linear layers (>= 1)
  std::string activation = "silu";
};

// The `train:` section is the engine's (trainer.h); batch_size is per process.
using RegressionTrainConfig = TrainerConfig;

// finetune: start from a base checkpoint's "model" weights; with lora_r > 0 train LoRA adapters on the
// layers whose path fully matches target_modules (e.g. "net\\.[0-1]") and write them to <run>/adapter/ in
// PEFT format; else, with `freeze`, freeze the parameters whose names match it and train the rest.
struct FinetuneConfig {
  std::string base;  // a checkpoint (ckpt-*.safetensors) of a run of this task; "" = train from scratch
  models::LoraConfig lora{/*r=*/0};
  std::string freeze;
  std::string head_regex;     // parameters of new heads (full match, e.g. "net\\.2\\..*"): own LR ...
  double head_lr_mult = 1.0;  // ... = head_lr_mult x the schedule's LR
};

void parse(config::Reader& r, MlpConfig& c);
void parse(config::Reader& r, FinetuneConfig& c);

// y = net.L-1(act(... act(net.0(x)))): parameters "net.<i>.weight", "net.<i>.bias".
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in_dim, int64_t out_dim, const MlpConfig& c);
  torch::Tensor forward(torch::Tensor x);  // (N, in) -> (N, out)

 private:
  torch::nn::ModuleList net_;
  std::string activation_;
};
TORCH_MODULE(Mlp);

// Warmup (linear from 0) then cosine decay to 0 over the remaining steps.
double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup, int64_t total);

class MlpRegressionTask : public Task {
 public:
  void parse(config::Reader& root) override;
  nlohmann::json run(TaskContext& ctx) override;

  data::RegressionDataConfig data;
  MlpConfig model;
  RegressionTrainConfig train;
  FinetuneConfig finetune;
};

}  // namespace mmref::train
