// pytorch/examples' MNIST CNN; see digit_cnn.h.
#include "models/classifier/digit_cnn.h"

#include <ATen/Functions.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>

#include "core/error.h"

namespace mmref::models {

namespace F = torch::nn::functional;

DigitCnnImpl::DigitCnnImpl(int64_t num_classes) {
  conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3)));
  conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3)));
  dropout1 = register_module("dropout1", torch::nn::Dropout(0.25));
  dropout2 = register_module("dropout2", torch::nn::Dropout(0.5));
  fc1 = register_module("fc1", torch::nn::Linear(9216, 128));
  fc2 = register_module("fc2", torch::nn::Linear(128, num_classes));
}

torch::Tensor DigitCnnImpl::preprocess(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) < 1) {
    MMREF_FAIL("digit classifier: expected images (N, C, H, W), got a {}-d tensor", images.dim());
  }
  at::Tensor x = images.to(at::kFloat);
  if (x.size(1) > 1) {
    // Gray stored as RGB (replicated channels) stays exact; real colour images are averaged.
    const at::Tensor first = x.narrow(1, 0, 1);
    x = x.eq(first).all().item<bool>() ? first : x.mean(1, true);
  }
  if (x.size(2) != 28 || x.size(3) != 28) x = at::upsample_bilinear2d(x, {28, 28}, /*align_corners=*/false);
  return (x - 0.1307) / 0.3081;
}

torch::Tensor DigitCnnImpl::features(const torch::Tensor& x) {
  at::Tensor h = at::relu(conv1->forward(x));
  h = at::relu(conv2->forward(h));
  h = at::max_pool2d(h, {2, 2});
  h = dropout1->forward(h).flatten(1);
  return at::relu(fc1->forward(h));
}

torch::Tensor DigitCnnImpl::logits_from_features(const torch::Tensor& f) { return fc2->forward(dropout2->forward(f)); }

}  // namespace mmref::models
