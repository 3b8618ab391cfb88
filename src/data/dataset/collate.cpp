// collate(): pad each tensor key along dim 0 to the batch maximum and stack (see collate.h).
#include "data/dataset/collate.h"

#include <algorithm>

#include <ATen/Functions.h>
#include <fmt/format.h>

#include "core/error.h"

namespace mmref::data {

Batch collate(std::vector<Example> examples, const std::map<std::string, double>& padding_values) {
  if (examples.empty()) MMREF_FAIL("collate: empty list of examples (a batch needs at least one)");
  const int64_t B = static_cast<int64_t>(examples.size());
  const Example& first = examples.front();
  Batch batch;
  batch.ids.reserve(examples.size());
  for (const Example& ex : examples) {
    if (ex.tensors.size() != first.tensors.size() ||
        !std::equal(ex.tensors.begin(), ex.tensors.end(), first.tensors.begin(),
                    [](const auto& a, const auto& b) { return a.first == b.first; })) {
      std::string keys_a, keys_b;
      for (const auto& kv : first.tensors) keys_a += (keys_a.empty() ? "" : ",") + kv.first;
      for (const auto& kv : ex.tensors) keys_b += (keys_b.empty() ? "" : ",") + kv.first;
      MMREF_FAIL(
          "collate: example '{}' has tensor keys [{}] but example '{}' has [{}]; every example "
          "of a dataset must have the same keys",
          ex.id, keys_b, first.id, keys_a);
    }
    batch.ids.push_back(ex.id);
  }
  for (const auto& [key, proto] : first.tensors) {
    if (!proto.defined()) MMREF_FAIL("collate: example '{}' has an undefined tensor '{}'", first.id, key);
    const auto pv = padding_values.find(key);
    const double pad = pv == padding_values.end() ? 0.0 : pv->second;
    if (proto.dim() == 0) {
      std::vector<at::Tensor> items;
      for (const Example& ex : examples) {
        const at::Tensor& t = ex.tensors.at(key);
        if (!t.defined() || t.dim() != 0 || t.scalar_type() != proto.scalar_type())
          MMREF_FAIL("collate: tensor '{}' of example '{}' must be a 0-dim {} like example '{}'", key, ex.id,
                     c10::toString(proto.scalar_type()), first.id);
        items.push_back(t);
      }
      batch.tensors[key] = at::stack(items);  // (B,)
      continue;
    }
    int64_t tmax = 0;
    std::vector<int64_t> lens(examples.size());
    for (size_t i = 0; i < examples.size(); ++i) {
      const Example& ex = examples[i];
      const at::Tensor& t = ex.tensors.at(key);
      if (!t.defined() || t.dim() != proto.dim() || t.scalar_type() != proto.scalar_type() ||
          t.sizes().slice(1) != proto.sizes().slice(1)) {
        MMREF_FAIL(
            "collate: tensor '{}' of example '{}' is {} {} but example '{}' has {} {}; only dim "
            "0 may differ",
            key, ex.id, t.defined() ? c10::toString(t.scalar_type()) : "undefined",
            t.defined() ? fmt::format("{}", fmt::join(t.sizes(), "x")) : "", first.id,
            c10::toString(proto.scalar_type()), fmt::format("{}", fmt::join(proto.sizes(), "x")));
      }
      lens[i] = t.size(0);
      tmax = std::max(tmax, lens[i]);
    }
    std::vector<int64_t> shape{B, tmax};
    for (int64_t d = 1; d < proto.dim(); ++d) shape.push_back(proto.size(d));
    at::Tensor out = at::full(shape, pad, proto.options().device(at::kCPU));  // (B, Tmax, ...)
    for (int64_t i = 0; i < B; ++i) {
      if (lens[i] > 0) out[i].narrow(0, 0, lens[i]).copy_(examples[i].tensors.at(key));
    }
    batch.tensors[key] = out;
    batch.lengths[key] = at::tensor(lens, at::kLong);  // (B,)
  }
  return batch;
}

}  // namespace mmref::data
