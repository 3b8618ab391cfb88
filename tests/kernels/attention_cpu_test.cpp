// The fused CPU attention kernel's forward against the float64 reference (attention_reference) on seeded
// random inputs: odd sizes, head dims, causal with Lq != Lk, GQA, padding lengths, biases, fully masked
// rows, fp16/bf16, dropout. Bars: relative L2 error < 1e-5 fp32, < 1e-2 fp16/bf16.
//   build/<dir>/tests/mmref_kernels_tests --gtest_filter='AttentionCpu*'
#include <limits>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <ATen/Functions.h>

#include "kernels/attention/attention.h"
#include "kernel_test_util.h"

namespace mmref::kernels {
// helpers: tests/kernels/kernel_test_util.h

namespace {

using testing::all_finite;
using testing::random_qkv;
using testing::rel_l2;
using testing::to_double;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Runs the kernel on `x` (any dtype) and the reference on the same values in float64; checks out and lse.
void expect_matches_reference(const testing::Qkv& x, const AttentionOptions& opt, double tol,
                              const std::string& what) {
  SCOPED_TRACE(what);
  auto [out, lse] = attention_forward_cpu(x.q, x.k, x.v, opt);
  ASSERT_EQ(out.sizes(), x.q.sizes());
  ASSERT_EQ(out.scalar_type(), x.q.scalar_type());
  EXPECT_TRUE(all_finite(out)) << "non-finite output";
  const AttentionOptions od = to_double(opt);
  const at::Tensor ref = attention_reference(to_double(x.q), to_double(x.k), to_double(x.v), od);
  EXPECT_LT(rel_l2(out, ref), tol);
  // lse: finite where the reference logsumexp is finite, -inf exactly where it is -inf.
  const at::Tensor ref_lse = at::logsumexp(attention_reference_scores(to_double(x.q), to_double(x.k), od), -1);
  const at::Tensor finite = at::isfinite(ref_lse);
  EXPECT_TRUE(at::equal(finite, at::isfinite(lse.to(at::kDouble))));
  EXPECT_TRUE((lse.to(at::kDouble).masked_select(finite.logical_not()) == -kInf).all().item<bool>());
  if (finite.any().item<bool>()) {
    EXPECT_LT(rel_l2(lse.to(at::kDouble).masked_select(finite), ref_lse.masked_select(finite)), tol);
  }
}

TEST(AttentionCpuForward, OddSizesAndHeadDims) {
  const std::vector<std::tuple<int64_t, int64_t>> lens = {{1, 1}, {7, 33}, {33, 7}, {130, 130}, {1, 130}, {129, 257}};
  uint64_t seed = 1;
  for (int64_t D : {32, 64, 96, 128, 40}) {
    for (auto [Lq, Lk] : lens) {
      const auto x = random_qkv(seed++, 2, 3, 3, Lq, Lk, D);
      expect_matches_reference(x, {}, 1e-5, fmt::format("D={} Lq={} Lk={}", D, Lq, Lk));
    }
  }
}

TEST(AttentionCpuForward, Float64IsExact) {
  const auto x = random_qkv(11, 2, 2, 2, 37, 150, 40, at::kDouble);
  AttentionOptions opt;
  opt.causal = true;
  expect_matches_reference(x, opt, 1e-12, "fp64 causal");
}

TEST(AttentionCpuForward, CausalWithLqNotLk) {
  for (auto [Lq, Lk] : std::vector<std::tuple<int64_t, int64_t>>{{33, 130}, {130, 33}, {130, 130}, {1, 7}, {7, 1}}) {
    const auto x = random_qkv(100 + Lq + Lk, 2, 2, 1, Lq, Lk, 64);
    AttentionOptions opt;
    opt.causal = true;
    expect_matches_reference(x, opt, 1e-5, fmt::format("causal Lq={} Lk={}", Lq, Lk));
    if (Lk < Lq) {  // the first Lq - Lk rows see no key: exactly zero
      const at::Tensor out = attention_forward_cpu(x.q, x.k, x.v, opt).first;
      EXPECT_TRUE(out.narrow(2, 0, Lq - Lk).eq(0).all().item<bool>());
      EXPECT_FALSE(out.narrow(2, Lq - Lk, Lk).eq(0).all().item<bool>());
    }
  }
}

TEST(AttentionCpuForward, GroupedQueryAttention) {
  const auto x = random_qkv(21, 2, 8, 2, 70, 130, 64);
  expect_matches_reference(x, {}, 1e-5, "gqa");
  AttentionOptions opt;
  opt.causal = true;
  expect_matches_reference(x, opt, 1e-5, "gqa causal");
}

TEST(AttentionCpuForward, PaddingLengths) {
  const auto x = random_qkv(31, 3, 4, 2, 130, 140, 32);
  AttentionOptions opt;
  opt.q_lengths = at::tensor(std::vector<int64_t>{130, 57, 3});
  opt.k_lengths = at::tensor(std::vector<int64_t>{140, 0, 129});
  expect_matches_reference(x, opt, 1e-5, "lengths");
  const at::Tensor out = attention_forward_cpu(x.q, x.k, x.v, opt).first;
  EXPECT_TRUE(out[1].eq(0).all().item<bool>()) << "k_length 0: every row is masked";
  EXPECT_TRUE(out[2].narrow(1, 3, 127).eq(0).all().item<bool>()) << "rows past q_length are zero";
  opt.causal = true;
  expect_matches_reference(x, opt, 1e-5, "lengths causal");
}

TEST(AttentionCpuForward, PerHeadBiasAndInfMask) {
  const int64_t B = 2, H = 4, Lq = 45, Lk = 131;
  const auto x = random_qkv(41, B, H, H, Lq, Lk, 64);
  AttentionOptions opt;
  opt.bias = at::randn({1, H, Lq, Lk}, at::TensorOptions().dtype(at::kFloat));
  expect_matches_reference(x, opt, 1e-5, "per-head bias");
  // (B, 1, Lq, Lk) mask: random -inf entries, row 5 of batch 1 fully masked.
  at::Tensor mask = at::zeros({B, 1, Lq, Lk});
  mask.masked_fill_(at::rand({B, 1, Lq, Lk}) < 0.3, -kInf);
  mask[1][0][5].fill_(-kInf);
  opt.bias = mask;
  expect_matches_reference(x, opt, 1e-5, "-inf mask");
  const at::Tensor out = attention_forward_cpu(x.q, x.k, x.v, opt).first;
  EXPECT_TRUE(out[1].select(1, 5).eq(0).all().item<bool>());
  // A (Lq, Lk) bias broadcast over batch and heads, with causal on top.
  opt.bias = at::randn({Lq, Lk});
  opt.causal = true;
  expect_matches_reference(x, opt, 1e-5, "2-D bias causal");
}

TEST(AttentionCpuForward, HalfAndBFloat16) {
  for (auto dt : {at::kHalf, at::kBFloat16}) {
    const auto x = random_qkv(51, 2, 4, 2, 77, 130, 64, dt);
    AttentionOptions opt;
    opt.causal = true;
    expect_matches_reference(x, opt, 1e-2, fmt::format("dtype {}", c10::toString(dt)));
  }
}

TEST(AttentionCpuForward, DropoutIsDeterministicAndMatchesReference) {
  const auto x = random_qkv(61, 2, 4, 2, 70, 130, 32, at::kDouble);
  AttentionOptions opt;
  opt.dropout_p = 0.25;
  opt.seed = 1234;
  const at::Tensor a = attention_forward_cpu(x.q, x.k, x.v, opt).first;
  const at::Tensor b = attention_forward_cpu(x.q, x.k, x.v, opt).first;
  EXPECT_TRUE(at::equal(a, b)) << "same seed, same output";
  EXPECT_LT(rel_l2(a, attention_reference(x.q, x.k, x.v, opt)), 1e-12);
  AttentionOptions other = opt;
  other.seed = 1235;
  EXPECT_GT(rel_l2(attention_forward_cpu(x.q, x.k, x.v, other).first, a), 1e-2) << "different seeds differ";
  const auto xf = random_qkv(62, 2, 4, 2, 70, 130, 32);
  opt.causal = true;
  expect_matches_reference(xf, opt, 1e-5, "fp32 dropout causal");
  // Keep rate of the shared mask ~ 1 - p (1M draws: std ~ 4e-4).
  const double keep = attention_dropout_mask(7, 4, 8, 128, 256, 0.25).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(keep, 0.75, 3e-3);
  EXPECT_EQ(attention_dropout_keep(7, 1, 2, 3, 4, 0.25), attention_dropout_mask(7, 4, 8, 128, 256, 0.25)[1][2][3][4].item<bool>());
}

TEST(AttentionCpuForward, EmptyKeysGiveZeros) {
  const auto x = random_qkv(71, 1, 2, 2, 5, 0, 32);
  auto [out, lse] = attention_forward_cpu(x.q, x.k, x.v);
  EXPECT_TRUE(out.eq(0).all().item<bool>());
  EXPECT_TRUE(lse.eq(-kInf).all().item<bool>());
}

}  // namespace
}  // namespace mmref::kernels
