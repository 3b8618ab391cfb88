// BatchSampler: seeded shuffle, DistributedSampler-style sharding, length bucketing, dynamic batches
// (see sampler.h for the exact order of steps).
#include "data/dataset/sampler.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/error.h"

namespace mmref::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Uniform integer in [0, n) without modulo bias, from a fully specified engine (mt19937_64's output
// sequence is fixed by the standard; std::uniform_int_distribution and std::shuffle are not).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do {
    r = rng();
  } while (r >= limit);
  return r % n;
}

template <typename T>
void fisher_yates(std::vector<T>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}

// Pads `v` by repeating it from the start to a multiple of `world` (or cuts it when drop), then takes
// positions rank, rank+world, ... (torch DistributedSampler).
template <typename T>
std::vector<T> shard(std::vector<T> v, int rank, int world, bool drop) {
  if (world == 1) return v;
  const size_t n = v.size();
  const size_t w = static_cast<size_t>(world);
  if (drop) {
    v.resize(n / w * w);
  } else if (n > 0) {
    const size_t total = (n + w - 1) / w * w;
    for (size_t i = n; i < total; ++i) v.push_back(v[(i - n) % n]);
  }
  std::vector<T> out;
  for (size_t i = static_cast<size_t>(rank); i < v.size(); i += w) out.push_back(v[i]);
  return out;
}

}  // namespace

BatchSampler::BatchSampler(const Dataset& dataset, SamplerOptions options)
    : options_(options), size_(dataset.size()) {
  if (options_.batch_size < 1)
    throw ConfigError(fmt::format("sampler: batch_size must be >= 1, got {}", options_.batch_size));
  if (options_.bucket_size_multiplier < 1)
    throw ConfigError(
        fmt::format("sampler: bucket_size_multiplier must be >= 1, got {}", options_.bucket_size_multiplier));
  if (options_.max_tokens < 0)
    throw ConfigError(fmt::format("sampler: max_tokens must be >= 0, got {}", options_.max_tokens));
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    throw ConfigError(fmt::format("sampler: need 0 <= rank < world_size, got rank {} world_size {}",
                                  options_.rank, options_.world_size));
  if (size_ < 0) MMREF_FAIL("sampler: dataset reports a negative size {}", size_);
  if (options_.bucket_by_length || options_.max_tokens > 0) {
    lengths_.resize(static_cast<size_t>(size_));
    for (int64_t i = 0; i < size_; ++i) lengths_[static_cast<size_t>(i)] = dataset.length(i);
  }
}

std::vector<std::vector<int64_t>> BatchSampler::make_batches(std::vector<int64_t> order,
                                                             uint64_t batch_seed) const {
  const auto& o = options_;
  if (o.bucket_by_length) {
    const size_t window = static_cast<size_t>(o.batch_size * o.bucket_size_multiplier);
    for (size_t s = 0; s < order.size(); s += window) {
      const auto b = order.begin() + static_cast<std::ptrdiff_t>(s);
      const auto e = order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), s + window));
      std::stable_sort(b, e, [&](int64_t x, int64_t y) {
        return lengths_[static_cast<size_t>(x)] > lengths_[static_cast<size_t>(y)];
      });
    }
  }
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> cur;
  int64_t cur_tokens = 0;
  for (int64_t idx : order) {
    if (o.max_tokens > 0) {
      const int64_t len = lengths_[static_cast<size_t>(idx)];
      if (!cur.empty() &&
          (cur_tokens + len > o.max_tokens || static_cast<int64_t>(cur.size()) >= o.batch_size)) {
        batches.push_back(std::move(cur));
        cur.clear();
        cur_tokens = 0;
      }
      cur.push_back(idx);
      cur_tokens += len;
    } else {
      cur.push_back(idx);
      if (static_cast<int64_t>(cur.size()) == o.batch_size) {
        batches.push_back(std::move(cur));
        cur.clear();
      }
    }
  }
  if (!cur.empty() && (o.max_tokens > 0 || !o.drop_last)) batches.push_back(std::move(cur));
  // Bucketed batches come out sorted by length inside each window: shuffle their order.
  if (o.bucket_by_length && o.shuffle) fisher_yates(batches, batch_seed);
  return batches;
}

std::vector<std::vector<int64_t>> BatchSampler::epoch_batches(int64_t epoch) const {
  const auto& o = options_;
  std::vector<int64_t> order(static_cast<size_t>(size_));
  std::iota(order.begin(), order.end(), int64_t{0});
  const uint64_t epoch_seed = splitmix64(o.seed ^ splitmix64(static_cast<uint64_t>(epoch)));
  if (o.shuffle) fisher_yates(order, epoch_seed);
  // Batch-order shuffle: the same on every rank when batches are formed globally (max_tokens), per
  // rank otherwise.
  if (o.max_tokens > 0) {
    auto batches = make_batches(std::move(order), splitmix64(epoch_seed + 1));
    return shard(std::move(batches), o.rank, o.world_size, o.drop_last);
  }
  order = shard(std::move(order), o.rank, o.world_size, o.drop_last);
  return make_batches(std::move(order), splitmix64(epoch_seed + 1 + static_cast<uint64_t>(o.rank)));
}

}  // namespace mmref::data
