// The FID Inception-v3; see fid_inception.h.
#include "models/inception/fid_inception.h"

#include <ATen/Functions.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>

#include "core/error.h"
#include "core/state_dict.h"

namespace mmref::models {

namespace F = torch::nn::functional;
using torch::Tensor;

BasicConv2dImpl::BasicConv2dImpl(int64_t in, int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                                 std::vector<int64_t> padding) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                       .stride(stride)
                                                       .padding(padding)
                                                       .bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNormOptions(out).eps(0.001)));
}

Tensor BasicConv2dImpl::forward(const Tensor& x) { return at::relu(bn->forward(conv->forward(x))); }

namespace {

BasicConv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = 0) {
  return BasicConv2d(in, out, std::vector<int64_t>{k, k}, std::vector<int64_t>{stride, stride},
                     std::vector<int64_t>{pad, pad});
}
BasicConv2d conv(int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> pad) {
  return BasicConv2d(in, out, std::move(k), std::vector<int64_t>{1, 1}, std::move(pad));
}

// 3x3 stride-1 pad-1 average pool without counting padding: the FID blocks' (TF's) pooling.
Tensor avg3_no_pad(const Tensor& x) {
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}

class FidInceptionA : public InceptionBlock {
 public:
  FidInceptionA(int64_t in, int64_t pool_features) {
    b1 = register_module("branch1x1", conv(in, 64, 1));
    b5_1 = register_module("branch5x5_1", conv(in, 48, 1));
    b5_2 = register_module("branch5x5_2", conv(48, 64, 5, 1, 2));
    d1 = register_module("branch3x3dbl_1", conv(in, 64, 1));
    d2 = register_module("branch3x3dbl_2", conv(64, 96, 3, 1, 1));
    d3 = register_module("branch3x3dbl_3", conv(96, 96, 3, 1, 1));
    bp = register_module("branch_pool", conv(in, pool_features, 1));
  }
  Tensor forward(const Tensor& x) override {
    return at::cat({b1->forward(x), b5_2->forward(b5_1->forward(x)), d3->forward(d2->forward(d1->forward(x))),
                    bp->forward(avg3_no_pad(x))},
                   1);
  }
  BasicConv2d b1{nullptr}, b5_1{nullptr}, b5_2{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr}, bp{nullptr};
};

class InceptionB : public InceptionBlock {
 public:
  explicit InceptionB(int64_t in) {
    b3 = register_module("branch3x3", conv(in, 384, 3, 2));
    d1 = register_module("branch3x3dbl_1", conv(in, 64, 1));
    d2 = register_module("branch3x3dbl_2", conv(64, 96, 3, 1, 1));
    d3 = register_module("branch3x3dbl_3", conv(96, 96, 3, 2));
  }
  Tensor forward(const Tensor& x) override {
    return at::cat({b3->forward(x), d3->forward(d2->forward(d1->forward(x))),
                    F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2))},
                   1);
  }
  BasicConv2d b3{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr};
};

class FidInceptionC : public InceptionBlock {
 public:
  FidInceptionC(int64_t in, int64_t c7) {
    b1 = register_module("branch1x1", conv(in, 192, 1));
    s1 = register_module("branch7x7_1", conv(in, c7, 1));
    s2 = register_module("branch7x7_2", conv(c7, c7, {1, 7}, {0, 3}));
    s3 = register_module("branch7x7_3", conv(c7, 192, {7, 1}, {3, 0}));
    d1 = register_module("branch7x7dbl_1", conv(in, c7, 1));
    d2 = register_module("branch7x7dbl_2", conv(c7, c7, {7, 1}, {3, 0}));
    d3 = register_module("branch7x7dbl_3", conv(c7, c7, {1, 7}, {0, 3}));
    d4 = register_module("branch7x7dbl_4", conv(c7, c7, {7, 1}, {3, 0}));
    d5 = register_module("branch7x7dbl_5", conv(c7, 192, {1, 7}, {0, 3}));
    bp = register_module("branch_pool", conv(in, 192, 1));
  }
  Tensor forward(const Tensor& x) override {
    return at::cat({b1->forward(x), s3->forward(s2->forward(s1->forward(x))),
                    d5->forward(d4->forward(d3->forward(d2->forward(d1->forward(x))))), bp->forward(avg3_no_pad(x))},
                   1);
  }
  BasicConv2d b1{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr}, d4{nullptr},
      d5{nullptr}, bp{nullptr};
};

class InceptionD : public InceptionBlock {
 public:
  explicit InceptionD(int64_t in) {
    a1 = register_module("branch3x3_1", conv(in, 192, 1));
    a2 = register_module("branch3x3_2", conv(192, 320, 3, 2));
    s1 = register_module("branch7x7x3_1", conv(in, 192, 1));
    s2 = register_module("branch7x7x3_2", conv(192, 192, {1, 7}, {0, 3}));
    s3 = register_module("branch7x7x3_3", conv(192, 192, {7, 1}, {3, 0}));
    s4 = register_module("branch7x7x3_4", conv(192, 192, 3, 2));
  }
  Tensor forward(const Tensor& x) override {
    return at::cat({a2->forward(a1->forward(x)), s4->forward(s3->forward(s2->forward(s1->forward(x)))),
                    F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2))},
                   1);
  }
  BasicConv2d a1{nullptr}, a2{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, s4{nullptr};
};

// E_1 (Mixed_7b) average-pools without counting padding; E_2 (Mixed_7c) max-pools (a quirk of the
// TF graph the FID weights come from).
class FidInceptionE : public InceptionBlock {
 public:
  FidInceptionE(int64_t in, bool max_pool) : max_pool_(max_pool) {
    b1 = register_module("branch1x1", conv(in, 320, 1));
    t1 = register_module("branch3x3_1", conv(in, 384, 1));
    t2a = register_module("branch3x3_2a", conv(384, 384, {1, 3}, {0, 1}));
    t2b = register_module("branch3x3_2b", conv(384, 384, {3, 1}, {1, 0}));
    d1 = register_module("branch3x3dbl_1", conv(in, 448, 1));
    d2 = register_module("branch3x3dbl_2", conv(448, 384, 3, 1, 1));
    d3a = register_module("branch3x3dbl_3a", conv(384, 384, {1, 3}, {0, 1}));
    d3b = register_module("branch3x3dbl_3b", conv(384, 384, {3, 1}, {1, 0}));
    bp = register_module("branch_pool", conv(in, 192, 1));
  }
  Tensor forward(const Tensor& x) override {
    const Tensor t = t1->forward(x);
    const Tensor d = d2->forward(d1->forward(x));
    const Tensor pooled =
        max_pool_ ? F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(1).padding(1)) : avg3_no_pad(x);
    return at::cat({b1->forward(x), at::cat({t2a->forward(t), t2b->forward(t)}, 1),
                    at::cat({d3a->forward(d), d3b->forward(d)}, 1), bp->forward(pooled)},
                   1);
  }
  bool max_pool_;
  BasicConv2d b1{nullptr}, t1{nullptr}, t2a{nullptr}, t2b{nullptr}, d1{nullptr}, d2{nullptr}, d3a{nullptr},
      d3b{nullptr}, bp{nullptr};
};

}  // namespace

FidInceptionV3Impl::FidInceptionV3Impl() {
  Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", conv(3, 32, 3, 2));
  Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", conv(32, 32, 3));
  Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", conv(32, 64, 3, 1, 1));
  Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", conv(64, 80, 1));
  Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", conv(80, 192, 3));
  Mixed_5b = register_module("Mixed_5b", std::make_shared<FidInceptionA>(192, 32));
  Mixed_5c = register_module("Mixed_5c", std::make_shared<FidInceptionA>(256, 64));
  Mixed_5d = register_module("Mixed_5d", std::make_shared<FidInceptionA>(288, 64));
  Mixed_6a = register_module("Mixed_6a", std::make_shared<InceptionB>(288));
  Mixed_6b = register_module("Mixed_6b", std::make_shared<FidInceptionC>(768, 128));
  Mixed_6c = register_module("Mixed_6c", std::make_shared<FidInceptionC>(768, 160));
  Mixed_6d = register_module("Mixed_6d", std::make_shared<FidInceptionC>(768, 160));
  Mixed_6e = register_module("Mixed_6e", std::make_shared<FidInceptionC>(768, 192));
  Mixed_7a = register_module("Mixed_7a", std::make_shared<InceptionD>(768));
  Mixed_7b = register_module("Mixed_7b", std::make_shared<FidInceptionE>(1280, /*max_pool=*/false));
  Mixed_7c = register_module("Mixed_7c", std::make_shared<FidInceptionE>(2048, /*max_pool=*/true));
  fc = register_module("fc", torch::nn::Linear(2048, 1008));
  eval();
}

void FidInceptionV3Impl::load(const std::string& path) {
  const std::map<std::string, Tensor> sd = load_weights(path);
  LoadOptions o;
  o.strict = false;
  const LoadReport r = load_state_dict(*this, sd, o);
  std::vector<std::string> missing;
  for (const auto& k : r.missing) {
    if (k != "fc.weight" && k != "fc.bias") missing.push_back(k);
  }
  if (!missing.empty() || !r.unexpected.empty() || !r.mismatched.empty()) {
    MMREF_FAIL("FID Inception weights '{}': {}. Expected pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
               "(torchvision Inception3 key names)",
               path, r.summary());
  }
  has_fc_ = sd.count("fc.weight") > 0 && sd.count("fc.bias") > 0;
  eval();
}

FidInceptionOutputs FidInceptionV3Impl::forward(const Tensor& x01, bool want_logits, bool want_blocks,
                                                FidResize resize) {
  if (x01.dim() != 4 || x01.size(1) != 3) {
    MMREF_FAIL("FID Inception: expected (N, 3, H, W) RGB images in [0, 1], got {} dims with {} channels "
               "(convert grayscale/RGBA to RGB first)",
               x01.dim(), x01.dim() >= 2 ? x01.size(1) : 0);
  }
  if (want_logits && !has_fc_) {
    MMREF_FAIL("FID Inception: logits (Inception Score) need fc.weight/fc.bias, which the loaded weights file "
               "lacks; use the full pt_inception-2015-12-05 file");
  }
  // legacy: pytorch-fid always calls interpolate (an identity for 299 x 299 inputs); antialias: the
  // triangle-filter resize PIL's bilinear uses (what clean-fid argues for), torch's antialias kernel.
  const Tensor xf = x01.to(at::kFloat);
  Tensor x = resize == FidResize::kAntialiasBilinear
                 ? at::_upsample_bilinear2d_aa(xf, {299, 299}, /*align_corners=*/false)
                 : F::interpolate(xf, F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{299, 299})
                                          .mode(torch::kBilinear)
                                          .align_corners(false));
  x = 2 * x - 1;
  FidInceptionOutputs out;
  x = Conv2d_2b_3x3->forward(Conv2d_2a_3x3->forward(Conv2d_1a_3x3->forward(x)));
  x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2));
  x = Conv2d_4a_3x3->forward(Conv2d_3b_1x1->forward(x));
  x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2));
  if (want_blocks) out.block1 = x;
  for (auto* b : {&Mixed_5b, &Mixed_5c, &Mixed_5d, &Mixed_6a, &Mixed_6b, &Mixed_6c, &Mixed_6d, &Mixed_6e}) {
    x = (*b)->forward(x);
  }
  if (want_blocks) out.block2 = x;
  for (auto* b : {&Mixed_7a, &Mixed_7b, &Mixed_7c}) x = (*b)->forward(x);
  out.pool3 = x.mean({2, 3});  // adaptive average pool to 1 x 1
  if (want_logits) out.logits = fc->forward(out.pool3);
  return out;
}

Tensor FidInceptionV3Impl::features(const Tensor& x01, FidResize resize) { return forward(x01, false, false, resize).pool3; }

}  // namespace mmref::models
