// A synthetic regression dataset: the built-in default data, made locally from a seed (no download).
// y = sin(x . w1) + 0.5 cos(x . w2) + 0.1 |x . w3| + noise, x ~ N(0, I_d), fixed random w1..w3.
// The file records the options it was made with and is rebuilt when they change.
//
//   mmref data make regression --out data/regression
#pragma once
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::data {

struct RegressionDataConfig {
  std::string path = "data/regression/regression.safetensors";
  int64_t train_samples = 8192;
  int64_t val_samples = 1024;
  int64_t input_dim = 8;
  double noise = 0.05;
  int64_t seed = 0;
};

void parse(config::Reader& r, RegressionDataConfig& c);

struct RegressionData {
  at::Tensor x_train, y_train;  // (N, D), (N, 1) float32
  at::Tensor x_val, y_val;      // (M, D), (M, 1)
};

// Generates the dataset in memory (deterministic for the options).
RegressionData make_regression(const RegressionDataConfig& c);
// Loads `c.path`, generating and writing it first when it is absent or was made with other options.
// Returns true in `generated` when it had to be made.
RegressionData load_or_make_regression(const RegressionDataConfig& c, bool* generated = nullptr);

}  // namespace mmref::data
