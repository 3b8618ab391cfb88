// The conv-family CPU kernels against their float64 references on fresh seeded inputs: depthwise conv1d
// (odd sizes, kernel 1..31, same/causal/dilated padding, with and without bias) and fused GroupNorm + SiLU
// (2D and 3D activations, 1..C groups, no affine, plain GroupNorm, large means); forward outputs and
// input gradients, a central-difference check, fp16/bf16, bad arguments, and the dispatch layer.
// Tolerances (relative L2 against float64): fp32 1e-5, fp16/bf16 1e-2 (the bar).
//   build/<dir>/tests/mmref_kernels_tests --gtest_filter='DepthwiseConv1d*:GroupNormSilu*:ConvDispatch*'
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/error.h"
#include "kernels/conv/conv.h"
#include "kernels/dispatch.h"
#include "kernel_test_util.h"

namespace mmref::kernels {
namespace {

using testing::rel_l2;

const auto kF64 = at::TensorOptions().dtype(at::kDouble);

std::string what(const std::function<void()>& f) {
  try {
    f();
  } catch (const mmref::Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct DwCase {
  int64_t B, C, T, K, dilation;
  std::string padding;
  bool bias;
};

const std::vector<DwCase> kDwCases = {
    {3, 5, 37, 3, 1, "same", true},   {2, 7, 101, 15, 1, "same", false}, {1, 9, 260, 31, 1, "same", true},
    {2, 4, 53, 31, 1, "causal", true}, {2, 3, 77, 5, 3, "same", true},   {1, 6, 1030, 7, 2, "causal", false},
    {2, 2, 5, 31, 1, "same", true},    {1, 3, 1, 1, 1, "same", true},    {4, 1, 700, 4, 1, "same", true},
};

std::string name(const DwCase& c) {
  return "B" + std::to_string(c.B) + " C" + std::to_string(c.C) + " T" + std::to_string(c.T) + " K" +
         std::to_string(c.K) + " d" + std::to_string(c.dilation) + " " + c.padding + (c.bias ? " bias" : "");
}

// Hand-checked: x = [1 2 3 4], w = [1 10 100], same padding (1, 1), bias 0.5:
//   out[0] = 0*1 + 1*10 + 2*100 + .5 = 210.5     out[1] = 1 + 20 + 300 + .5 = 321.5
//   out[2] = 2 + 30 + 400 + .5 = 432.5           out[3] = 3 + 40 + 0 + .5 = 43.5
// causal (2, 0): out[t] = x[t-2] + 10 x[t-1] + 100 x[t] + .5 -> 100.5, 210.5, 321.5, 432.5
TEST(DepthwiseConv1dCpu, HandCheckedTable) {
  const at::Tensor x = at::tensor(std::vector<double>{1, 2, 3, 4}).view({1, 1, 4});
  const at::Tensor w = at::tensor(std::vector<double>{1, 10, 100}).view({1, 1, 3});
  const at::Tensor b = at::tensor(std::vector<double>{0.5});
  const at::Tensor same = depthwise_conv1d_forward_cpu(x, w, b, DepthwiseConv1dOptions::padding("same", 3));
  const at::Tensor causal = depthwise_conv1d_forward_cpu(x, w, b, DepthwiseConv1dOptions::padding("causal", 3));
  EXPECT_TRUE(at::equal(same, at::tensor(std::vector<double>{210.5, 321.5, 432.5, 43.5}).view({1, 1, 4})))
      << same;
  EXPECT_TRUE(at::equal(causal, at::tensor(std::vector<double>{100.5, 210.5, 321.5, 432.5}).view({1, 1, 4})))
      << causal;
}

TEST(DepthwiseConv1dCpu, ForwardMatchesFloat64Reference) {
  uint64_t seed = 100;
  for (const DwCase& c : kDwCases) {
    at::manual_seed(++seed);
    const at::Tensor x = at::randn({c.B, c.C, c.T}, kF64), w = at::randn({c.C, 1, c.K}, kF64);
    const std::optional<at::Tensor> b = c.bias ? std::optional<at::Tensor>(at::randn({c.C}, kF64)) : std::nullopt;
    const auto opt = DepthwiseConv1dOptions::padding(c.padding, c.K, c.dilation);
    const at::Tensor ref = depthwise_conv1d_reference(x, w, b, opt);
    ASSERT_EQ(ref.size(2), c.T) << name(c);  // same and causal keep the length
    EXPECT_LT(rel_l2(depthwise_conv1d_forward_cpu(x, w, b, opt), ref), 1e-13) << name(c);
    const std::optional<at::Tensor> bf = b ? std::optional<at::Tensor>(b->to(at::kFloat)) : std::nullopt;
    const at::Tensor out32 = depthwise_conv1d_forward_cpu(x.to(at::kFloat), w.to(at::kFloat), bf, opt);
    EXPECT_EQ(out32.scalar_type(), at::kFloat);
    EXPECT_LT(rel_l2(out32, ref), 1e-5) << name(c);
    for (auto dt : {at::kHalf, at::kBFloat16}) {
      const std::optional<at::Tensor> bl = b ? std::optional<at::Tensor>(b->to(dt)) : std::nullopt;
      const at::Tensor lo = depthwise_conv1d_forward_cpu(x.to(dt), w.to(dt), bl, opt);
      EXPECT_EQ(lo.scalar_type(), dt);
      EXPECT_LT(rel_l2(lo, ref), 1e-2) << name(c) << " " << c10::toString(dt);
    }
    EXPECT_LT(rel_l2(depthwise_conv1d_torch(x, w, b, opt), ref), 1e-13) << name(c);
  }
}

TEST(DepthwiseConv1dCpu, ExplicitAsymmetricPaddingAndValidConv) {
  at::manual_seed(7);
  const at::Tensor x = at::randn({2, 3, 19}, kF64), w = at::randn({3, 1, 4}, kF64);
  for (auto [pl, pr] : std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {5, 1}, {0, 7}, {2, 2}}) {
    DepthwiseConv1dOptions o;
    o.pad_left = pl, o.pad_right = pr;
    const at::Tensor ref = depthwise_conv1d_reference(x, w, std::nullopt, o);
    EXPECT_EQ(ref.size(2), 19 + pl + pr - 3);
    EXPECT_LT(rel_l2(depthwise_conv1d_forward_cpu(x, w, std::nullopt, o), ref), 1e-13) << pl << "," << pr;
  }
}

TEST(DepthwiseConv1dCpu, BackwardMatchesReferenceAutograd) {
  uint64_t seed = 200;
  for (const DwCase& c : kDwCases) {
    at::manual_seed(++seed);
    const at::Tensor x = at::randn({c.B, c.C, c.T}, kF64).requires_grad_();
    const at::Tensor w = at::randn({c.C, 1, c.K}, kF64).requires_grad_();
    const at::Tensor b = at::randn({c.C}, kF64).requires_grad_();
    const auto opt = DepthwiseConv1dOptions::padding(c.padding, c.K, c.dilation);
    const std::optional<at::Tensor> bo = c.bias ? std::optional<at::Tensor>(b) : std::nullopt;
    const at::Tensor ref = depthwise_conv1d_reference(x, w, bo, opt);
    const at::Tensor dout = at::randn_like(ref);
    std::vector<at::Tensor> inputs = {x, w};
    if (c.bias) inputs.push_back(b);
    const auto g = torch::autograd::grad({ref}, inputs, {dout});
    for (auto dt : {at::kDouble, at::kFloat}) {
      auto [dx, dw, db] = depthwise_conv1d_backward_cpu(dout.to(dt), x.detach().to(dt), w.detach().to(dt), c.bias, opt);
      const double tol = dt == at::kDouble ? 1e-12 : 1e-5;
      EXPECT_LT(rel_l2(dx, g[0]), tol) << name(c) << " dx " << c10::toString(dt);
      EXPECT_LT(rel_l2(dw, g[1]), tol) << name(c) << " dw " << c10::toString(dt);
      if (c.bias) EXPECT_LT(rel_l2(db, g[2]), tol) << name(c) << " db " << c10::toString(dt);
      else EXPECT_FALSE(db.defined());
    }
  }
}

TEST(DepthwiseConv1dCpu, FiniteDifferencesThroughDispatch) {
  at::manual_seed(9);
  std::vector<at::Tensor> in = {at::randn({2, 3, 9}, kF64).requires_grad_(), at::randn({3, 1, 5}, kF64).requires_grad_(),
                                at::randn({3}, kF64).requires_grad_()};
  const auto opt = DepthwiseConv1dOptions::padding("causal", 5, 2);
  const at::Tensor dout = at::randn({2, 3, 9}, kF64);
  auto loss = [&](const std::vector<at::Tensor>& t) {
    return (depthwise_conv1d(t[0], t[1], t[2], opt, ConvBackend::kMmref) * dout).sum();
  };
  testing::expect_gradients_match_finite_differences(loss, in, 1e-6, 1e-8);
}

TEST(DepthwiseConv1dCpu, EmptyBatchAndBadArgumentsNameTheTensor) {
  const at::Tensor w = at::randn({4, 1, 3});
  EXPECT_EQ(depthwise_conv1d_forward_cpu(at::randn({0, 4, 10}), w, std::nullopt, {1, 1, 1}).sizes(),
            (std::vector<int64_t>{0, 4, 10}));
  EXPECT_NE(what([&] { depthwise_conv1d_forward_cpu(at::randn({2, 5, 10}), w, std::nullopt, {}); }).find("weight must be (C, 1, K) = (5, 1, K)"),
            std::string::npos);
  EXPECT_NE(what([&] { depthwise_conv1d_forward_cpu(at::randn({2, 4}), w, std::nullopt, {}); }).find("x must be (B, C, T)"),
            std::string::npos);
  EXPECT_NE(what([&] { depthwise_conv1d_forward_cpu(at::randn({2, 4, 10}), w, at::randn({3}), {}); }).find("bias must be (4)"),
            std::string::npos);
  EXPECT_NE(what([&] { depthwise_conv1d_forward_cpu(at::randn({2, 4, 1}), w, std::nullopt, {}); }).find("shorter than the dilated kernel"),
            std::string::npos);
  EXPECT_NE(what([&] { depthwise_conv1d_forward_cpu(at::ones({2, 4, 10}, at::kLong), w, std::nullopt, {}); }).find("x must be a floating tensor"),
            std::string::npos);
  EXPECT_NE(what([] { DepthwiseConv1dOptions::padding("valid", 3); }).find("use same or causal"), std::string::npos);
}

struct GnCase {
  std::vector<int64_t> shape;
  int64_t groups;
  bool affine, silu;
};

const std::vector<GnCase> kGnCases = {
    {{2, 6, 5, 7}, 3, true, true},   {{1, 8, 3, 4, 5}, 4, true, true}, {{3, 4, 9}, 1, true, true},
    {{2, 5, 3, 3}, 5, true, true},   {{2, 6, 11}, 2, false, true},     {{2, 6, 4, 4}, 3, true, false},
    {{1, 64, 17, 13}, 32, true, true}, {{3, 8, 1}, 2, true, true},  // S = 1; M = 2 would make dx ~ 0 (xhat = +-1)
};

std::string name(const GnCase& c) {
  std::string s = "(";
  for (auto d : c.shape) s += std::to_string(d) + ",";
  return s + ") G" + std::to_string(c.groups) + (c.affine ? " affine" : "") + (c.silu ? " silu" : "");
}

TEST(GroupNormSiluCpu, ForwardMatchesFloat64Reference) {
  uint64_t seed = 300;
  for (const GnCase& c : kGnCases) {
    at::manual_seed(++seed);
    const at::Tensor x = at::randn(c.shape, kF64) * 3 + 0.7;
    const int64_t C = c.shape[1];
    std::optional<at::Tensor> g, b;
    if (c.affine) g = at::randn({C}, kF64), b = at::randn({C}, kF64);
    GroupNormOptions o;
    o.groups = c.groups, o.silu = c.silu;
    const at::Tensor ref = group_norm_silu_reference(x, g, b, o);
    auto [y64, mean, rstd] = group_norm_silu_forward_cpu(x, g, b, o);
    EXPECT_LT(rel_l2(y64, ref), 1e-13) << name(c);
    EXPECT_EQ(mean.sizes(), (std::vector<int64_t>{c.shape[0], c.groups}));
    EXPECT_LT(rel_l2(group_norm_silu_torch(x, g, b, o), ref), 1e-12) << name(c);
    auto to = [](const std::optional<at::Tensor>& t, at::ScalarType dt) {
      return t ? std::optional<at::Tensor>(t->to(dt)) : std::nullopt;
    };
    const at::Tensor y32 = std::get<0>(group_norm_silu_forward_cpu(x.to(at::kFloat), to(g, at::kFloat), to(b, at::kFloat), o));
    EXPECT_LT(rel_l2(y32, ref), 1e-5) << name(c);
    for (auto dt : {at::kHalf, at::kBFloat16}) {
      const at::Tensor lo = std::get<0>(group_norm_silu_forward_cpu(x.to(dt), to(g, dt), to(b, dt), o));
      EXPECT_EQ(lo.scalar_type(), dt);
      EXPECT_LT(rel_l2(lo, ref), 1e-2) << name(c) << " " << c10::toString(dt);
    }
  }
}

TEST(GroupNormSiluCpu, LargeMeanKeepsFloat32Accuracy) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 8, 16, 16}, kF64) + 1000.0;  // one-pass E[x^2]-E[x]^2 would lose ~all digits
  GroupNormOptions o;
  o.groups = 4;
  const at::Tensor ref = group_norm_silu_reference(x, std::nullopt, std::nullopt, o);
  const at::Tensor y32 = std::get<0>(group_norm_silu_forward_cpu(x.to(at::kFloat), std::nullopt, std::nullopt, o));
  EXPECT_LT(rel_l2(y32, ref), 1e-4);
}

TEST(GroupNormSiluCpu, BackwardMatchesReferenceAutograd) {
  uint64_t seed = 400;
  for (const GnCase& c : kGnCases) {
    at::manual_seed(++seed);
    const int64_t C = c.shape[1];
    const at::Tensor x = (at::randn(c.shape, kF64) * 2 - 0.3).requires_grad_();
    const at::Tensor g = at::randn({C}, kF64).requires_grad_(), b = at::randn({C}, kF64).requires_grad_();
    GroupNormOptions o;
    o.groups = c.groups, o.silu = c.silu;
    const std::optional<at::Tensor> go = c.affine ? std::optional<at::Tensor>(g) : std::nullopt;
    const std::optional<at::Tensor> bo = c.affine ? std::optional<at::Tensor>(b) : std::nullopt;
    const at::Tensor ref = group_norm_silu_reference(x, go, bo, o);
    const at::Tensor dout = at::randn_like(ref);
    std::vector<at::Tensor> inputs = {x};
    if (c.affine) inputs.push_back(g), inputs.push_back(b);
    const auto grads = torch::autograd::grad({ref}, inputs, {dout});
    for (auto dt : {at::kDouble, at::kFloat}) {
      auto to = [&](const std::optional<at::Tensor>& t) {
        return t ? std::optional<at::Tensor>(t->detach().to(dt)) : std::nullopt;
      };
      const at::Tensor xd = x.detach().to(dt);
      auto [y, mean, rstd] = group_norm_silu_forward_cpu(xd, to(go), to(bo), o);
      auto [dx, dg, db] = group_norm_silu_backward_cpu(dout.to(dt), xd, mean, rstd, to(go), to(bo), o);
      const double tol = dt == at::kDouble ? 1e-11 : 2e-5;
      EXPECT_LT(rel_l2(dx, grads[0]), tol) << name(c) << " dx " << c10::toString(dt);
      if (c.affine) {
        EXPECT_LT(rel_l2(dg, grads[1]), tol) << name(c) << " dgamma " << c10::toString(dt);
        EXPECT_LT(rel_l2(db, grads[2]), tol) << name(c) << " dbeta " << c10::toString(dt);
      } else {
        EXPECT_FALSE(dg.defined());
        EXPECT_FALSE(db.defined());
      }
    }
  }
}

TEST(GroupNormSiluCpu, FiniteDifferencesThroughDispatch) {
  at::manual_seed(11);
  std::vector<at::Tensor> in = {at::randn({2, 4, 3, 2}, kF64).requires_grad_(), at::randn({4}, kF64).requires_grad_(),
                                at::randn({4}, kF64).requires_grad_()};
  GroupNormOptions o;
  o.groups = 2;
  const at::Tensor dout = at::randn({2, 4, 3, 2}, kF64);
  auto loss = [&](const std::vector<at::Tensor>& t) {
    return (group_norm_silu(t[0], t[1], t[2], o, ConvBackend::kMmref) * dout).sum();
  };
  testing::expect_gradients_match_finite_differences(loss, in, 1e-5, 1e-7);
}

TEST(GroupNormSiluCpu, BadArgumentsNameTheTensor) {
  GroupNormOptions o;
  o.groups = 4;
  EXPECT_NE(what([&] { group_norm_silu_forward_cpu(at::randn({2, 6, 3}), std::nullopt, std::nullopt, o); }).find("6 channels cannot form 4 groups"),
            std::string::npos);
  EXPECT_NE(what([&] { group_norm_silu_forward_cpu(at::randn({2, 8, 3}), at::randn({7}), std::nullopt, o); }).find("gamma must be (8)"),
            std::string::npos);
  EXPECT_NE(what([&] { group_norm_silu_forward_cpu(at::randn({8}), std::nullopt, std::nullopt, o); }).find("x must be (N, C, *)"),
            std::string::npos);
}

TEST(ConvDispatch, ParsesBackendNames) {
  EXPECT_EQ(parse_conv_backend("mmref"), ConvBackend::kMmref);
  EXPECT_EQ(parse_conv_backend("reference"), ConvBackend::kReference);
  EXPECT_EQ(parse_conv_backend("torch"), ConvBackend::kTorch);
  EXPECT_NE(what([] { parse_conv_backend("cudnn"); }).find("use mmref, reference or torch"), std::string::npos);
  EXPECT_STREQ(conv_backend_name(ConvBackend::kTorch), "torch");
}

TEST(ConvDispatch, BackendsAgreeAndAreDifferentiable) {
  at::manual_seed(13);
  const auto o32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor x = at::randn({2, 16, 333}, o32), w = at::randn({16, 1, 31}, o32), b = at::randn({16}, o32);
  const auto dwo = DepthwiseConv1dOptions::padding("same", 31);
  const at::Tensor img = at::randn({2, 32, 9, 11}, o32), g = at::randn({32}, o32), be = at::randn({32}, o32);
  GroupNormOptions gno;
  gno.groups = 8;
  std::vector<at::Tensor> dw_out, gn_out, dx_dw, dx_gn;
  for (auto backend : {ConvBackend::kMmref, ConvBackend::kTorch, ConvBackend::kReference}) {
    const at::Tensor xr = x.clone().requires_grad_(), ir = img.clone().requires_grad_();
    const at::Tensor y1 = depthwise_conv1d(xr, w, b, dwo, backend);
    const at::Tensor y2 = group_norm_silu(ir, g, be, gno, backend);
    (y1.sum() + (y2 * y2).sum()).backward();
    dw_out.push_back(y1.detach()), gn_out.push_back(y2.detach());
    dx_dw.push_back(xr.grad()), dx_gn.push_back(ir.grad());
  }
  for (size_t i = 1; i < dw_out.size(); ++i) {
    EXPECT_LT(rel_l2(dw_out[0], dw_out[i]), 1e-5) << i;
    EXPECT_LT(rel_l2(gn_out[0], gn_out[i]), 1e-5) << i;
    EXPECT_LT(rel_l2(dx_dw[0], dx_dw[i]), 1e-5) << i;
    EXPECT_LT(rel_l2(dx_gn[0], dx_gn[i]), 1e-4) << i;
  }
}

TEST(ConvDispatch, Conv1dReferenceMatchesLibtorchWithDilationGroupsStride) {
  at::manual_seed(17);
  struct C1 {
    int64_t B, Cin, Cout, T, K, stride, pad, dil, groups;
  };
  for (const C1& c : std::vector<C1>{{2, 6, 4, 31, 3, 1, 1, 1, 2}, {1, 8, 8, 50, 7, 1, 9, 3, 8},
                                     {2, 4, 6, 40, 5, 2, 2, 1, 1}, {1, 3, 5, 17, 11, 1, 0, 1, 1}}) {
    const at::Tensor x = at::randn({c.B, c.Cin, c.T}, kF64), w = at::randn({c.Cout, c.Cin / c.groups, c.K}, kF64);
    const at::Tensor b = at::randn({c.Cout}, kF64);
    Conv1dOptions o;
    o.stride = c.stride, o.padding = c.pad, o.dilation = c.dil, o.groups = c.groups;
    const at::Tensor lib = at::conv1d(x, w, b, c.stride, c.pad, c.dil, c.groups);
    EXPECT_LT(rel_l2(conv1d_reference(x, w, b, o), lib), 1e-13) << c.Cin << "x" << c.K;
    EXPECT_LT(rel_l2(conv1d(x, w, b, o, ConvBackend::kMmref), lib), 1e-13);
  }
  EXPECT_NE(what([] { conv1d_reference(at::randn({1, 6, 9}), at::randn({4, 2, 3}), std::nullopt, {1, 0, 1, 2}); })
                .find("does not fit x"),
            std::string::npos);
}

}  // namespace
}  // namespace mmref::kernels
