// Examples, batches and collation for mmref's DataLoader (loader.h).
//
// An Example is a map of named tensors ("feats" (T,F), "tokens" (L), ...) plus an id. collate() stacks a
// list of examples into a Batch: every tensor key is padded along dim 0 to the longest example and
// stacked to (B, Tmax, ...); lengths["<key>"] holds each example's original dim-0 size as (B,) int64.
// 0-dim tensors are stacked to (B,) without a lengths entry. All examples must have the same keys, and
// per key the same dtype and trailing dims; violations are an mmref::Error naming the example id.
//
// Ref: torch.utils.data default_collate + torch.nn.utils.rnn.pad_sequence(batch_first=True) semantics.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::data {

struct Example {
  std::map<std::string, at::Tensor> tensors;  // e.g. "feats" (T,F), "tokens" (L)
  std::string id;
  int64_t length = 0;  // informational; bucketing uses Dataset::length(index)
};

struct Batch {
  std::map<std::string, at::Tensor> tensors;  // padded (B, Tmax, ...)
  std::map<std::string, at::Tensor> lengths;  // "<key>" -> (B,) int64, for keys with dim >= 1
  std::vector<std::string> ids;
  std::vector<int64_t> indices;  // dataset indices (filled by the DataLoader; empty from collate())
  int64_t size() const { return static_cast<int64_t>(ids.size()); }
};

// Pads and stacks `examples` (non-empty). `padding_values[key]` is the fill value for that key's padded
// positions (default 0), e.g. {"tokens", -1}.
Batch collate(std::vector<Example> examples, const std::map<std::string, double>& padding_values = {});

}  // namespace mmref::data
