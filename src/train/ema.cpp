// EMA of model weights; see ema.h.
#include "train/ema.h"

#include <algorithm>

#include <ATen/Functions.h>
#include <torch/nn/module.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/state_dict.h"

namespace mmref::train {

Ema::Ema(const torch::nn::Module& m, double decay, bool warmup) : decay_(decay), warmup_(warmup) {
  if (!(decay >= 0 && decay < 1)) MMREF_FAIL("ema: decay must be in [0, 1), got {}", decay);
  torch::NoGradGuard ng;
  for (const auto& [name, t] : module_state_dict(m)) {
    shadow_[name] = t.is_floating_point() ? t.detach().to(at::kFloat).clone() : t.detach().clone();
  }
}

double Ema::current_decay() const {
  if (!warmup_) return decay_;
  const double n = static_cast<double>(updates_);
  return std::min(decay_, (1.0 + n) / (10.0 + n));
}

void Ema::update(const torch::nn::Module& m) {
  torch::NoGradGuard ng;
  const double d = current_decay();
  std::map<std::string, bool> is_param;
  for (const auto& p : m.named_parameters()) is_param[p.key()] = true;
  for (const auto& [name, t] : module_state_dict(m)) {
    auto it = shadow_.find(name);
    if (it == shadow_.end()) MMREF_FAIL("ema: the model gained a tensor '{}' after the EMA was made", name);
    if (is_param.count(name) && t.is_floating_point()) {
      it->second.mul_(d).add_(t.detach().to(at::kFloat), 1.0 - d);
    } else {
      it->second.copy_(t.detach());
    }
  }
  ++updates_;
}

void Ema::copy_to(torch::nn::Module& m) const {
  torch::NoGradGuard ng;
  for (auto& [name, t] : module_state_dict(m)) {
    auto it = shadow_.find(name);
    if (it == shadow_.end()) MMREF_FAIL("ema: no averaged value for '{}'", name);
    t.copy_(it->second);
  }
}

void Ema::add_to(Checkpoint& ck) const {
  for (const auto& [name, t] : shadow_) ck.tensors["ema." + name] = t;
  ck.meta["ema"] = {{"decay", decay_}, {"warmup", warmup_}, {"updates", updates_}};
}

void Ema::load_from(const Checkpoint& ck) {
  torch::NoGradGuard ng;
  for (auto& [name, t] : shadow_) {
    auto it = ck.tensors.find("ema." + name);
    if (it == ck.tensors.end()) MMREF_FAIL("ema: checkpoint has no 'ema.{}' (was it written with EMA on?)", name);
    t.copy_(it->second);
  }
  if (ck.meta.contains("ema")) updates_ = ck.meta["ema"].value("updates", int64_t{0});
}

}  // namespace mmref::train
