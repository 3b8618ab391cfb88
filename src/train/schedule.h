// Learning-rate schedules of the training engine: a pure function of the step (so checkpoints need only
// the step and these parameters, recorded in their metadata, for an exact resume).
//
//   kind         lr(step), with w = warmup_steps, T = total_steps, m = min_lr_ratio * base
//   constant     warmup, then base
//   linear       warmup, then base -> m linearly at T
//   cosine       warmup, then m + (base - m) (1 + cos(pi t)) / 2, t = (step - w) / (T - w)
//   exponential  warmup, then base * gamma^(step - w)
//   noam         base * w^0.5 * min(s^-0.5, s w^-1.5), s = step + 1   (Transformer / wenet WarmupLR:
//                peak base at s = w, then ~ 1 / sqrt(s))
// Warmup (all but noam): lr = base (step + 1) / w for step < w.
//
// Ref: Vaswani et al. 2017 section 5.3 (noam); wenet wenet/utils/scheduler.py WarmupLR; HF transformers
// get_cosine_schedule_with_warmup.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config.h"

namespace mmref::train {

struct LrScheduleConfig {
  std::string kind = "cosine";
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // 0 = the run's train.steps (filled in by the task)
  double min_lr_ratio = 0.0;
  double gamma = 0.999;  // exponential
};

// YAML keys: kind, warmup_steps, total_steps, min_lr_ratio, gamma.
void parse(config::Reader& r, LrScheduleConfig& c);

double lr_at(const LrScheduleConfig& c, double base_lr, int64_t step);

// {"kind", "base_lr", "warmup_steps", "total_steps", ...}: what a checkpoint records.
nlohmann::json schedule_json(const LrScheduleConfig& c, double base_lr);

}  // namespace mmref::train
