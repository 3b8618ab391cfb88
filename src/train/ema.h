// Exponential moving average of a model's weights (diffusion training samples from the EMA weights):
//   shadow <- d * shadow + (1 - d) * param after every optimizer step, d = decay, or with warmup
//   d = min(decay, (1 + n) / (10 + n)) for the n-th update (diffusers EMAModel's use_ema_warmup=False rule).
// Buffers (BatchNorm statistics) are copied, not averaged. The shadow lives in fp32 on the model's device
// and has its own checkpoint entry ("ema.<name>", and meta "ema": {decay, updates}).
//
// Ref: diffusers training_utils.EMAModel; Polyak & Juditsky 1992.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

namespace torch::nn {
class Module;
}

namespace mmref {
struct Checkpoint;
}

namespace mmref::train {

class Ema {
 public:
  Ema(const torch::nn::Module& m, double decay, bool warmup = true);
  void update(const torch::nn::Module& m);  // after optimizer.step()
  void copy_to(torch::nn::Module& m) const;  // load the averaged weights into m (e.g. for sampling)
  void add_to(Checkpoint& ck) const;
  void load_from(const Checkpoint& ck);  // throws mmref::Error naming a missing "ema.<name>"
  double current_decay() const;
  int64_t updates() const { return updates_; }
  const std::map<std::string, at::Tensor>& shadow() const { return shadow_; }

 private:
  double decay_;
  bool warmup_;
  int64_t updates_ = 0;
  std::map<std::string, at::Tensor> shadow_;
};

}  // namespace mmref::train
