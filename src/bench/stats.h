// Latency statistics of one sweep point (what the JSONL records' "latency_ms" holds).
//   quantiles: linear interpolation between closest ranks (numpy.percentile's default "linear"):
//              h = (n - 1) * q, x[floor h] + (h - floor h) * (x[floor h + 1] - x[floor h]) on sorted x
//   std:       sample standard deviation (n - 1 in the denominator; 0 for n = 1)
// Tests: tests/bench/stats_test.cpp (hand-computed tables).
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::bench {

struct Summary {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, min = 0, max = 0, std = 0;
  int64_t n = 0;
};

// q in [0, 1]; `sorted` ascending and non-empty.
double quantile_sorted(const std::vector<double>& sorted, double q);
// Summary of the samples (n = 0: all zero).
Summary summarize(std::vector<double> samples);
// {"mean","p50","p90","p99","min","max","std","n"}.
nlohmann::json to_json(const Summary& s);

}  // namespace mmref::bench
