// DataLoader*: ordered delivery for any worker count, exact resume across epoch boundaries, error
// propagation, skip_bad counting and clean early shutdown (data/dataset/loader.h).
#include <chrono>

#include <ATen/Functions.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/dataset/loader.h"
#include "loader_test_util.h"

namespace mmref::data {
namespace {

using testing::ToyDataset;

// One next() result: the batch's indices, or {-1} for the end-of-epoch nullopt.
using Step = std::vector<int64_t>;

LoaderOptions opts(int workers, bool shuffle = true) {
  LoaderOptions o;
  o.sampler.batch_size = 4;
  o.sampler.shuffle = shuffle;
  o.sampler.seed = 17;
  o.num_workers = workers;
  o.prefetch_batches = 3;
  return o;
}

Step step(DataLoader& l) {
  auto b = l.next();
  return b ? b->indices : Step{-1};
}

TEST(DataLoader, WorkersGiveIdenticalSequences) {
  auto ds = std::make_shared<ToyDataset>(37);
  const BatchSampler sampler(*ds, opts(0).sampler);
  std::vector<at::Tensor> ref_feats;
  for (int workers = 0; workers <= 4; ++workers) {
    DataLoader loader(ds, opts(workers));
    size_t k = 0;
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      const auto expect = sampler.epoch_batches(epoch);
      EXPECT_EQ(loader.batches_in_epoch(), static_cast<int64_t>(expect.size()));
      for (const auto& idx : expect) {
        auto b = loader.next();
        ASSERT_TRUE(b.has_value()) << "workers " << workers;
        ASSERT_EQ(b->indices, idx) << "workers " << workers;
        // Tensors match the examples: feats are filled with the index, ids "utt<i>".
        for (size_t j = 0; j < idx.size(); ++j) {
          EXPECT_EQ(b->ids[j], "utt" + std::to_string(idx[j]));
          EXPECT_EQ(b->tensors.at("feats")[static_cast<int64_t>(j)][0][0].item<float>(),
                    static_cast<float>(idx[j]));
        }
        if (workers == 0) {
          ref_feats.push_back(b->tensors.at("feats"));
        } else {
          EXPECT_TRUE(at::equal(b->tensors.at("feats"), ref_feats[k]));
        }
        ++k;
      }
      EXPECT_FALSE(loader.next().has_value()) << "end of epoch " << epoch;
      EXPECT_EQ(loader.state(), (LoaderState{epoch + 1, 0}));
    }
  }
}

// Reference: 3 epochs uninterrupted (with the nullopt markers). Then for every cut point k, run k steps,
// save the state through JSON, destroy the loader and continue with a new one: the concatenation must
// equal the reference exactly, including cuts right before and after each epoch boundary.
TEST(DataLoader, ResumeIsExactAcrossEpochBoundaries) {
  auto ds = std::make_shared<ToyDataset>(22);  // 6 batches of 4 (last has 2) per epoch
  for (const int workers : {0, 2}) {
    std::vector<Step> ref;
    {
      DataLoader l(ds, opts(workers));
      for (int i = 0; i < 3 * 7; ++i) ref.push_back(step(l));
    }
    ASSERT_EQ(ref[6], Step{-1});
    ASSERT_EQ(ref[13], Step{-1});
    ASSERT_NE(ref[0], ref[7]);  // epochs differ
    for (size_t k = 0; k <= ref.size(); ++k) {
      std::vector<Step> got;
      nlohmann::json saved;
      {
        DataLoader a(ds, opts(workers));
        for (size_t i = 0; i < k; ++i) got.push_back(step(a));
        saved = nlohmann::json::parse(a.state().to_json().dump());
      }
      DataLoader b(ds, opts(workers), LoaderState::from_json(saved));
      while (got.size() < ref.size()) got.push_back(step(b));
      ASSERT_EQ(got, ref) << "cut after " << k << " steps, workers " << workers << ", state " << saved;
    }
  }
}

TEST(DataLoader, StateJson) {
  const LoaderState s{3, 5};
  EXPECT_EQ(s.to_json(), nlohmann::json::parse(R"({"epoch":3,"batch_in_epoch":5})"));
  EXPECT_EQ(LoaderState::from_json(s.to_json()), s);
  EXPECT_THROW(LoaderState::from_json(nlohmann::json::parse(R"({"epoch":3})")), Error);
  EXPECT_THROW(LoaderState::from_json(nlohmann::json::parse(R"({"epoch":-1,"batch_in_epoch":0})")), Error);
  auto ds = std::make_shared<ToyDataset>(8);
  EXPECT_THROW(DataLoader(ds, opts(1), LoaderState{0, 3}), Error);  // only 2 batches in an epoch
}

TEST(DataLoader, ErrorNamesTheExample) {
  auto ds = std::make_shared<ToyDataset>(20, std::vector<int64_t>{}, std::set<int64_t>{7});
  for (const int workers : {0, 3}) {
    DataLoader loader(ds, opts(workers, /*shuffle=*/false));
    EXPECT_TRUE(loader.next().has_value());  // batch 0: 0..3
    try {
      loader.next();  // batch 1: 4..7
      FAIL() << "expected mmref::Error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("index 7"), std::string::npos) << msg;
      EXPECT_NE(msg.find("utt7"), std::string::npos) << msg;
    }
    // The failed batch counts as consumed: the loader goes on with batch 2.
    EXPECT_EQ(loader.state(), (LoaderState{0, 2}));
    auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->indices, (std::vector<int64_t>{8, 9, 10, 11}));
  }
}

TEST(DataLoader, SkipBadCountsAndDrops) {
  // 4, 5, 6, 7 are all bad: batch 1 vanishes entirely; 13 is dropped from batch 3.
  auto ds = std::make_shared<ToyDataset>(18, std::vector<int64_t>{}, std::set<int64_t>{4, 5, 6, 7, 13});
  for (const int workers : {0, 2}) {
    LoaderOptions o = opts(workers, /*shuffle=*/false);
    o.skip_bad = true;
    DataLoader loader(ds, o);
    std::vector<std::vector<int64_t>> got;
    while (auto b = loader.next()) {
      got.push_back(b->indices);
      EXPECT_EQ(b->tensors.at("feats").size(0), static_cast<int64_t>(b->indices.size()));
    }
    EXPECT_EQ(got, (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {8, 9, 10, 11}, {12, 14, 15}, {16, 17}}));
    EXPECT_EQ(loader.bad_examples(), 5);
    const auto msgs = loader.bad_messages();
    ASSERT_EQ(msgs.size(), 5u);
    EXPECT_NE(msgs[4].find("utt13"), std::string::npos) << msgs[4];
  }
}

TEST(DataLoader, EarlyDestructionDoesNotHang) {
  // 1000 examples of 5 ms each: a full epoch would take > 1 s with 4 workers on 2 cores.
  auto ds = std::make_shared<ToyDataset>(1000, std::vector<int64_t>{}, std::set<int64_t>{},
                                         std::chrono::microseconds(5000));
  LoaderOptions o = opts(4);
  o.prefetch_batches = 8;
  const auto t0 = std::chrono::steady_clock::now();
  {
    DataLoader loader(ds, o);
    ASSERT_TRUE(loader.next().has_value());
    ASSERT_TRUE(loader.next().has_value());
  }
  {
    DataLoader untouched(ds, o);  // destroyed before any next()
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 1.0) << "destruction should wait only for the get() calls in flight";
}

TEST(DataLoader, WaitSecondsAccumulates) {
  auto ds = std::make_shared<ToyDataset>(8, std::vector<int64_t>{}, std::set<int64_t>{},
                                         std::chrono::microseconds(2000));
  DataLoader loader(ds, opts(0));
  while (loader.next()) {
  }
  // 8 examples x 2 ms fetched synchronously: the consumer waited for all of it.
  EXPECT_GE(loader.wait_seconds(), 0.015);
}

}  // namespace
}  // namespace mmref::data
