// The CUDA conv-family kernels (depthwise_conv1d.cu, group_norm_silu.cu through conv_cuda_binding.cpp)
// against the float64 references on the CPU: odd sizes, K 1..31, same/causal/dilated padding, 2D and 3D
// GroupNorm shapes, fp32/fp16/bf16, forward outputs and gradients through the dispatch layer, and output
// buffers poisoned with NaN first (libtorch's caching allocator hands the poisoned block back) to catch
// unwritten elements. Suite names start with Gpu (ctest label gpu); each skips with its reason when the
// build has no CUDA binding or the machine no GPU.
//   build/cuda/tests/mmref_kernels_tests --gtest_filter='GpuConv*'
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <ATen/Functions.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/conv/conv.h"
#include "kernels/dispatch.h"

namespace mmref::kernels {
namespace {

// Why the GPU tests cannot run here ("" when they can).
std::string gpu_skip_reason() {
#ifndef MMREF_CUDA_BINDINGS
  return "this build has no CUDA binding (needs the cuda preset with a CUDA libtorch)";
#else
  if (!at::hasCUDA()) return "no CUDA device visible to libtorch";
  return "";
#endif
}

#define MMREF_SKIP_WITHOUT_GPU()                              \
  do {                                                        \
    const std::string why = gpu_skip_reason();                \
    if (!why.empty()) GTEST_SKIP() << why;                    \
  } while (0)

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor da = a.to(at::kCPU).to(at::kDouble), db = b.to(at::kCPU).to(at::kDouble);
  const double den = db.norm().item<double>();
  const double num = (da - db).norm().item<double>();
  return den > 0 ? num / den : num;
}

// Fills the allocator's next blocks with NaN: allocate, fill, free (the caching allocator reuses them).
void poison_cuda_allocator(int64_t bytes) {
  at::Tensor t = at::empty({bytes / 4 + 1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
  t.fill_(std::numeric_limits<float>::quiet_NaN());
}

double tolerance(at::ScalarType dt) { return dt == at::kFloat ? 1e-5 : 1e-2; }

TEST(GpuConvDepthwise, ForwardAndGradientsMatchFloat64Reference) {
  MMREF_SKIP_WITHOUT_GPU();
  struct Case {
    int64_t B, C, T, K, dil;
    const char* padding;
  };
  const std::vector<Case> cases = {{3, 5, 37, 3, 1, "same"},   {2, 7, 1001, 15, 1, "same"}, {1, 9, 260, 31, 1, "same"},
                                   {2, 4, 53, 31, 1, "causal"}, {2, 3, 777, 5, 3, "same"},  {1, 6, 70000, 7, 2, "causal"},
                                   {2, 2, 5, 31, 1, "same"},    {4, 512, 300, 31, 1, "same"}};
  uint64_t seed = 1000;
  for (const Case& c : cases) {
    for (auto dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
      at::manual_seed(++seed);
      const auto f64 = at::TensorOptions().dtype(at::kDouble);
      const at::Tensor x = at::randn({c.B, c.C, c.T}, f64), w = at::randn({c.C, 1, c.K}, f64), b = at::randn({c.C}, f64);
      const at::Tensor dout = at::randn({c.B, c.C, c.T}, f64);
      const auto opt = DepthwiseConv1dOptions::padding(c.padding, c.K, c.dil);
      // float64 reference and its gradients on the CPU
      std::vector<at::Tensor> in = {x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_()};
      const at::Tensor ref = depthwise_conv1d_reference(in[0], in[1], in[2], opt);
      const auto g = torch::autograd::grad({ref}, in, {dout});
      // the CUDA kernel through dispatch (autograd wrapper)
      const auto cuda = at::TensorOptions().dtype(dt).device(at::kCUDA);
      std::vector<at::Tensor> gin = {x.to(cuda).requires_grad_(), w.to(cuda).requires_grad_(), b.to(cuda).requires_grad_()};
      poison_cuda_allocator(8 * c.B * c.C * c.T);
      const at::Tensor out = depthwise_conv1d(gin[0], gin[1], gin[2], opt, ConvBackend::kMmref);
      const auto gg = torch::autograd::grad({out}, gin, {dout.to(cuda)});
      const std::string what = std::to_string(c.C) + "x" + std::to_string(c.T) + " K" + std::to_string(c.K) + " " +
                               c.padding + " " + c10::toString(dt);
      EXPECT_TRUE(at::isfinite(out).all().item<bool>()) << what;
      EXPECT_LT(rel_l2(out, ref), tolerance(dt)) << what;
      EXPECT_LT(rel_l2(gg[0], g[0]), tolerance(dt)) << what << " dx";
      EXPECT_LT(rel_l2(gg[1], g[1]), 2 * tolerance(dt)) << what << " dw";  // long fp32 atomic sums
      EXPECT_LT(rel_l2(gg[2], g[2]), 2 * tolerance(dt)) << what << " db";
    }
  }
}

TEST(GpuConvDepthwise, MixedPrecisionKeepsFp32Weights) {
  MMREF_SKIP_WITHOUT_GPU();
  at::manual_seed(7);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x = at::randn({2, 64, 500}, f64).to(at::kBFloat16).to(at::kDouble);
  const at::Tensor w = at::randn({64, 1, 31}, f64) * 1e-3 + 1.0;  // fp32 weights bf16 would round away
  const auto opt = DepthwiseConv1dOptions::padding("same", 31);
  const at::Tensor ref = depthwise_conv1d_reference(x, w, std::nullopt, opt);
  const at::Tensor out = depthwise_conv1d(x.to(at::kBFloat16).cuda(), w.to(at::kFloat).cuda(), std::nullopt, opt,
                                          ConvBackend::kMmref);
  EXPECT_EQ(out.scalar_type(), at::kBFloat16);
  EXPECT_LT(rel_l2(out, ref), 1e-2);
  // the same computed exactly in fp32 then rounded once: the kernel must be as close as that
  const at::Tensor once = ref.to(at::kBFloat16).to(at::kDouble);
  EXPECT_LE(rel_l2(out, ref), 1.5 * rel_l2(once, ref) + 1e-6);
}

TEST(GpuConvGroupNormSilu, ForwardAndGradientsMatchFloat64Reference) {
  MMREF_SKIP_WITHOUT_GPU();
  struct Case {
    std::vector<int64_t> shape;
    int64_t groups;
    bool affine, silu;
  };
  const std::vector<Case> cases = {{{2, 6, 5, 7}, 3, true, true},       {{1, 8, 3, 4, 5}, 4, true, true},
                                   {{3, 4, 9}, 1, true, true},          {{2, 64, 33, 31}, 32, true, true},
                                   {{2, 6, 11}, 2, false, true},        {{2, 6, 4, 4}, 3, true, false},
                                   {{1, 320, 64, 64}, 32, true, true},  {{2, 128, 8, 32, 32}, 32, true, true}};
  uint64_t seed = 2000;
  for (const Case& c : cases) {
    for (auto dt : {at::kFloat, at::kHalf, at::kBFloat16}) {
      at::manual_seed(++seed);
      const auto f64 = at::TensorOptions().dtype(at::kDouble);
      const at::Tensor x = at::randn(c.shape, f64) * 2 + 0.5;
      const at::Tensor gm = at::randn({c.shape[1]}, f64), bt = at::randn({c.shape[1]}, f64);
      const at::Tensor dout = at::randn(c.shape, f64);
      GroupNormOptions o;
      o.groups = c.groups, o.silu = c.silu;
      std::vector<at::Tensor> in = {x.clone().requires_grad_()};
      if (c.affine) in.push_back(gm.clone().requires_grad_()), in.push_back(bt.clone().requires_grad_());
      auto opt_of = [&](const std::vector<at::Tensor>& v, size_t i) {
        return c.affine ? std::optional<at::Tensor>(v[i]) : std::nullopt;
      };
      const at::Tensor ref = group_norm_silu_reference(in[0], opt_of(in, 1), opt_of(in, 2), o);
      const auto g = torch::autograd::grad({ref}, in, {dout});
      const auto cuda = at::TensorOptions().dtype(dt).device(at::kCUDA);
      std::vector<at::Tensor> gin;
      for (const auto& t : in) gin.push_back(t.detach().to(cuda).requires_grad_());
      poison_cuda_allocator(8 * x.numel());
      const at::Tensor out = group_norm_silu(gin[0], opt_of(gin, 1), opt_of(gin, 2), o, ConvBackend::kMmref);
      const auto gg = torch::autograd::grad({out}, gin, {dout.to(cuda)});
      std::string what = "G" + std::to_string(c.groups) + " " + c10::toString(dt);
      for (auto d : c.shape) what += " " + std::to_string(d);
      EXPECT_TRUE(at::isfinite(out).all().item<bool>()) << what;
      EXPECT_LT(rel_l2(out, ref), tolerance(dt)) << what;
      EXPECT_LT(rel_l2(gg[0], g[0]), 2 * tolerance(dt)) << what << " dx";
      for (size_t i = 1; i < gg.size(); ++i) EXPECT_LT(rel_l2(gg[i], g[i]), 2 * tolerance(dt)) << what << " d" << i;
    }
  }
}

TEST(GpuConvDispatch, TorchAndMmrefBackendsAgreeOnCuda) {
  MMREF_SKIP_WITHOUT_GPU();
  at::globalContext().setAllowTF32CuDNN(false);  // libtorch's conv must be true fp32 for a 1e-5 bar
  at::manual_seed(3);
  const auto cuda = at::TensorOptions().dtype(at::kFloat).device(at::kCUDA);
  const at::Tensor x = at::randn({4, 256, 1000}, cuda), w = at::randn({256, 1, 31}, cuda), b = at::randn({256}, cuda);
  const auto opt = DepthwiseConv1dOptions::padding("same", 31);
  EXPECT_LT(rel_l2(depthwise_conv1d(x, w, b, opt, ConvBackend::kMmref), depthwise_conv1d(x, w, b, opt, ConvBackend::kTorch)),
            1e-5);
  const at::Tensor img = at::randn({2, 256, 32, 32}, cuda), g = at::randn({256}, cuda), be = at::randn({256}, cuda);
  GroupNormOptions gno;
  EXPECT_LT(rel_l2(group_norm_silu(img, g, be, gno, ConvBackend::kMmref), group_norm_silu(img, g, be, gno, ConvBackend::kTorch)),
            1e-5);
}

}  // namespace
}  // namespace mmref::kernels
