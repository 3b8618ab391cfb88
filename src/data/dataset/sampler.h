// Datasets and the batch sampler: which dataset indices form each batch of an epoch.
//
// epoch_batches(epoch) is a pure function of (dataset size/lengths, options, epoch, rank, world_size):
//   1. order      0..N-1, or a Fisher-Yates permutation seeded by (seed, epoch) when shuffle (the same on
//                 every rank, so ranks agree on it; our own shuffle, not std::shuffle, so it is identical
//                 on every standard library).
//   2. shard      (world_size > 1, max_tokens == 0) like torch DistributedSampler: pad the order by
//                 repeating its head to a multiple of world_size (drop_last=false) or cut the tail
//                 (drop_last=true); rank r takes positions r, r+world, ... Every rank gets the same
//                 number of examples, hence the same number of batches.
//   3. bucket     (bucket_by_length) sort windows of batch_size*bucket_size_multiplier indices by
//                 Dataset::length (descending, stable), cut into batches, then shuffle the batch order
//                 (when shuffle). Similar lengths share a batch, so little padding.
//   4. batch      fixed batch_size (drop_last drops a short final batch), or with max_tokens > 0 a new
//                 batch starts when adding the next example would push the sum of lengths over
//                 max_tokens or the count over batch_size (an example longer than max_tokens is a batch
//                 of its own; drop_last is then only used for sharding).
//   With max_tokens > 0 and world_size > 1, batch counts would differ between ranks, so sharding happens
//   on batches instead: batches are formed from the global order, padded by repetition (or cut, with
//   drop_last) to a multiple of world_size, and rank r takes batches r, r+world, ...
//
// Ref: torch.utils.data.DistributedSampler (padding rule), ESPnet/lhotse bucketing samplers (windowed
// sort + batch shuffle).
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset/collate.h"

namespace mmref::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Must be thread-safe: DataLoader workers call it concurrently.
  virtual Example get(int64_t index) const = 0;
  // Cheap length for bucketing / max_tokens (e.g. from the manifest duration); 0 when unknown.
  virtual int64_t length(int64_t /*index*/) const { return 0; }
};

struct SamplerOptions {
  int64_t batch_size = 8;
  bool shuffle = true;
  uint64_t seed = 0;
  bool drop_last = false;
  bool bucket_by_length = false;
  int64_t bucket_size_multiplier = 50;  // sort within windows of batch_size * this
  int64_t max_tokens = 0;               // > 0: dynamic batches by sum of lengths
  int rank = 0, world_size = 1;
};

class BatchSampler {
 public:
  // Reads Dataset::length for every index once when bucketing or max_tokens needs it. Throws
  // mmref::ConfigError for out-of-range options.
  BatchSampler(const Dataset& dataset, SamplerOptions options);

  // Deterministic for (seed, epoch, rank, world_size).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;

  const SamplerOptions& options() const { return options_; }

 private:
  std::vector<std::vector<int64_t>> make_batches(std::vector<int64_t> order, uint64_t batch_seed) const;

  SamplerOptions options_;
  int64_t size_ = 0;
  std::vector<int64_t> lengths_;  // empty unless bucketing or max_tokens
};

}  // namespace mmref::data
