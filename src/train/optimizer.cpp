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

ParamGroups split_param_groups(const std::vector<std::pair<std::string, at::Tensor>>& named,
                               const std::string& no_decay_regex) {
  std::regex re;
  const bool extra = !no_decay_regex.empty();
  if (extra) {
    try {
      re = std::regex(no_decay_regex);
    } catch (const std::regex_error& e) {
      MMREF_FAIL("optimizer.no_decay_regex '{}' is not a valid regex: {}", no_decay_regex, e.what());
    }
  }
  ParamGroups g;
  for (const auto& [name, p] : named) {
    if (!p.requires_grad()) continue;
    if (p.dim() < 2 || (extra && std::regex_match(name, re))) {
      g.no_decay.push_back(p), g.no_decay_names.push_back(name);
    } else {
      g.decay.push_back(p), g.decay_names.push_back(name);
    }
  }
  return g;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerConfig& c, const ParamGroups& groups,
                                                        double lr) {
  if (groups.decay.empty() && groups.no_decay.empty()) {
    MMREF_FAIL("optimizer: no parameter requires grad (everything frozen?)");
  }
  auto group_list = [&](auto make_options) {
    std::vector<torch::optim::OptimizerParamGroup> list;
    if (!groups.decay.empty()) list.emplace_back(groups.decay, make_options(c.weight_decay));
    if (!groups.no_decay.empty()) list.emplace_back(groups.no_decay, make_options(0.0));
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

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

double get_lr(torch::optim::Optimizer& opt) {
  return opt.param_groups().empty() ? 0.0 : opt.param_groups().front().options().get_lr();
}

}  // namespace mmref::train
