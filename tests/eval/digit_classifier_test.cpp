// eval/digit_classifier.h: the classifier loads from a bare state dict (pytorch/examples' names) and from
// a digit_classifier run's checkpoint (EMA weights preferred, optimizer state ignored) with the same
// outputs; bad files are clear errors; captions name their digit.
#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <torch/utils.h>

#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "eval/digit_classifier.h"
#include "eval_test_util.h"

namespace {

using namespace mmref::eval;

TEST(DigitClassifier, LoadsStateDictsAndRunCheckpoints) {
  const std::string dir = mmref::fs::make_temp_dir("mmref_digitcls_");
  torch::manual_seed(1);
  mmref::models::DigitCnn a(10), b(10);
  std::map<std::string, at::Tensor> raw, ck;
  for (const auto& [k, v] : mmref::module_state_dict(*a)) raw[k] = v, ck["ema." + k] = v;
  for (const auto& [k, v] : mmref::module_state_dict(*b)) ck["model." + k] = v;
  ck["optimizer.0.exp_avg"] = at::zeros({3});
  mmref::save_safetensors(dir + "/raw.safetensors", raw);
  mmref::save_safetensors(dir + "/ckpt.safetensors", ck);

  DigitClassifier from_raw = load_digit_classifier(dir + "/raw.safetensors");
  DigitClassifier from_ck = load_digit_classifier(dir + "/ckpt.safetensors");
  EXPECT_EQ(from_raw.weights, "state_dict");
  EXPECT_EQ(from_ck.weights, "ema");
  std::vector<at::Tensor> imgs{at::rand({1, 32, 32}), at::rand({3, 20, 20}), at::rand({1, 28, 28})};
  const DigitOutputs o1 = classify_digits(from_raw, imgs, 2);
  const DigitOutputs o2 = classify_digits(from_ck, imgs, 3);
  ASSERT_EQ(o1.features.sizes().vec(), (std::vector<int64_t>{3, 128}));
  EXPECT_EQ(o1.features.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::allclose(o1.features, o2.features));
  EXPECT_EQ(o1.predicted, o2.predicted);
  EXPECT_EQ(o1.predicted.size(), 3u);

  EXPECT_ERROR_HAS(load_digit_classifier(dir + "/none.safetensors"), "does not exist");
  mmref::save_safetensors(dir + "/other.safetensors", {{"w", at::zeros({2})}});
  EXPECT_ERROR_HAS(load_digit_classifier(dir + "/other.safetensors"), "no fc2.weight");
  raw.erase("conv1.bias");
  mmref::save_safetensors(dir + "/partial.safetensors", raw);
  EXPECT_ERROR_HAS(load_digit_classifier(dir + "/partial.safetensors"), "conv1.bias");
  std::system(("rm -rf '" + dir + "'").c_str());
}

TEST(DigitClassifier, CaptionsNameTheirDigit) {
  EXPECT_EQ(digit_of_caption("7"), 7);
  EXPECT_EQ(digit_of_caption("a handwritten 3"), 3);
  EXPECT_EQ(digit_of_caption("0"), 0);
  EXPECT_ERROR_HAS(digit_of_caption("seven"), "names no digit");
  EXPECT_ERROR_HAS(digit_of_caption("a2b"), "names no digit");
}

}  // namespace
