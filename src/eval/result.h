// What a metric reports: the value, a 95% bootstrap confidence interval over samples (or utterances),
// the number of samples, and how the number was made (settings, weights file and its hash), so a result
// file says everything needed to reproduce it.
//
//   eval::MetricResult r{"wer", 0.123};
//   r.set_ci(eval::bootstrap_ci(per_utt_values, ...));
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::eval {

struct ConfidenceInterval {
  double low = 0, high = 0;
  double level = 0.95;
  int64_t resamples = 0;  // 0 = not computed
};

struct MetricResult {
  std::string metric;
  double value = 0;
  int64_t n = 0;
  ConfidenceInterval ci;
  nlohmann::json settings = nlohmann::json::object();  // preprocessing, subsets, normalisation, ...
  nlohmann::json extra = nlohmann::json::object();     // e.g. KID std, WER hits/subs/dels/ins
  nlohmann::json to_json() const;
};

// Percentile bootstrap: `statistic` is evaluated on `resamples` index resamples (with replacement) of
// 0..n-1 drawn from a seeded generator; the interval is the (1-level)/2 and (1+level)/2 quantiles
// (linear interpolation, as numpy.percentile). n < 2 gives the degenerate interval [v, v].
ConfidenceInterval bootstrap_ci(int64_t n, const std::function<double(const std::vector<int64_t>&)>& statistic,
                                int64_t resamples = 1000, double level = 0.95, uint64_t seed = 0);

// numpy.percentile(values, q) with the default linear interpolation; q in [0, 100].
double percentile(std::vector<double> values, double q);

// SHA-256 of a file as lowercase hex (weights provenance in results). Throws mmref::Error naming it.
std::string sha256_file(const std::string& path);

}  // namespace mmref::eval
