// Collate*: padding values, lengths and shape/dtype validation of collate() (data/dataset/collate.h).
#include <ATen/Functions.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/dataset/collate.h"

namespace mmref::data {
namespace {

Example make(const std::string& id, at::Tensor feats, at::Tensor tokens) {
  Example ex;
  ex.id = id;
  ex.tensors["feats"] = std::move(feats);
  ex.tensors["tokens"] = std::move(tokens);
  return ex;
}

// Three examples, feats (T,2) with T = 2, 4, 1 and tokens of length 3, 1, 2:
//   feats  -> (3, 4, 2), rows beyond T are 0;  lengths["feats"]  = [2, 4, 1]
//   tokens -> (3, 3) padded with -1;           lengths["tokens"] = [3, 1, 2]
TEST(Collate, PadsToMaxAndRecordsLengths) {
  std::vector<Example> exs;
  exs.push_back(make("a", at::arange(4, at::kFloat).reshape({2, 2}) + 1, at::tensor({5, 6, 7}, at::kLong)));
  exs.push_back(make("b", at::full({4, 2}, 9.0, at::kFloat), at::tensor({8}, at::kLong)));
  exs.push_back(make("c", at::full({1, 2}, -3.0, at::kFloat), at::tensor({1, 2}, at::kLong)));
  const Batch b = collate(exs, {{"tokens", -1}});
  ASSERT_EQ(b.ids, (std::vector<std::string>{"a", "b", "c"}));
  const at::Tensor f = b.tensors.at("feats");
  ASSERT_EQ(f.sizes(), (at::IntArrayRef{3, 4, 2}));
  EXPECT_EQ(f.scalar_type(), at::kFloat);
  const at::Tensor expect_f = at::tensor({1.f,  2.f,  3.f, 4.f, 0.f, 0.f, 0.f, 0.f,  //
                                          9.f,  9.f,  9.f, 9.f, 9.f, 9.f, 9.f, 9.f,  //
                                          -3.f, -3.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f})
                                  .reshape({3, 4, 2});
  EXPECT_TRUE(at::equal(f, expect_f));
  const at::Tensor t = b.tensors.at("tokens");
  EXPECT_TRUE(at::equal(t, at::tensor({5, 6, 7, 8, -1, -1, 1, 2, -1}, at::kLong).reshape({3, 3})));
  EXPECT_TRUE(at::equal(b.lengths.at("feats"), at::tensor({2, 4, 1}, at::kLong)));
  EXPECT_TRUE(at::equal(b.lengths.at("tokens"), at::tensor({3, 1, 2}, at::kLong)));
}

TEST(Collate, ZeroLengthAndScalars) {
  std::vector<Example> exs(2);
  exs[0].id = "x";
  exs[0].tensors["feats"] = at::zeros({0, 2});
  exs[0].tensors["speaker"] = at::scalar_tensor(3, at::kLong);
  exs[1].id = "y";
  exs[1].tensors["feats"] = at::ones({2, 2});
  exs[1].tensors["speaker"] = at::scalar_tensor(7, at::kLong);
  const Batch b = collate(exs);
  EXPECT_TRUE(at::equal(b.lengths.at("feats"), at::tensor({0, 2}, at::kLong)));
  EXPECT_EQ(b.tensors.at("feats").sum().item<float>(), 4.f);
  EXPECT_TRUE(at::equal(b.tensors.at("speaker"), at::tensor({3, 7}, at::kLong)));
  EXPECT_EQ(b.lengths.count("speaker"), 0u);
}

TEST(Collate, MismatchesNameTheExample) {
  std::vector<Example> exs;
  exs.push_back(make("good", at::zeros({2, 3}), at::zeros({1}, at::kLong)));
  exs.push_back(make("odd_one", at::zeros({2, 4}), at::zeros({1}, at::kLong)));
  try {
    collate(exs);
    FAIL() << "expected mmref::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("odd_one"), std::string::npos) << e.what();
  }
  exs[1] = make("no_tokens", at::zeros({2, 3}), at::Tensor());
  exs[1].tensors.erase("tokens");
  try {
    collate(exs);
    FAIL() << "expected mmref::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_tokens"), std::string::npos) << e.what();
  }
  EXPECT_THROW(collate({}), Error);
}

}  // namespace
}  // namespace mmref::data
