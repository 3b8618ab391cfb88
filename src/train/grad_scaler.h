// Dynamic loss scaling for fp16 training (the rule of torch.cuda.amp.GradScaler): the loss is multiplied
// by `scale` before backward; after backward the gradients are unscaled (x 1/scale) and checked; a step
// with an Inf/NaN gradient is skipped and the scale multiplied by backoff_factor; after growth_interval
// consecutive good steps the scale is multiplied by growth_factor. The state (scale, good-step count,
// skipped steps) goes into the checkpoint so a resume continues with the same scale.
//
// Works on any device and dtype: the trainer enables it for precision fp16 (CUDA) or when
// train.loss_scale is "dynamic" (also on CPU in fp32, where it is harmless and testable).
// Ref: torch/cuda/amp/grad_scaler.py (update rule and defaults); Micikevicius et al. 2018.
#pragma once
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mmref::train {

struct GradScalerConfig {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerConfig c = {});
  // loss x scale (the tensor to call backward on).
  at::Tensor scale(const at::Tensor& loss) const;
  // Multiplies every defined gradient of `params` by 1/scale in place; returns false when any gradient
  // holds an Inf or NaN (the caller then skips the optimizer step).
  bool unscale_(const std::vector<at::Tensor>& params) const;
  // After each step: found_inf -> scale x backoff, count a skipped step; else count a good step and
  // grow after growth_interval of them.
  void update(bool found_inf);

  double scale_value() const { return scale_; }
  int64_t skipped_steps() const { return skipped_; }
  int64_t good_steps() const { return good_; }

  nlohmann::json state() const;  // {"scale", "good_steps", "skipped_steps", and the config}
  // Throws mmref::Error when `j` is not a state() object.
  void load_state(const nlohmann::json& j);

 private:
  GradScalerConfig c_;
  double scale_;
  int64_t good_ = 0;     // consecutive steps without Inf/NaN since the last scale change
  int64_t skipped_ = 0;  // steps skipped for Inf/NaN gradients, in total
};

}  // namespace mmref::train
