// Learning-rate schedules; see schedule.h.
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mmref::train {

void parse(config::Reader& r, LrScheduleConfig& c) {
  r.choice("kind", c.kind, {"constant", "linear", "cosine", "exponential", "noam"});
  r.opt("warmup_steps", c.warmup_steps, config::Range::at_least(0));
  r.opt("total_steps", c.total_steps, config::Range::at_least(0));
  r.opt("min_lr_ratio", c.min_lr_ratio, config::Range::between(0, 1));
  r.opt("gamma", c.gamma, config::Range::between(1e-9, 1));
  r.finish();
}

double lr_at(const LrScheduleConfig& c, double base, int64_t step) {
  const int64_t w = c.warmup_steps;
  if (c.kind == "noam") {
    const double s = static_cast<double>(step + 1), ws = static_cast<double>(std::max<int64_t>(1, w));
    return base * std::sqrt(ws) * std::min(1.0 / std::sqrt(s), s * std::pow(ws, -1.5));
  }
  if (w > 0 && step < w) return base * static_cast<double>(step + 1) / static_cast<double>(w);
  const double m = c.min_lr_ratio * base;
  const double span = static_cast<double>(std::max<int64_t>(1, c.total_steps - w));
  const double t = std::clamp(static_cast<double>(step - w) / span, 0.0, 1.0);
  if (c.kind == "constant") return base;
  if (c.kind == "linear") return base + (m - base) * t;
  if (c.kind == "cosine") return m + (base - m) * 0.5 * (1.0 + std::cos(M_PI * t));
  if (c.kind == "exponential") return base * std::pow(c.gamma, static_cast<double>(step - w));
  MMREF_FAIL("lr schedule: unknown kind '{}'", c.kind);
}

nlohmann::json schedule_json(const LrScheduleConfig& c, double base_lr) {
  return {{"kind", c.kind},
          {"base_lr", base_lr},
          {"warmup_steps", c.warmup_steps},
          {"total_steps", c.total_steps},
          {"min_lr_ratio", c.min_lr_ratio},
          {"gamma", c.gamma}};
}

}  // namespace mmref::train
