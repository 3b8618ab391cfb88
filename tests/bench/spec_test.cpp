// Bench YAML expansion (src/bench/spec.h): cartesian product order, explicit points after it, settings
// merged under points, overrides, `benches:` lists, and ConfigErrors for unknown keys and bad values.
#include <gtest/gtest.h>

#include "bench/spec.h"
#include "core/config.h"
#include "core/error.h"

namespace mmref::bench {
namespace {

BenchFile parse(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parse_bench_file(config::parse_yaml(yaml, "t.yaml"), "t", overrides);
}

std::string error_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(BenchSpec, CartesianProductFirstKeyOutermostWithSettingsMerged) {
  const BenchFile f = parse(
      "name: s\ntarget: kernel.attention\nsettings: {dtype: float32, heads: 4}\n"
      "sweep: {batch: [1, 2], seq: [128, 256, 512]}\n");
  ASSERT_EQ(f.benches.size(), 1u);
  const BenchSpec& b = f.benches[0];
  EXPECT_EQ(f.name, "s");
  // Expected order (batch outermost):
  //   (1,128) (1,256) (1,512) (2,128) (2,256) (2,512)
  ASSERT_EQ(b.points.size(), 6u);
  const int64_t want[6][2] = {{1, 128}, {1, 256}, {1, 512}, {2, 128}, {2, 256}, {2, 512}};
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(b.points[i]["batch"], want[i][0]) << i;
    EXPECT_EQ(b.points[i]["seq"], want[i][1]) << i;
    EXPECT_EQ(b.points[i]["dtype"], "float32");
    EXPECT_EQ(b.points[i]["heads"], 4);
  }
  EXPECT_EQ(b.varying, (std::vector<std::string>{"batch", "seq"}));
  EXPECT_EQ(b.point_keys(4), (nlohmann::json{{"batch", 2}, {"seq", 256}}));
  // Defaults of the budgets and device.
  EXPECT_EQ(b.device, "auto");
  EXPECT_EQ(b.warmup.count, 3);
  EXPECT_EQ(b.repeats.count, 10);
  EXPECT_EQ(b.repeats.max, 10000);
}

TEST(BenchSpec, ExplicitPointsAfterTheProductAndOverSettings) {
  const BenchFile f = parse(
      "target: kernel.attention\nsettings: {dtype: float32, seq: 64}\nsweep: {batch: [1, 2]}\n"
      "points: [{batch: 8, seq: 2048, causal: true}, {dtype: bfloat16}]\n");
  const BenchSpec& b = f.benches[0];
  EXPECT_EQ(b.name, "t");  // no name: the file stem
  ASSERT_EQ(b.points.size(), 4u);
  EXPECT_EQ(b.points[0], (nlohmann::json{{"dtype", "float32"}, {"seq", 64}, {"batch", 1}}));
  EXPECT_EQ(b.points[1]["batch"], 2);
  EXPECT_EQ(b.points[2], (nlohmann::json{{"dtype", "float32"}, {"seq", 2048}, {"batch", 8}, {"causal", true}}));
  EXPECT_EQ(b.points[3], (nlohmann::json{{"dtype", "bfloat16"}, {"seq", 64}}));
  EXPECT_EQ(b.varying, (std::vector<std::string>{"batch", "seq", "causal", "dtype"}));
  EXPECT_EQ(b.point_keys(3), (nlohmann::json{{"dtype", "bfloat16"}, {"seq", 64}}));
}

TEST(BenchSpec, ScalarTypingAndThreads) {
  const BenchFile f = parse(
      "target: x\nthreads: 2\nsettings: {a: 1, b: 1.5, c: true, d: text, e: '7', f: null}\n"
      "points: [{threads: 1}, {}]\nwarmup: {count: 0, seconds: 0.5}\nrepeats: {count: 2, seconds: 1, max: 5}\n"
      "peer: true\ndevice: cpu\n");
  const BenchSpec& b = f.benches[0];
  const auto& p = b.points[0];
  EXPECT_TRUE(p["a"].is_number_integer());
  EXPECT_DOUBLE_EQ(p["b"].get<double>(), 1.5);
  EXPECT_EQ(p["c"], true);
  EXPECT_EQ(p["d"], "text");
  EXPECT_EQ(p["e"], "7");  // quoted stays a string
  EXPECT_TRUE(p["f"].is_null());
  EXPECT_EQ(b.threads_for(0), 1);
  EXPECT_EQ(b.threads_for(1), 2);
  EXPECT_DOUBLE_EQ(b.warmup.seconds, 0.5);
  EXPECT_EQ(b.repeats.max, 5);
  EXPECT_TRUE(b.peer);
  EXPECT_EQ(b.device, "cpu");
}

TEST(BenchSpec, OverridesApplyBeforeExpansion) {
  const BenchFile f = parse("target: x\nsweep: {batch: [1, 2]}\nsettings: {dtype: float32}\n",
                            {"sweep.batch=[4, 8, 16]", "settings.dtype=bfloat16", "repeats.count=2", "device=cpu"});
  const BenchSpec& b = f.benches[0];
  ASSERT_EQ(b.points.size(), 3u);
  EXPECT_EQ(b.points[2]["batch"], 16);
  EXPECT_EQ(b.points[0]["dtype"], "bfloat16");
  EXPECT_EQ(b.repeats.count, 2);
  EXPECT_EQ(b.device, "cpu");
}

TEST(BenchSpec, BenchesListEachEntryOverridden) {
  const BenchFile f = parse(
      "name: full\nbenches:\n  - {name: a, target: x, sweep: {n: [1, 2]}}\n  - {target: y}\n",
      {"repeats.count=3"});
  EXPECT_EQ(f.name, "full");
  ASSERT_EQ(f.benches.size(), 2u);
  EXPECT_EQ(f.benches[0].name, "a");
  EXPECT_EQ(f.benches[0].points.size(), 2u);
  EXPECT_EQ(f.benches[1].name, "full_1");
  EXPECT_EQ(f.benches[1].points.size(), 1u);  // settings alone: one point
  EXPECT_EQ(f.benches[0].repeats.count, 3);
  EXPECT_EQ(f.benches[1].repeats.count, 3);
}

TEST(BenchSpec, UnknownKeysAndBadValuesAreConfigErrorsNamingTheKey) {
  EXPECT_NE(error_of("target: x\nswep: {batch: [1]}\n").find("swep"), std::string::npos);
  EXPECT_NE(error_of("target: x\nswep: {batch: [1]}\n").find("did you mean 'sweep'"), std::string::npos);
  EXPECT_NE(error_of("target: x\nwarmup: {cnt: 1}\n").find("warmup.cnt"), std::string::npos);
  EXPECT_NE(error_of("name: n\nbenches: [{target: x}]\nextra: 1\n").find("extra"), std::string::npos);
  EXPECT_NE(error_of("name: n\nbenches: [{target: x, bogus: 1}]\n").find("bogus"), std::string::npos);
  EXPECT_NE(error_of("sweep: {batch: [1]}\n").find("target"), std::string::npos);  // required
  EXPECT_NE(error_of("target: x\nsweep: {batch: 4}\n").find("sweep.batch"), std::string::npos);
  EXPECT_NE(error_of("target: x\nsweep: [1, 2]\n").find("sweep"), std::string::npos);
  EXPECT_NE(error_of("target: x\ndevice: tpu\n").find("device"), std::string::npos);
  EXPECT_NE(error_of("target: x\nrepeats: {count: 5, max: 2}\n").find("max"), std::string::npos);
  EXPECT_NE(error_of("target: x\npoints: [{threads: -1}]\n").find("threads"), std::string::npos);
  EXPECT_NE(error_of("target: x\npoints: [3]\n").find("points"), std::string::npos);
}

}  // namespace
}  // namespace mmref::bench
