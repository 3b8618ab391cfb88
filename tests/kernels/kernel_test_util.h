// Helpers shared by the kernel tests: seeded q/k/v, relative L2 error, finiteness, float64 copies, and a
// central-difference gradient check of a scalar loss.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/attention/attention.h"

namespace mmref::kernels::testing {

struct Qkv {
  at::Tensor q, k, v;
};

// Seeded random q (B,H,Lq,D), k/v (B,Hkv,Lk,D) in `dtype`, drawn in float64 so every dtype sees the same
// values up to rounding.
inline Qkv random_qkv(uint64_t seed, int64_t B, int64_t H, int64_t Hkv, int64_t Lq, int64_t Lk, int64_t D,
                      at::ScalarType dtype = at::kFloat) {
  at::manual_seed(seed);
  const auto o = at::TensorOptions().dtype(at::kDouble);
  return {at::randn({B, H, Lq, D}, o).to(dtype), at::randn({B, Hkv, Lk, D}, o).to(dtype),
          at::randn({B, Hkv, Lk, D}, o).to(dtype)};
}

// ||a - b|| / ||b|| in float64 (absolute when b is all zero).
inline double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor da = a.to(at::kDouble), db = b.to(at::kDouble);
  const double num = (da - db).norm().item<double>();
  const double den = db.norm().item<double>();
  return den > 0 ? num / den : num;
}

inline bool all_finite(const at::Tensor& t) { return at::isfinite(t.to(at::kDouble)).all().item<bool>(); }

inline at::Tensor to_double(const at::Tensor& t) { return t.to(at::kDouble); }

inline AttentionOptions to_double(const AttentionOptions& opt) {
  AttentionOptions o = opt;
  if (o.bias.has_value() && o.bias->defined()) o.bias = o.bias->detach().to(at::kDouble);
  return o;
}

// Autograd gradients of loss(inputs) against central differences (step eps) for every element of every
// input (float64 inputs that require grad; keep them small). Reports mismatches as test failures.
inline void expect_gradients_match_finite_differences(
    const std::function<at::Tensor(const std::vector<at::Tensor>&)>& loss, const std::vector<at::Tensor>& inputs,
    double rtol, double atol, double eps = 1e-6) {
  const auto analytic = torch::autograd::grad({loss(inputs)}, inputs);
  for (size_t t = 0; t < inputs.size(); ++t) {
    at::Tensor numeric = at::zeros_like(inputs[t]);
    for (int64_t e = 0; e < inputs[t].numel(); ++e) {
      std::vector<at::Tensor> plus, minus;
      for (const auto& in : inputs) {
        plus.push_back(in.detach().clone());
        minus.push_back(in.detach().clone());
      }
      plus[t].view(-1)[e] += eps;
      minus[t].view(-1)[e] -= eps;
      numeric.view(-1)[e] = (loss(plus).item<double>() - loss(minus).item<double>()) / (2 * eps);
    }
    EXPECT_TRUE(at::allclose(analytic[t], numeric, rtol, atol)) << "input " << t << "\n"
                                                                << analytic[t] << "\n"
                                                                << numeric;
  }
}

}  // namespace mmref::kernels::testing
