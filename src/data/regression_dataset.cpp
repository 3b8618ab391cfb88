// Synthetic regression dataset; see regression_dataset.h.
#include "data/regression_dataset.h"

#include <cmath>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"

namespace mmref::data {

void parse(config::Reader& r, RegressionDataConfig& c) {
  r.opt("path", c.path);
  r.opt("train_samples", c.train_samples, config::Range::between(1, 1e9));
  r.opt("val_samples", c.val_samples, config::Range::between(1, 1e9));
  r.opt("input_dim", c.input_dim, config::Range::between(1, 65536));
  r.opt("noise", c.noise, config::Range::at_least(0));
  r.opt("seed", c.seed, config::Range::at_least(0));
  r.finish();
}

namespace {

std::string options_key(const RegressionDataConfig& c) {
  nlohmann::json j{{"kind", "regression-v1"},      {"train_samples", c.train_samples},
                   {"val_samples", c.val_samples}, {"input_dim", c.input_dim},
                   {"noise", c.noise},             {"seed", c.seed}};
  return j.dump();
}

}  // namespace

RegressionData make_regression(const RegressionDataConfig& c) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(c.seed));
  const int64_t n = c.train_samples + c.val_samples;
  at::Tensor w = at::randn({c.input_dim, 3}, gen) / std::sqrt(static_cast<double>(c.input_dim));
  at::Tensor x = at::randn({n, c.input_dim}, gen);                            // (N, D)
  at::Tensor p = at::matmul(x, w);                                            // (N, 3)
  at::Tensor y = at::sin(2.0 * p.select(1, 0)) + 0.5 * at::cos(3.0 * p.select(1, 1)) +
                 0.1 * at::abs(p.select(1, 2));                               // (N,)
  y = (y + c.noise * at::randn({n}, gen)).unsqueeze(1);                       // (N, 1)
  RegressionData d;
  d.x_train = x.narrow(0, 0, c.train_samples).contiguous();
  d.y_train = y.narrow(0, 0, c.train_samples).contiguous();
  d.x_val = x.narrow(0, c.train_samples, c.val_samples).contiguous();
  d.y_val = y.narrow(0, c.train_samples, c.val_samples).contiguous();
  return d;
}

RegressionData load_or_make_regression(const RegressionDataConfig& c, bool* generated) {
  const std::string key = options_key(c);
  if (generated) *generated = false;
  if (fs::exists(c.path)) {
    auto file = SafetensorsFile::open(c.path);
    auto it = file.metadata().find("options");
    if (it != file.metadata().end() && it->second == key) {
      RegressionData d;
      d.x_train = file.get("x_train", at::kFloat);
      d.y_train = file.get("y_train", at::kFloat);
      d.x_val = file.get("x_val", at::kFloat);
      d.y_val = file.get("y_val", at::kFloat);
      return d;
    }
  }
  RegressionData d = make_regression(c);
  const auto parent = std::filesystem::path(c.path).parent_path();
  if (!parent.empty()) fs::make_dirs(parent.string());
  save_safetensors(c.path,
                   {{"x_train", d.x_train}, {"y_train", d.y_train}, {"x_val", d.x_val}, {"y_val", d.y_val}},
                   {{"options", key}});
  if (generated) *generated = true;
  return d;
}

}  // namespace mmref::data
