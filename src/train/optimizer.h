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

struct ParamGroups {
  std::vector<at::Tensor> decay, no_decay;
  std::vector<std::string> decay_names, no_decay_names;
};
// Splits the parameters that require grad (named as in named_parameters()) by the rule above.
ParamGroups split_param_groups(const std::vector<std::pair<std::string, at::Tensor>>& named,
                               const std::string& no_decay_regex = "");

// The optimizer over the two groups (an empty group is left out); lr is set per step by set_lr.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, const ParamGroups& groups,
                                                        double lr);
void set_lr(torch::optim::Optimizer& opt, double lr);
double get_lr(torch::optim::Optimizer& opt);

}  // namespace mmref::train
