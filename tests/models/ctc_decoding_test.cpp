// CTC decoding on hand-built posteriors: greedy merges repeats and drops blanks with the right frame
// spans; prefix beam search sums paths, so it finds the label greedy misses, and agrees with an exhaustive
// enumeration of all alignments on a small case.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include <ATen/Functions.h>

#include "core/error.h"
#include "models/asr/ctc_decoding.h"

namespace {

using mmref::models::ctc_greedy;
using mmref::models::ctc_prefix_beam_search;

at::Tensor logp(std::vector<std::vector<double>> p) {
  const int64_t t = static_cast<int64_t>(p.size()), v = static_cast<int64_t>(p[0].size());
  at::Tensor x = at::empty({t, v}, at::kDouble);
  for (int64_t i = 0; i < t; ++i) {
    for (int64_t j = 0; j < v; ++j) x[i][j] = std::log(p[i][j]);
  }
  return x.to(at::kFloat);
}

TEST(CtcGreedy, MergesRepeatsDropsBlanksAndGivesFrameSpans) {
  // frames: a a _ a b b _  -> a a b (the blank separates the two a's)
  const std::vector<int64_t> path{1, 1, 0, 1, 2, 2, 0};
  std::vector<std::vector<double>> p;
  for (int64_t id : path) {
    std::vector<double> row(3, 0.1);
    row[id] = 0.8;
    p.push_back(row);
  }
  const auto h = ctc_greedy(logp(p));
  EXPECT_EQ(h.ids(), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(h.tokens[0].start_frame, 0);
  EXPECT_EQ(h.tokens[0].end_frame, 1);
  EXPECT_EQ(h.tokens[1].start_frame, 3);
  EXPECT_EQ(h.tokens[2].start_frame, 4);
  EXPECT_EQ(h.tokens[2].end_frame, 5);
  EXPECT_EQ(ctc_greedy(logp(p), /*length=*/3).ids(), (std::vector<int64_t>{1}));  // padded rows ignored
}

TEST(CtcBeam, FindsTheLabelGreedyMissesAndMatchesExhaustiveSums) {
  // p(blank) = 0.6, p(a) = 0.4 per frame: greedy says "" (0.36); "a" has 0.16 + 0.24 + 0.24 = 0.64.
  const at::Tensor lp = logp({{0.6, 0.4}, {0.6, 0.4}});
  EXPECT_TRUE(ctc_greedy(lp).ids().empty());
  const auto nbest = ctc_prefix_beam_search(lp, -1, {/*beam=*/4});
  ASSERT_FALSE(nbest.empty());
  EXPECT_EQ(nbest[0].ids(), (std::vector<int64_t>{1}));
  EXPECT_NEAR(std::exp(nbest[0].log_prob), 0.64, 1e-6);
  // Exhaustive: every alignment of 4 frames over {blank, a, b}, collapsed, probabilities summed.
  const at::Tensor lp3 = logp({{0.5, 0.3, 0.2}, {0.4, 0.4, 0.2}, {0.3, 0.3, 0.4}, {0.6, 0.2, 0.2}});
  std::map<std::vector<int64_t>, double> sums;
  const auto acc = lp3.to(at::kDouble).exp();
  for (int code = 0; code < 81; ++code) {
    int c = code;
    std::vector<int64_t> al;
    double prob = 1;
    for (int t = 0; t < 4; ++t) al.push_back(c % 3), prob *= acc[t][c % 3].item<double>(), c /= 3;
    std::vector<int64_t> label;
    int64_t prev = -1;
    for (int64_t id : al) {
      if (id != 0 && id != prev) label.push_back(id);
      prev = id;
    }
    sums[label] += prob;
  }
  const auto full = ctc_prefix_beam_search(lp3, -1, {/*beam=*/100});
  ASSERT_EQ(full.size(), sums.size());
  double total = 0;
  for (const auto& h : full) {
    EXPECT_NEAR(std::exp(h.log_prob), sums.at(h.ids()), 1e-6);
    total += std::exp(h.log_prob);
  }
  EXPECT_NEAR(total, 1.0, 1e-6);
  EXPECT_THROW(ctc_prefix_beam_search(lp3, -1, {/*beam=*/0}), mmref::Error);
}

}  // namespace
