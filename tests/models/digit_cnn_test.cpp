// models/classifier/digit_cnn.h: pytorch/examples' MNIST Net parameter names and shapes, the forward pass
// against the same network composed from plain ATen ops, and the preprocessing (gray, 28 px, MNIST norm).
#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/state_dict.h"
#include "models/classifier/digit_cnn.h"

namespace {

using mmref::models::DigitCnn;
using mmref::models::DigitCnnImpl;

TEST(DigitCnn, ParameterNamesAndShapesAreTheExamples) {
  DigitCnn net(10);
  const auto sd = mmref::module_state_dict(*net);
  const std::map<std::string, std::vector<int64_t>> want{
      {"conv1.weight", {32, 1, 3, 3}}, {"conv1.bias", {32}},  {"conv2.weight", {64, 32, 3, 3}}, {"conv2.bias", {64}},
      {"fc1.weight", {128, 9216}},     {"fc1.bias", {128}},   {"fc2.weight", {10, 128}},        {"fc2.bias", {10}}};
  ASSERT_EQ(sd.size(), want.size());
  for (const auto& [k, shape] : want) {
    ASSERT_TRUE(sd.count(k)) << k;
    EXPECT_EQ(sd.at(k).sizes().vec(), shape) << k;
  }
}

TEST(DigitCnn, ForwardMatchesPlainComposition) {
  torch::manual_seed(3);
  DigitCnn net(7);  // an odd class count
  net->eval();
  torch::NoGradGuard ng;
  const at::Tensor img = at::rand({5, 1, 23, 23});  // odd size: resized to 28
  const at::Tensor x = DigitCnnImpl::preprocess(img);
  ASSERT_EQ(x.sizes().vec(), (std::vector<int64_t>{5, 1, 28, 28}));
  const at::Tensor want_x = (at::upsample_bilinear2d(img, {28, 28}, false) - 0.1307) / 0.3081;
  EXPECT_TRUE(at::allclose(x, want_x, 1e-6, 1e-6));

  at::Tensor h = at::relu(at::conv2d(x, net->conv1->weight, net->conv1->bias));
  h = at::relu(at::conv2d(h, net->conv2->weight, net->conv2->bias));
  h = at::max_pool2d(h, {2, 2}).flatten(1);
  const at::Tensor f = at::relu(at::linear(h, net->fc1->weight, net->fc1->bias));
  const at::Tensor logits = at::linear(f, net->fc2->weight, net->fc2->bias);
  EXPECT_TRUE(at::allclose(net->features(x), f, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(net->forward(x), logits, 1e-5, 1e-6));
  EXPECT_EQ(net->forward(x).sizes().vec(), (std::vector<int64_t>{5, 7}));
}

TEST(DigitCnn, PreprocessKeepsGrayStoredAsRgbAndAveragesColour) {
  const at::Tensor g = at::rand({2, 1, 28, 28});
  EXPECT_TRUE(DigitCnnImpl::preprocess(g.expand({2, 3, 28, 28})).equal(DigitCnnImpl::preprocess(g)));
  const at::Tensor c = at::rand({2, 3, 28, 28});
  EXPECT_TRUE(at::allclose(DigitCnnImpl::preprocess(c), DigitCnnImpl::preprocess(c.mean(1, true))));
  EXPECT_THROW(DigitCnnImpl::preprocess(at::rand({28, 28})), mmref::Error);
}

TEST(DigitCnn, GradientsReachEveryParameter) {
  DigitCnn net(10);
  net->train();
  const at::Tensor y = at::tensor(std::vector<int64_t>{1, 4, 9});
  at::cross_entropy_loss(net->forward(DigitCnnImpl::preprocess(at::rand({3, 1, 32, 32}))), y).backward();
  for (const auto& p : net->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

}  // namespace
