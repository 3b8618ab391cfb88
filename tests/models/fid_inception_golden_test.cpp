// The FID Inception-v3 against pytorch-fid (../shared/golden/fid_inception): pool3 features of 299-px
// inputs and of 64-px inputs (bilinear resize inside the model), plus the block-1/block-2 debug outputs.
// Tolerance from the fixture README: atol 1e-3 + rtol 1e-4.
#include <gtest/gtest.h>

#include "../golden_test_util.h"

#include <cstdlib>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "models/inception/fid_inception.h"

namespace {

void expect_close(const at::Tensor& got, const at::Tensor& want, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const at::Tensor err = (got - want).abs() - (1e-3 + 1e-4 * want.abs());
  EXPECT_LE(err.max().item<double>(), 0) << what << ": max abs diff " << (got - want).abs().max().item<double>();
}

TEST(FidInceptionGolden, Pool3AndBlocksMatchPytorchFid) {
  const std::string dir = mmref::test::golden_path("fid_inception");
  MMREF_REQUIRE_GOLDEN(dir);
  ASSERT_TRUE(mmref::fs::exists(dir + "/weights.safetensors")) << dir;
  mmref::models::FidInceptionV3 net;
  net->load(dir + "/weights.safetensors");
  EXPECT_FALSE(net->has_logits());  // the fixture omits fc.*
  const auto io = mmref::load_safetensors(dir + "/io.safetensors");
  torch::NoGradGuard ng;
  const auto o = net->forward(io.at("input.x299"), false, /*want_blocks=*/true);
  expect_close(o.pool3, io.at("output.pool3_299").flatten(1), "pool3 299");
  expect_close(o.block1.narrow(0, 0, 1), io.at("output.block1_299_img0"), "block1");
  expect_close(o.block2.narrow(0, 0, 1), io.at("output.block2_299_img0"), "block2");
  expect_close(net->features(io.at("input.x64")), io.at("output.pool3_64").flatten(1), "pool3 64 (resized)");
  EXPECT_THROW(net->forward(io.at("input.x64").narrow(1, 0, 1)), mmref::Error);  // grayscale: clear error
  EXPECT_THROW(net->forward(io.at("input.x64"), /*want_logits=*/true), mmref::Error);
}

TEST(FidInception, WeightsWithWrongKeysNameTheProblem) {
  const std::string dir = mmref::fs::make_temp_dir("mmref_fid_");
  mmref::save_safetensors(dir + "/bad.safetensors", {{"Conv2d_1a_3x3.conv.weight", at::zeros({32, 3, 3, 3})}});
  mmref::models::FidInceptionV3 net;
  try {
    net->load(dir + "/bad.safetensors");
    ADD_FAILURE() << "incomplete weights accepted";
  } catch (const mmref::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing"), std::string::npos) << m;
    EXPECT_NE(m.find("pt_inception"), std::string::npos) << m;
  }
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
