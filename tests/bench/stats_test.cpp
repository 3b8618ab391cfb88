// Latency statistics (src/bench/stats.h) against hand-computed values (numpy.percentile's linear rule,
// sample std with n - 1):
//
//   samples            sorted          mean  p50  p90                 p99                  std
//   4 1 3 2 10         1 2 3 4 10      4     3    4 + 0.6*6 = 7.6     4 + 0.96*6 = 9.76    sqrt(50/4) = 3.5355339
//   2 4                2 4             3     3    2 + 0.9*2 = 3.8     2 + 0.99*2 = 3.98    sqrt(2/1) = 1.4142136
//   5                  5               5     5    5                   5                    0
#include <gtest/gtest.h>

#include <cmath>

#include "bench/stats.h"

namespace mmref::bench {
namespace {

TEST(BenchStats, FiveSamples) {
  const Summary s = summarize({4, 1, 3, 2, 10});
  EXPECT_EQ(s.n, 5);
  EXPECT_DOUBLE_EQ(s.mean, 4);
  EXPECT_DOUBLE_EQ(s.p50, 3);
  EXPECT_NEAR(s.p90, 7.6, 1e-12);
  EXPECT_NEAR(s.p99, 9.76, 1e-12);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_NEAR(s.std, std::sqrt(12.5), 1e-12);
}

TEST(BenchStats, TwoSamplesInterpolate) {
  const Summary s = summarize({4, 2});
  EXPECT_DOUBLE_EQ(s.p50, 3);
  EXPECT_NEAR(s.p90, 3.8, 1e-12);
  EXPECT_NEAR(s.p99, 3.98, 1e-12);
  EXPECT_NEAR(s.std, std::sqrt(2.0), 1e-12);
}

TEST(BenchStats, OneAndZeroSamples) {
  const Summary one = summarize({5});
  EXPECT_DOUBLE_EQ(one.p99, 5);
  EXPECT_DOUBLE_EQ(one.std, 0);
  EXPECT_EQ(summarize({}).n, 0);
}

TEST(BenchStats, QuantileEndsAndJson) {
  const std::vector<double> x{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 0), 1);
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 1), 4);
  EXPECT_DOUBLE_EQ(quantile_sorted(x, 0.25), 1.75);  // h = 0.75
  const nlohmann::json j = to_json(summarize({4, 1, 3, 2, 10}));
  for (const char* k : {"mean", "p50", "p90", "p99", "min", "max", "std", "n"}) EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["n"], 5);
}

}  // namespace
}  // namespace mmref::bench
