// The kernel.* and train.mlp_step bench targets (src/bench/targets_kernels.cpp, targets_train.cpp):
// declared Work against hand-computed figures, every backend runs, bad keys are errors, peers exist.
//
//   target                 point                                              units  flops
//   kernel.attention       b 2, h 4, s 16, d 8                                32     4*2*4*16*16*8 = 65536
//                          + causal                                                  32768
//                          + mode train                                              3 * 65536 = 196608
//   kernel.depthwise       b 2, c 4, t 10, k 3 (same: t_out 10)               20     2*2*4*10*3 = 480
//   kernel.conv1d          b 1, cin 4, cout 6, t 10, k 3, stride 2, pad 1     10     t_out (10+2-2-1)/2+1 = 5:
//                                                                                    2*1*6*5*4*3 = 720
//   kernel.group_norm_silu b 3, c 8, 4 x 4, groups 4                          3      none
//   train.mlp_step         batch 8, in 4, hidden 16, layers 3                 1      weights 4*16+16*16+16*1 =
//                                                                                    336: 6*336*8 = 16128
#include <gtest/gtest.h>

#include <filesystem>

#include "bench/target.h"
#include "core/error.h"

namespace mmref::bench {
namespace {

Work prepare_and_run(const std::string& name, const nlohmann::json& values) {
  auto t = make_target(name);
  Point p;
  p.values = values;
  const Work w = t->prepare(p);
  t->run();
  t->run();
  return w;
}

TEST(BenchKernelTargets, AttentionWorkAndBackends) {
  const nlohmann::json base = {{"batch", 2}, {"heads", 4}, {"seq", 16}, {"head_dim", 8}};
  for (const char* backend : {"mmref", "reference", "torch"}) {
    nlohmann::json v = base;
    v["backend"] = backend;
    const Work w = prepare_and_run("kernel.attention", v);
    EXPECT_DOUBLE_EQ(w.flops, 65536) << backend;
    EXPECT_DOUBLE_EQ(w.units, 32);
    EXPECT_EQ(w.unit, "tokens/s");
  }
  nlohmann::json v = base;
  v["causal"] = true;
  v["mask"] = "lengths";
  EXPECT_DOUBLE_EQ(prepare_and_run("kernel.attention", v).flops, 32768);
  v = base;
  v["mode"] = "train";
  v["mask"] = "bias";
  EXPECT_DOUBLE_EQ(prepare_and_run("kernel.attention", v).flops, 196608);
  v = base;
  v["kv_heads"] = 2;  // grouped-query
  EXPECT_DOUBLE_EQ(prepare_and_run("kernel.attention", v).flops, 65536);
}

TEST(BenchKernelTargets, ConvWork) {
  Work w = prepare_and_run("kernel.depthwise_conv1d",
                           {{"batch", 2}, {"channels", 4}, {"length", 10}, {"kernel_size", 3}, {"backend", "torch"}});
  EXPECT_DOUBLE_EQ(w.flops, 480);
  EXPECT_DOUBLE_EQ(w.units, 20);
  w = prepare_and_run("kernel.conv1d", {{"batch", 1}, {"in_channels", 4}, {"out_channels", 6}, {"length", 10},
                                        {"kernel_size", 3}, {"stride", 2}, {"mode", "train"}});
  EXPECT_DOUBLE_EQ(w.flops, 3 * 720);
  w = prepare_and_run("kernel.group_norm_silu",
                      {{"batch", 3}, {"channels", 8}, {"resolution", 4}, {"groups", 4}, {"backend", "reference"}});
  EXPECT_DOUBLE_EQ(w.units, 3);
  EXPECT_EQ(w.unit, "images/s");
  EXPECT_DOUBLE_EQ(w.flops, 0);
}

TEST(BenchKernelTargets, MlpStepWork) {
  const Work w = prepare_and_run("train.mlp_step", {{"batch", 8}, {"input_dim", 4}, {"hidden", 16}, {"layers", 3}});
  EXPECT_DOUBLE_EQ(w.flops, 16128);
  EXPECT_DOUBLE_EQ(w.units, 1);
  EXPECT_EQ(w.unit, "steps/s");
}

TEST(BenchKernelTargets, BadKeysAreErrorsNamingTheKey) {
  auto error_of = [](const std::string& name, const nlohmann::json& v) -> std::string {
    auto t = make_target(name);
    Point p;
    p.values = v;
    try {
      t->prepare(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("kernel.attention", {{"mask", "weird"}}).find("mask"), std::string::npos);
  EXPECT_NE(error_of("kernel.attention", {{"heads", 4}, {"kv_heads", 3}}).find("kv_heads"), std::string::npos);
  EXPECT_NE(error_of("kernel.attention", {{"backend", "cudnn"}}).find("cudnn"), std::string::npos);
  EXPECT_NE(error_of("kernel.attention", {{"seq", 0}}).find("seq"), std::string::npos);
  EXPECT_NE(error_of("kernel.attention", {{"seq", "long"}}).find("seq"), std::string::npos);
  EXPECT_NE(error_of("kernel.conv1d", {{"mode", "both"}}).find("mode"), std::string::npos);
  EXPECT_NE(error_of("kernel.group_norm_silu", {{"channels", 6}, {"groups", 4}}).find("groups"), std::string::npos);
  EXPECT_NE(error_of("train.mlp_step", {{"dtype", "int8"}}).find("int8"), std::string::npos);
}

TEST(BenchKernelTargets, PeerScriptsExist) {
  for (const char* name : {"kernel.attention", "kernel.conv1d", "kernel.depthwise_conv1d", "kernel.group_norm_silu",
                           "train.mlp_step"}) {
    const PeerSpec s = make_target(name)->peer(Point{});
    ASSERT_FALSE(s.script.empty()) << name;
    EXPECT_TRUE(std::filesystem::exists(std::string(MMREF_SOURCE_DIR) + "/" + s.script)) << name << ": " << s.script;
  }
}

}  // namespace
}  // namespace mmref::bench
