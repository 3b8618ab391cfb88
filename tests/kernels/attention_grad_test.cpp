// Gradients of the fused CPU attention kernel (attention_backward_cpu and its autograd wrapper) against
// libtorch autograd through the float64 reference, a hand-written central-difference check, and the
// dispatch layer (backend parsing, backends agreeing, argument errors).
//   build/<dir>/tests/mmref_kernels_tests --gtest_filter='AttentionGrad*:AttentionDispatch*'
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/error.h"
#include "kernels/attention/attention.h"
#include "kernel_test_util.h"
#include "kernels/dispatch.h"

namespace mmref::kernels {
// helpers: tests/kernels/kernel_test_util.h

namespace {

using testing::all_finite;
using testing::random_qkv;
using testing::rel_l2;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Grads {
  at::Tensor out, dq, dk, dv, dbias;
};

// Reference gradients: libtorch autograd through attention_reference in float64.
Grads reference_grads(const testing::Qkv& x, const AttentionOptions& opt, const at::Tensor& dout) {
  at::Tensor q = x.q.to(at::kDouble).requires_grad_(), k = x.k.to(at::kDouble).requires_grad_(),
             v = x.v.to(at::kDouble).requires_grad_();
  AttentionOptions o = opt;
  at::Tensor bias;
  if (opt.bias.has_value()) {
    bias = opt.bias->detach().to(at::kDouble).requires_grad_();
    o.bias = bias;
  }
  at::Tensor out = attention_reference(q, k, v, o);
  std::vector<at::Tensor> inputs = {q, k, v};
  if (bias.defined()) inputs.push_back(bias);
  auto g = torch::autograd::grad({out}, inputs, {dout.to(at::kDouble)});
  return {out.detach(), g[0], g[1], g[2], bias.defined() ? g[3] : at::Tensor()};
}

// Kernel gradients: attention_forward_cpu then attention_backward_cpu in x's dtype.
Grads kernel_grads(const testing::Qkv& x, const AttentionOptions& opt, const at::Tensor& dout) {
  AttentionOptions o = opt;
  if (opt.bias.has_value()) o.bias = opt.bias->detach().to(x.q.scalar_type()).requires_grad_();
  auto [out, lse] = attention_forward_cpu(x.q, x.k, x.v, o);
  auto [dq, dk, dv, dbias] = attention_backward_cpu(dout.to(x.q.scalar_type()), x.q, x.k, x.v, out, lse, o);
  return {out, dq, dk, dv, dbias};
}

void expect_grads_match(const testing::Qkv& x, const AttentionOptions& opt, double tol, const std::string& what) {
  SCOPED_TRACE(what);
  const at::Tensor dout = at::randn(x.q.sizes(), at::TensorOptions().dtype(at::kDouble));
  const Grads ref = reference_grads(x, opt, dout);
  const Grads got = kernel_grads(x, opt, dout);
  for (const auto& [name, g, r] : std::vector<std::tuple<std::string, at::Tensor, at::Tensor>>{
           {"out", got.out, ref.out}, {"dq", got.dq, ref.dq}, {"dk", got.dk, ref.dk}, {"dv", got.dv, ref.dv}}) {
    ASSERT_EQ(g.sizes(), r.sizes()) << name;
    EXPECT_TRUE(all_finite(g)) << name << " has non-finite values";
    EXPECT_LT(rel_l2(g, r), tol) << name;
  }
  if (opt.bias.has_value()) {
    ASSERT_TRUE(got.dbias.defined());
    ASSERT_EQ(got.dbias.sizes(), opt.bias->sizes());
    EXPECT_TRUE(all_finite(got.dbias));
    EXPECT_LT(rel_l2(got.dbias, ref.dbias), tol) << "dbias";
  } else {
    EXPECT_FALSE(got.dbias.defined());
  }
}

TEST(AttentionGrad, Float64MatchesReferenceAutograd) {
  uint64_t seed = 200;
  for (auto [Lq, Lk, D] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
           {1, 1, 32}, {7, 33, 40}, {130, 130, 64}, {33, 257, 96}, {140, 7, 128}}) {
    const auto x = random_qkv(seed++, 2, 4, 2, Lq, Lk, D, at::kDouble);
    expect_grads_match(x, {}, 1e-6, fmt::format("plain Lq={} Lk={} D={}", Lq, Lk, D));
    AttentionOptions opt;
    opt.causal = true;
    expect_grads_match(x, opt, 1e-6, fmt::format("causal Lq={} Lk={} D={}", Lq, Lk, D));
  }
}

TEST(AttentionGrad, Float64BiasLengthsDropout) {
  const int64_t B = 3, H = 4, Lq = 131, Lk = 140;
  const auto x = random_qkv(300, B, H, 2, Lq, Lk, 32, at::kDouble);
  AttentionOptions opt;
  opt.bias = at::randn({1, H, Lq, Lk}, at::TensorOptions().dtype(at::kDouble));
  expect_grads_match(x, opt, 1e-6, "per-head bias");
  at::Tensor mask = at::zeros({B, 1, Lq, Lk}, at::TensorOptions().dtype(at::kDouble));
  mask.masked_fill_(at::rand({B, 1, Lq, Lk}) < 0.3, -kInf);
  mask[0][0][3].fill_(-kInf);  // a fully masked row
  opt.bias = mask;
  opt.q_lengths = at::tensor(std::vector<int64_t>{131, 60, 2});
  opt.k_lengths = at::tensor(std::vector<int64_t>{1, 140, 0});
  opt.causal = true;
  expect_grads_match(x, opt, 1e-6, "-inf mask + lengths + causal");
  opt.bias.reset();
  opt.dropout_p = 0.3;
  opt.seed = 99;
  expect_grads_match(x, opt, 1e-6, "dropout + lengths + causal");
}

TEST(AttentionGrad, Float32MatchesReference) {
  const auto x = random_qkv(400, 2, 8, 2, 129, 200, 64);
  AttentionOptions opt;
  opt.causal = true;
  opt.bias = at::randn({1, 8, 129, 200});
  expect_grads_match(x, opt, 1e-4, "fp32 gqa causal bias");
  opt.bias.reset();
  opt.dropout_p = 0.1;
  opt.seed = 5;
  expect_grads_match(x, opt, 1e-4, "fp32 dropout");
}

TEST(AttentionGrad, PaddedQueryRowsGetZeroGradient) {
  const auto x = random_qkv(500, 2, 2, 2, 40, 50, 32, at::kDouble);
  AttentionOptions opt;
  opt.q_lengths = at::tensor(std::vector<int64_t>{40, 17});
  const at::Tensor dout = at::randn(x.q.sizes(), at::TensorOptions().dtype(at::kDouble));
  const Grads g = kernel_grads(x, opt, dout);
  EXPECT_TRUE(g.dq[1].narrow(1, 17, 23).eq(0).all().item<bool>());
  EXPECT_FALSE(g.dq[1].narrow(1, 0, 17).eq(0).all().item<bool>());
  // Keys only receive gradient from valid rows: batch 1's dk must not change if padded dout changes.
  at::Tensor dout2 = dout.clone();
  dout2[1].narrow(1, 17, 23).normal_();
  const Grads g2 = kernel_grads(x, opt, dout2);
  EXPECT_TRUE(at::allclose(g.dk, g2.dk, 0, 0) && at::allclose(g.dv, g2.dv, 0, 0));
}

// Central differences on a tiny float64 problem through the autograd wrapper (dispatch, backend mmref):
// d<dout, out>/dx for every element of q, k, v and bias vs the analytic gradient.
TEST(AttentionGrad, FiniteDifferences) {
  const auto x = random_qkv(600, 1, 2, 1, 3, 5, 4, at::kDouble);
  const auto dopt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor bias = at::randn({1, 2, 3, 5}, dopt);
  const at::Tensor dout = at::randn({1, 2, 3, 4}, dopt);
  AttentionOptions opt;
  opt.causal = true;
  opt.k_lengths = at::tensor(std::vector<int64_t>{4});
  opt.dropout_p = 0.2;
  opt.seed = 3;
  std::vector<at::Tensor> inputs = {x.q.clone().requires_grad_(), x.k.clone().requires_grad_(),
                                    x.v.clone().requires_grad_(), bias.clone().requires_grad_()};
  auto loss = [&](const std::vector<at::Tensor>& in) {
    AttentionOptions o = opt;
    o.bias = in[3];
    return (attention(in[0], in[1], in[2], o, AttentionBackend::kMmref) * dout).sum();
  };
  testing::expect_gradients_match_finite_differences(loss, inputs, 1e-5, 1e-7);
}

TEST(AttentionDispatch, ParsesBackendNames) {
  EXPECT_EQ(parse_attention_backend("mmref"), AttentionBackend::kMmref);
  EXPECT_EQ(parse_attention_backend("reference"), AttentionBackend::kReference);
  EXPECT_EQ(parse_attention_backend("torch"), AttentionBackend::kTorch);
  EXPECT_THROW(parse_attention_backend("flash"), mmref::Error);
  EXPECT_STREQ(attention_backend_name(AttentionBackend::kTorch), "torch");
}

TEST(AttentionDispatch, BackendsAgreeOnCpuAndAreDifferentiable) {
  const auto x = random_qkv(700, 2, 4, 2, 65, 90, 64);
  AttentionOptions opt;
  opt.causal = true;
  opt.k_lengths = at::tensor(std::vector<int64_t>{90, 30});
  opt.bias = at::randn({1, 4, 65, 90});
  const at::Tensor dout = at::randn({2, 4, 65, 64});
  std::vector<std::vector<at::Tensor>> grads;
  std::vector<at::Tensor> outs;
  for (auto backend : {AttentionBackend::kMmref, AttentionBackend::kTorch, AttentionBackend::kReference}) {
    std::vector<at::Tensor> in = {x.q.clone().requires_grad_(), x.k.clone().requires_grad_(),
                                  x.v.clone().requires_grad_(), opt.bias->clone().requires_grad_()};
    AttentionOptions o = opt;
    o.bias = in[3];
    const at::Tensor out = attention(in[0], in[1], in[2], o, backend);
    outs.push_back(out.detach());
    grads.push_back(torch::autograd::grad({out}, in, {dout}));
  }
  for (size_t b = 1; b < outs.size(); ++b) {
    EXPECT_LT(rel_l2(outs[0], outs[b]), 1e-5) << "backend " << b;
    for (size_t t = 0; t < 4; ++t) EXPECT_LT(rel_l2(grads[0][t], grads[b][t]), 1e-4) << "backend " << b << " input " << t;
  }
  // Half inputs through the torch composition (computed in fp32) and the kernel agree too.
  const at::Tensor qh = x.q.to(at::kHalf), kh = x.k.to(at::kHalf), vh = x.v.to(at::kHalf);
  EXPECT_LT(rel_l2(attention(qh, kh, vh, {}, AttentionBackend::kMmref), attention(qh, kh, vh, {}, AttentionBackend::kTorch)), 1e-2);
}

TEST(AttentionDispatch, BadArgumentsThrowNamingTheTensor) {
  const auto x = random_qkv(800, 1, 3, 2, 4, 4, 8);
  try {
    attention(x.q, x.k, x.v);
    FAIL() << "expected mmref::Error";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of k/v heads"), std::string::npos) << e.what();
  }
  const auto y = random_qkv(801, 2, 2, 2, 4, 4, 8);
  AttentionOptions opt;
  opt.q_lengths = at::tensor(std::vector<int64_t>{1});
  EXPECT_THROW(attention(y.q, y.k, y.v, opt), mmref::Error);
  opt.q_lengths.reset();
  opt.bias = at::zeros({3, 4, 4});
  EXPECT_THROW(attention(y.q, y.k, y.v, opt), mmref::Error);
  opt.bias.reset();
  opt.dropout_p = 1.0;
  EXPECT_THROW(attention(y.q, y.k, y.v, opt), mmref::Error);
  EXPECT_THROW(attention(y.q.to(at::kInt), y.k.to(at::kInt), y.v.to(at::kInt)), mmref::Error);
}

}  // namespace
}  // namespace mmref::kernels
