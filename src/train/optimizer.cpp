// Optimisers; see optimizer.h.
#include "train/optimizer.h"

#include <regex>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "core/error.h"

namespace mmref::train {

void parse(config::Reader& r, OptimizerConfig& c) {
  r.choice("kind", c.kind, {"adamw", "adam", "sgd"});
  r.opt("weight_decay", c.weight_decay, config::Range::at_least(0));
  r.opt("betas", c.betas, config::Range::between(0, 0.999999));
  r.opt("eps", c.eps, config::Range::positive());
  r.opt("momentum", c.momentum, config::Range::between(0, 1));
  r.opt("nesterov", c.nesterov);
  r.opt("no_decay_regex", c.no_decay_regex);
  if (c.betas.size() != 2) r.fail("betas", "must be a list of two numbers, e.g. [0.9, 0.999]");
  r.finish();
}

const ParamGroup* ParamGroups::find(const std::string& name) const {
  for (const auto& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

namespace {
std::regex compile(const std::string& pattern, const char* key) {
  try {
    return std::regex(pattern);
  } catch (const std::regex_error& e) {
    MMREF_FAIL("{} '{}' is not a valid regex: {}", key, pattern, e.what());
  }
}
}  // namespace

ParamGroups split_param_groups(const std::vector<std::pair<std::string, at::Tensor>>& named,
                               const std::string& no_decay_regex, const std::string& head_regex,
                               double head_lr_mult) {
  if (!(head_lr_mult > 0)) MMREF_FAIL("optimizer: head LR multiplier must be > 0, got {}", head_lr_mult);
  const bool extra = !no_decay_regex.empty(), heads = !head_regex.empty();
  const std::regex no_decay_re = extra ? compile(no_decay_regex, "optimizer.no_decay_regex") : std::regex();
  const std::regex head_re = heads ? compile(head_regex, "head regex") : std::regex();
  ParamGroup all[4] = {{"decay", {}, {}, true, 1.0},
                       {"no_decay", {}, {}, false, 1.0},
                       {"head_decay", {}, {}, true, head_lr_mult},
                       {"head_no_decay", {}, {}, false, head_lr_mult}};
  for (const auto& [name, p] : named) {
    if (!p.requires_grad()) continue;
    const bool no_decay = p.dim() < 2 || (extra && std::regex_match(name, no_decay_re));
    const bool head = heads && std::regex_match(name, head_re);
    ParamGroup& g = all[(head ? 2 : 0) + (no_decay ? 1 : 0)];
    g.params.push_back(p), g.names.push_back(name);
  }
  ParamGroups out;
  for (auto& g : all) {
    if (!g.params.empty()) out.groups.push_back(std::move(g));
  }
  return out;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, const ParamGroups& groups,
                                                        double lr) {
  if (groups.groups.empty()) MMREF_FAIL("optimizer: no parameter requires grad (everything frozen?)");
  auto group_list = [&](auto make_options) {
    std::vector<torch::optim::OptimizerParamGroup> list;
    for (const auto& g : groups.groups) list.emplace_back(g.params, make_options(g.decay ? c.weight_decay : 0.0));
    return list;
  };
  const std::tuple<double, double> betas{c.betas.at(0), c.betas.at(1)};
  if (c.kind == "adamw") {
    auto opts = [&](double wd) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(lr).betas(betas).eps(c.eps).weight_decay(wd));
    };
    return std::make_unique<torch::optim::AdamW>(group_list(opts), torch::optim::AdamWOptions(lr));
  }
  if (c.kind == "adam") {
    // Adam's weight decay is L2 added to the gradient (torch.optim.Adam), unlike AdamW's decoupled decay.
    auto opts = [&](double wd) {
      return std::make_unique<torch::optim::AdamOptions>(
          torch::optim::AdamOptions(lr).betas(betas).eps(c.eps).weight_decay(wd));
    };
    return std::make_unique<torch::optim::Adam>(group_list(opts), torch::optim::AdamOptions(lr));
  }
  if (c.kind == "sgd") {
    auto opts = [&](double wd) {
      return std::make_unique<torch::optim::SGDOptions>(
          torch::optim::SGDOptions(lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(wd));
    };
    return std::make_unique<torch::optim::SGD>(group_list(opts), torch::optim::SGDOptions(lr));
  }
  MMREF_FAIL("optimizer: unknown kind '{}' (adamw, adam, sgd)", c.kind);
}

void set_lr(torch::optim::Optimizer& opt, double lr, const ParamGroups& groups) {
  auto& pg = opt.param_groups();
  for (size_t i = 0; i < pg.size(); ++i) {
    const double mult = i < groups.groups.size() ? groups.groups[i].lr_mult : 1.0;
    pg[i].options().set_lr(lr * mult);
  }
}

double get_lr(torch::optim::Optimizer& opt, size_t group) {
  return group < opt.param_groups().size() ? opt.param_groups()[group].options().get_lr() : 0.0;
}

}  // namespace mmref::train
