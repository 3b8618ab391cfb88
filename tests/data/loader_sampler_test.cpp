// BatchSampler*: order, seeded shuffle, bucketing, dynamic batches and distributed sharding
// (data/dataset/sampler.h).
#include <algorithm>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "core/error.h"
#include "data/dataset/sampler.h"
#include "loader_test_util.h"

namespace mmref::data {
namespace {

using testing::ToyDataset;
using Batches = std::vector<std::vector<int64_t>>;

std::vector<int64_t> flatten(const Batches& bs) {
  std::vector<int64_t> out;
  for (const auto& b : bs) out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<int64_t> random_lengths(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(10 + static_cast<int64_t>(rng() % 991));  // 10..1000
  return out;
}

// Fraction of padded positions: sum over batches of (B * max_len - sum_len) / (B * max_len).
double padding_fraction(const Batches& bs, const std::vector<int64_t>& len) {
  double padded = 0, total = 0;
  for (const auto& b : bs) {
    int64_t mx = 0, sum = 0;
    for (int64_t i : b) mx = std::max(mx, len[static_cast<size_t>(i)]), sum += len[static_cast<size_t>(i)];
    padded += static_cast<double>(mx) * static_cast<double>(b.size()) - static_cast<double>(sum);
    total += static_cast<double>(mx) * static_cast<double>(b.size());
  }
  return padded / total;
}

// N = 10, batch 4, no shuffle: [0..3] [4..7] [8 9]; drop_last drops [8 9].
TEST(BatchSampler, SequentialAndDropLast) {
  ToyDataset ds(10);
  SamplerOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  EXPECT_EQ(BatchSampler(ds, o).epoch_batches(0), (Batches{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}));
  o.drop_last = true;
  EXPECT_EQ(BatchSampler(ds, o).epoch_batches(3), (Batches{{0, 1, 2, 3}, {4, 5, 6, 7}}));
}

TEST(BatchSampler, ShuffleDeterministicPerSeedAndEpoch) {
  ToyDataset ds(200);
  SamplerOptions o;
  o.batch_size = 7;
  o.seed = 42;
  const BatchSampler s(ds, o);
  const Batches e0 = s.epoch_batches(0);
  EXPECT_EQ(e0, BatchSampler(ds, o).epoch_batches(0));  // same seed, same epoch
  EXPECT_NE(e0, s.epoch_batches(1));                    // other epoch
  o.seed = 43;
  EXPECT_NE(e0, BatchSampler(ds, o).epoch_batches(0));  // other seed
  // Each epoch is a permutation of 0..N-1, and not the identity.
  std::vector<int64_t> flat = flatten(e0), sorted = flat;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(200);
  for (int64_t i = 0; i < 200; ++i) iota[static_cast<size_t>(i)] = i;
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(flat, iota);
  EXPECT_EQ(e0.size(), 29u);  // ceil(200 / 7)
}

TEST(BatchSampler, BucketingReducesPadding) {
  const int64_t n = 2000;
  const auto len = random_lengths(n, 7);
  ToyDataset ds(n, len);
  SamplerOptions o;
  o.batch_size = 16;
  o.seed = 3;
  const double random_pad = padding_fraction(BatchSampler(ds, o).epoch_batches(0), len);
  o.bucket_by_length = true;
  const BatchSampler bucketed(ds, o);
  const Batches bb = bucketed.epoch_batches(0);
  const double bucket_pad = padding_fraction(bb, len);
  std::printf("padding fraction: random batches %.3f, bucketed (window 16*50) %.3f\n", random_pad,
              bucket_pad);
  // Uniform lengths 10..1000: random batches of 16 pad ~45%; windows of 800 sorted pad ~2%.
  EXPECT_GT(random_pad, 0.3);
  EXPECT_LT(bucket_pad, 0.05);
  EXPECT_LT(bucket_pad, random_pad / 5);
  // Still a permutation, batch order shuffled (not sorted by length), deterministic.
  auto flat = flatten(bb);
  std::sort(flat.begin(), flat.end());
  EXPECT_EQ(flat.size(), static_cast<size_t>(n));
  EXPECT_EQ(std::adjacent_find(flat.begin(), flat.end()), flat.end());
  EXPECT_EQ(bb, bucketed.epoch_batches(0));
  EXPECT_NE(bb, bucketed.epoch_batches(1));
}

TEST(BatchSampler, MaxTokensBoundsBatchSums) {
  const int64_t n = 500;
  const auto len = random_lengths(n, 11);
  ToyDataset ds(n, len);
  SamplerOptions o;
  o.batch_size = 1000;
  o.max_tokens = 3000;
  o.bucket_by_length = true;
  const Batches bs = BatchSampler(ds, o).epoch_batches(0);
  size_t count = 0;
  for (const auto& b : bs) {
    int64_t sum = 0;
    for (int64_t i : b) sum += len[static_cast<size_t>(i)];
    if (b.size() > 1) {
      EXPECT_LE(sum, 3000);
    }
    count += b.size();
  }
  EXPECT_EQ(count, static_cast<size_t>(n));
  EXPECT_GT(bs.size(), 1u);
}

TEST(BatchSampler, DistributedRanksDisjointAndCover) {
  for (const int64_t n : {100, 103}) {
    ToyDataset ds(n);
    for (const bool bucket : {false, true}) {
      std::multiset<int64_t> all;
      size_t per_rank = 0, nbatches = 0;
      for (int r = 0; r < 4; ++r) {
        SamplerOptions o;
        o.batch_size = 5;
        o.seed = 9;
        o.rank = r;
        o.world_size = 4;
        o.bucket_by_length = bucket;
        o.bucket_size_multiplier = 2;
        const Batches bs = BatchSampler(ds, o).epoch_batches(2);
        const auto flat = flatten(bs);
        if (r == 0) per_rank = flat.size(), nbatches = bs.size();
        EXPECT_EQ(flat.size(), per_rank) << "rank " << r;  // equal shares
        EXPECT_EQ(bs.size(), nbatches) << "rank " << r;    // equal batch counts (DDP needs it)
        all.insert(flat.begin(), flat.end());
      }
      EXPECT_EQ(per_rank, static_cast<size_t>((n + 3) / 4));
      std::set<int64_t> uniq(all.begin(), all.end());
      EXPECT_EQ(uniq.size(), static_cast<size_t>(n));  // union covers the dataset
      // Disjoint except for the (4 - n % 4) % 4 repeated padding examples.
      EXPECT_EQ(all.size() - uniq.size(), static_cast<size_t>((4 - n % 4) % 4));
    }
    // drop_last: strictly disjoint, floor(n / 4) each.
    std::set<int64_t> seen;
    for (int r = 0; r < 4; ++r) {
      SamplerOptions o;
      o.batch_size = 5;
      o.rank = r;
      o.world_size = 4;
      o.drop_last = true;
      const auto flat = flatten(BatchSampler(ds, o).epoch_batches(0));
      EXPECT_EQ(flat.size(), static_cast<size_t>(n / 4 / 5 * 5));
      for (int64_t i : flat) EXPECT_TRUE(seen.insert(i).second) << "index " << i << " on two ranks";
    }
  }
}

TEST(BatchSampler, DistributedMaxTokensEqualBatchCounts) {
  const int64_t n = 301;
  const auto len = random_lengths(n, 5);
  ToyDataset ds(n, len);
  std::set<int64_t> seen;
  size_t nb = 0;
  for (int r = 0; r < 3; ++r) {
    SamplerOptions o;
    o.batch_size = 64;
    o.max_tokens = 2000;
    o.bucket_by_length = true;
    o.rank = r;
    o.world_size = 3;
    o.drop_last = true;
    const Batches bs = BatchSampler(ds, o).epoch_batches(1);
    if (r == 0) nb = bs.size();
    EXPECT_EQ(bs.size(), nb);
    for (int64_t i : flatten(bs)) EXPECT_TRUE(seen.insert(i).second) << "index " << i << " on two ranks";
  }
  EXPECT_GT(seen.size(), static_cast<size_t>(n) * 8 / 10);
}

TEST(BatchSampler, RejectsBadOptions) {
  ToyDataset ds(10);
  SamplerOptions o;
  o.batch_size = 0;
  EXPECT_THROW(BatchSampler(ds, o), ConfigError);
  o.batch_size = 2;
  o.rank = 2;
  o.world_size = 2;
  EXPECT_THROW(BatchSampler(ds, o), ConfigError);
}

}  // namespace
}  // namespace mmref::data
