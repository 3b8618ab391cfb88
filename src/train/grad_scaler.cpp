// Dynamic loss scaling; see grad_scaler.h.
#include "train/grad_scaler.h"

#include <ATen/Functions.h>

#include "core/error.h"

namespace mmref::train {

GradScaler::GradScaler(GradScalerConfig c) : c_(c), scale_(c.init_scale) {
  if (!(c_.init_scale > 0) || !(c_.growth_factor >= 1) || !(c_.backoff_factor > 0 && c_.backoff_factor < 1) ||
      c_.growth_interval < 1) {
    throw ConfigError(fmt::format(
        "loss scaler: needs init_scale > 0, growth_factor >= 1, 0 < backoff_factor < 1, growth_interval >= 1 "
        "(got {}, {}, {}, {})",
        c_.init_scale, c_.growth_factor, c_.backoff_factor, c_.growth_interval));
  }
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const { return loss * scale_; }

bool GradScaler::unscale_(const std::vector<at::Tensor>& params) const {
  const double inv = 1.0 / scale_;
  bool finite = true;
  for (const auto& p : params) {
    at::Tensor g = p.grad();
    if (!g.defined()) continue;
    // The check is on the scaled gradient: an overflow there is what the scale must react to.
    if (finite && !at::isfinite(g).all().item<bool>()) finite = false;
    g.mul_(inv);
  }
  return finite;
}

void GradScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= c_.backoff_factor;
    good_ = 0;
    ++skipped_;
    return;
  }
  if (++good_ >= c_.growth_interval) {
    scale_ *= c_.growth_factor;
    good_ = 0;
  }
}

nlohmann::json GradScaler::state() const {
  return {{"scale", scale_},
          {"good_steps", good_},
          {"skipped_steps", skipped_},
          {"init_scale", c_.init_scale},
          {"growth_factor", c_.growth_factor},
          {"backoff_factor", c_.backoff_factor},
          {"growth_interval", c_.growth_interval}};
}

void GradScaler::load_state(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("scale") || !j.contains("good_steps") || !j.contains("skipped_steps")) {
    throw Error(fmt::format("checkpoint: 'loss_scaler' state is not a loss-scaler object: {}", j.dump()));
  }
  scale_ = j.at("scale").get<double>();
  good_ = j.at("good_steps").get<int64_t>();
  skipped_ = j.at("skipped_steps").get<int64_t>();
}

}  // namespace mmref::train
