// The CUDA attention kernels (attention_fwd.cu / attention_bwd.cu through the dispatch layer and its
// autograd wrapper) against the float64 reference on the CPU, on fresh seeded inputs: head dims 32, 64, 96,
// 128, odd lengths, Lq != Lk causal, GQA, per-sequence q/k lengths (padding rows and all-masked rows),
// per-head bias with -inf entries, dropout (the same hash as the reference, so bit-identical masks),
// fp32/fp16/bf16; outputs, lse-consistent gradients dq/dk/dv/dbias; output memory poisoned with NaN first.
// Tolerances (relative L2 vs float64 on the same rounded inputs): fp32 1e-5, fp16/bf16 1e-2. Suites start
// with Gpu (ctest label gpu) and skip with their reason without a CUDA binding or GPU.
//   build/cuda/tests/mmref_kernels_tests --gtest_filter='GpuAttention*'
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/attention/attention.h"
#include "kernels/dispatch.h"

namespace mmref::kernels {
namespace {

std::string gpu_skip_reason() {
#ifndef MMREF_CUDA_BINDINGS
  return "this build has no CUDA binding (needs the cuda preset with a CUDA libtorch)";
#else
  if (!at::hasCUDA()) return "no CUDA device visible to libtorch";
  return "";
#endif
}

// ||a - b|| / max(||b||, floor): the floor (1e-3 of an O(1)-per-element norm) keeps exactly-zero
// references (e.g. dq when every row sees one key) from turning rounding noise into a failure.
double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor da = a.to(at::kCPU).to(at::kDouble), db = b.to(at::kCPU).to(at::kDouble);
  const double den = std::max(db.norm().item<double>(), 1e-3 * std::sqrt(static_cast<double>(db.numel())));
  return (da - db).norm().item<double>() / den;
}

struct Case {
  int64_t B, H, Hkv, Lq, Lk, D;
  bool causal, lengths, bias, dropout;
};

std::string name(const Case& c, at::ScalarType dt) {
  return "B" + std::to_string(c.B) + " H" + std::to_string(c.H) + "/" + std::to_string(c.Hkv) + " Lq" +
         std::to_string(c.Lq) + " Lk" + std::to_string(c.Lk) + " D" + std::to_string(c.D) + (c.causal ? " causal" : "") +
         (c.lengths ? " lengths" : "") + (c.bias ? " bias" : "") + (c.dropout ? " dropout" : "") + " " +
         c10::toString(dt);
}

TEST(GpuAttention, ForwardAndGradientsMatchFloat64Reference) {
  const std::string why = gpu_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  const std::vector<Case> cases = {
      {2, 3, 3, 37, 53, 32, false, false, false, false},  {1, 4, 2, 100, 77, 64, true, false, false, false},
      {2, 4, 1, 65, 130, 96, true, true, false, false},   {1, 2, 2, 129, 129, 128, false, true, true, false},
      {2, 8, 2, 256, 300, 64, true, false, true, true},   {1, 2, 1, 1, 333, 128, true, false, false, false},
      {3, 2, 2, 50, 1, 64, false, true, true, false},     {1, 16, 16, 1024, 1024, 64, true, false, false, false}};
  uint64_t seed = 5000;
  const double inf = std::numeric_limits<double>::infinity();
  for (const Case& c : cases) {
    for (auto dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
      at::manual_seed(++seed);
      const auto f64 = at::TensorOptions().dtype(at::kDouble);
      // Inputs rounded to dt first, so the reference sees exactly what the kernel sees.
      const at::Tensor q = at::randn({c.B, c.H, c.Lq, c.D}, f64).to(dt).to(at::kDouble);
      const at::Tensor k = at::randn({c.B, c.Hkv, c.Lk, c.D}, f64).to(dt).to(at::kDouble);
      const at::Tensor v = at::randn({c.B, c.Hkv, c.Lk, c.D}, f64).to(dt).to(at::kDouble);
      const at::Tensor dout = at::randn({c.B, c.H, c.Lq, c.D}, f64).to(dt).to(at::kDouble);
      AttentionOptions opt;
      opt.causal = c.causal;
      if (c.lengths) {
        std::vector<int64_t> ql, kl;
        for (int64_t b = 0; b < c.B; ++b) ql.push_back(std::max<int64_t>(1, c.Lq - 7 * b)), kl.push_back(b == 1 ? 0 : std::max<int64_t>(1, c.Lk - 5 * b));
        opt.q_lengths = at::tensor(ql), opt.k_lengths = at::tensor(kl);  // b == 1: no keys at all
      }
      at::Tensor bias;
      if (c.bias) {
        bias = at::randn({1, c.H, c.Lq, c.Lk}, f64);
        bias.index_put_({0, 0, 0}, -inf);  // row 0 of head 0 fully masked by the bias
      }
      if (c.dropout) opt.dropout_p = 0.1, opt.seed = 77;
      // reference in float64 on the CPU
      std::vector<at::Tensor> in = {q.clone().requires_grad_(), k.clone().requires_grad_(), v.clone().requires_grad_()};
      AttentionOptions ro = opt;
      if (c.bias) in.push_back(bias.clone().requires_grad_()), ro.bias = in.back();
      const at::Tensor ref = attention_reference(in[0], in[1], in[2], ro);
      const auto g = torch::autograd::grad({ref}, in, {dout});
      // the CUDA kernel
      const auto cuda = at::TensorOptions().dtype(dt).device(at::kCUDA);
      std::vector<at::Tensor> gin = {q.to(cuda).requires_grad_(), k.to(cuda).requires_grad_(), v.to(cuda).requires_grad_()};
      AttentionOptions go = opt;
      if (c.lengths) go.q_lengths = opt.q_lengths->to(at::kCUDA), go.k_lengths = opt.k_lengths->to(at::kCUDA);
      if (c.bias) gin.push_back(bias.to(at::TensorOptions().dtype(at::kFloat).device(at::kCUDA)).requires_grad_()), go.bias = gin.back();
      {
        at::Tensor poison = at::empty({c.B * c.H * c.Lq * c.D * 4 + 1024}, cuda.dtype(at::kFloat));
        poison.fill_(std::numeric_limits<float>::quiet_NaN());
      }
      const at::Tensor out = attention(gin[0], gin[1], gin[2], go, AttentionBackend::kMmref);
      const auto gg = torch::autograd::grad({out}, gin, {dout.to(cuda)});
      const double tol = dt == at::kFloat ? 1e-5 : 1e-2;
      const std::string what = name(c, dt);
      EXPECT_TRUE(at::isfinite(out).all().item<bool>()) << what;
      EXPECT_LT(rel_l2(out, ref), tol) << what;
      const char* names[] = {"dq", "dk", "dv", "dbias"};
      for (size_t t = 0; t < gg.size(); ++t) {
        EXPECT_TRUE(at::isfinite(gg[t]).all().item<bool>()) << what << " " << names[t];
        EXPECT_LT(rel_l2(gg[t], g[t]), 2 * tol) << what << " " << names[t];
      }
    }
  }
}

TEST(GpuAttention, UnsupportedHeadDimFallsBackToTorch) {
  const std::string why = gpu_skip_reason();
  if (!why.empty()) GTEST_SKIP() << why;
  at::manual_seed(1);
  const auto cuda = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  const at::Tensor q = at::randn({1, 2, 17, 48}, cuda), k = at::randn({1, 2, 19, 48}, cuda), v = at::randn({1, 2, 19, 48}, cuda);
  EXPECT_FALSE(attention_cuda_supports(q));
  EXPECT_LT(rel_l2(attention(q, k, v, {}, AttentionBackend::kMmref), attention(q, k, v, {}, AttentionBackend::kTorch)), 1e-6);
}

}  // namespace
}  // namespace mmref::kernels
