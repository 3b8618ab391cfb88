// Shared toy dataset for the loader tests: example i has feats (len_i, 3) filled with i and tokens
// (i % 5 + 1) filled with i; ids "utt<i>"; indices in `bad` throw mmref::Error naming the id.
#pragma once
#include <chrono>
#include <set>
#include <thread>

#include <ATen/Functions.h>

#include "core/error.h"
#include "data/dataset/sampler.h"

namespace mmref::data::testing {

class ToyDataset : public Dataset {
 public:
  ToyDataset(int64_t n, std::vector<int64_t> lengths = {}, std::set<int64_t> bad = {},
             std::chrono::microseconds delay = std::chrono::microseconds(0))
      : n_(n), lengths_(std::move(lengths)), bad_(std::move(bad)), delay_(delay) {}
  int64_t size() const override { return n_; }
  int64_t length(int64_t i) const override {
    return lengths_.empty() ? 1 + (i * 7) % 13 : lengths_[static_cast<size_t>(i)];
  }
  Example get(int64_t i) const override {
    if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
    if (bad_.count(i)) MMREF_FAIL("toy dataset: utt{} is corrupt", i);
    Example ex;
    ex.id = "utt" + std::to_string(i);
    ex.length = length(i);
    ex.tensors["feats"] = at::full({ex.length, 3}, static_cast<double>(i), at::kFloat);
    ex.tensors["tokens"] = at::full({i % 5 + 1}, i, at::kLong);
    return ex;
  }

 private:
  int64_t n_;
  std::vector<int64_t> lengths_;
  std::set<int64_t> bad_;
  std::chrono::microseconds delay_;
};

}  // namespace mmref::data::testing
