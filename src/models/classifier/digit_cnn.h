// The handwritten-digit CNN of pytorch/examples' MNIST example (mnist/main.py `Net`): the feature network
// behind the digits metrics (eval/digit_classifier.h: "classifier FID" in its 128-d penultimate space, as
// MNIST generative-model papers report, and the accuracy of class-conditional samples).
//
//   (N, 1, 28, 28) -> conv1 3x3 32 -> ReLU -> conv2 3x3 64 -> ReLU -> max-pool 2 -> dropout1 (0.25)
//   -> flatten 9216 -> fc1 128 -> ReLU [= features] -> dropout2 (0.5) -> fc2 10 [= logits]
//
// Parameter names are the example's (conv1.weight, conv2.bias, fc1.weight, fc2.bias), so its
// `mnist_cnn.pt` (torch.save(model.state_dict())) loads as is. preprocess() maps any image batch to the
// network's input the way the example feeds MNIST: gray (first channel; RGB averaged when the channels
// differ), bilinear resize to 28 x 28, then Normalize((0.1307,), (0.3081,)).
// Ref: github.com/pytorch/examples mnist/main.py. Tests: tests/models/digit_cnn_test.cpp.
#pragma once
#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace mmref::models {

class DigitCnnImpl : public torch::nn::Module {
 public:
  explicit DigitCnnImpl(int64_t num_classes = 10);
  // (N, C, H, W) float in [0, 1], any C and size -> (N, 1, 28, 28) normalised.
  static torch::Tensor preprocess(const torch::Tensor& images);
  // Preprocessed input -> (N, 128) features (fc1 after ReLU) and (N, num_classes) logits.
  torch::Tensor features(const torch::Tensor& x);
  torch::Tensor logits_from_features(const torch::Tensor& f);
  torch::Tensor forward(const torch::Tensor& x) { return logits_from_features(features(x)); }

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Dropout dropout1{nullptr}, dropout2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(DigitCnn);

}  // namespace mmref::models
