// Optimisers of the training engine: AdamW, Adam, SGD with momentum, over two parameter groups --
// "decay" (tensors with 2 or more dims: weights of linear/conv layers) and "no_decay" (biases and norm
// scales: 1-D tensors, and names matching no_decay_regex), the usual rule (BERT, nanoGPT, diffusers) --
// plus the helpers a loop needs: setting the LR of every group, the global gradient norm.
//
//   optimizer: {kind: adamw, weight_decay: 0.01, betas: [0.9, 0.999], eps: 1e-8, momentum: 0.9,
//               nesterov: false, no_decay_regex: ""}
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include "core/config.h"

namespace mmref::train {

struct OptimizerConfig {
  std::string kind = "adamw";  // adamw | adam | sgd
  double weight_decay = 0.01;
  std::vector<double> betas{0.9, 0.999};
  double eps = 1e-8;
  double momentum = 0.9;  // sgd
  bool nesterov = false;  // sgd
  std::string no_decay_regex;  // extra names without weight decay (full match), e.g. ".*\\.pos_emb"
};

void parse(config::Reader& r, OptimizerConfig& c);

// One optimizer parameter group: its tensors (and names), whether weight decay applies, and its LR as a
// multiple of the scheduled LR (new heads in fine-tuning train faster than the pretrained body).
struct ParamGroup {
  std::string name;  // "decay", "no_decay", "head_decay", "head_no_decay"
  std::vector<at::Tensor> params;
  std::vector<std::string> names;
  bool decay = true;
  double lr_mult = 1.0;
};
struct ParamGroups {
  std::vector<ParamGroup> groups;  // the non-empty ones, in the order above
  const ParamGroup* find(const std::string& name) const;
};
// Splits the parameters that require grad (named as in named_parameters()) by the rule above; names that
// fully match head_regex go to the head groups, whose LR is head_lr_mult times the schedule's.
ParamGroups split_param_groups(const std::vector<std::pair<std::string, at::Tensor>>& named,
                               const std::string& no_decay_regex = "", const std::string& head_regex = "",
                               double head_lr_mult = 1.0);

// The optimizer over the groups, in their order; lr is set per step by set_lr.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, const ParamGroups& groups,
                                                        double lr);
// Sets every group's LR to lr times its multiplier (groups: what make_optimizer got; empty = all 1).
void set_lr(torch::optim::Optimizer& opt, double lr, const ParamGroups& groups = {});
double get_lr(torch::optim::Optimizer& opt, size_t group = 0);

}  // namespace mmref::train
