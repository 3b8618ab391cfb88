// The FID Inception-v3 network exactly as pytorch-fid builds it (pytorch_fid/inception.py,
// InceptionV3(use_fid_inception=True)): torchvision's Inception3(num_classes=1008, aux_logits=False)
// with the FID variants of the A, C and E blocks (average pools that do not count padding; the last
// E block max-pools), producing the 2048-d pool3 features FID uses and, when the weights file has
// them, the 1008 logits the Inception Score uses.
//
// Parameter names are torchvision's (Conv2d_1a_3x3.conv.weight, Mixed_6b.branch7x7_2.bn.running_var,
// fc.weight, ...), the names inside pytorch-fid's pt_inception-2015-12-05-6726825d.pth, so that file
// (or a safetensors with the same keys) loads as is.
//
// Input: (N, 3, H, W) float in [0, 1]. Preprocessing inside forward, as pytorch-fid: resize to 299x299
// (bilinear, align_corners=False, no antialias; `legacy` mode) or an antialiased resize (clean-fid
// style, `antialias` mode), then 2x - 1.
// Ref: mseitzer/pytorch-fid src/pytorch_fid/inception.py; torchvision/models/inception.py.
// Tests: tests/models/fid_inception_golden_test.cpp (../shared/golden/fid_inception).
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace mmref::models {

// conv (no bias) -> BatchNorm(eps 1e-3) -> ReLU; names "conv", "bn".
class BasicConv2dImpl : public torch::nn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> stride = {1, 1},
                  std::vector<int64_t> padding = {0, 0});
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// The Mixed_* blocks (A, B, C, D, E and their FID variants), defined in the .cpp.
class InceptionBlock : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

enum class FidResize { kLegacyBilinear, kAntialiasBilinear };

struct FidInceptionOutputs {
  torch::Tensor pool3;   // (N, 2048)
  torch::Tensor logits;  // (N, 1008), only with want_logits and fc weights
  torch::Tensor block1;  // (N, 192, 35, 35), only with want_blocks
  torch::Tensor block2;  // (N, 768, 17, 17), only with want_blocks
};

class FidInceptionV3Impl : public torch::nn::Module {
 public:
  FidInceptionV3Impl();
  // Loads a pytorch-fid / torchvision-named weights file (.pth or .safetensors). fc.* may be absent
  // (then logits are unavailable); any other missing or mismatched key is an error naming it.
  void load(const std::string& path);
  bool has_logits() const { return has_fc_; }

  FidInceptionOutputs forward(const torch::Tensor& x01, bool want_logits = false, bool want_blocks = false,
                              FidResize resize = FidResize::kLegacyBilinear);
  // (N, 2048) pool3 features: the FID default.
  torch::Tensor features(const torch::Tensor& x01, FidResize resize = FidResize::kLegacyBilinear);

 private:
  torch::nn::ModuleHolder<BasicConv2dImpl> Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr},
      Conv2d_3b_1x1{nullptr}, Conv2d_4a_3x3{nullptr};
  std::shared_ptr<InceptionBlock> Mixed_5b, Mixed_5c, Mixed_5d, Mixed_6a, Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e,
      Mixed_7a, Mixed_7b, Mixed_7c;
  torch::nn::Linear fc{nullptr};
  bool has_fc_ = false;
};
TORCH_MODULE(FidInceptionV3);

}  // namespace mmref::models
