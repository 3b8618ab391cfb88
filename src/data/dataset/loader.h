// DataLoader: worker threads that fetch and collate the sampler's batches, delivered in order.
//
//   auto loader = DataLoader(dataset, {.sampler = {.batch_size = 16, .seed = 1}, .num_workers = 2});
//   while (auto batch = loader.next()) train_step(*batch);      // one epoch; the next call starts the next
//   ckpt.meta["loader"] = loader.state().to_json();             // resume: DataLoader(ds, opts, state)
//
// Workers: num_workers std::threads claim batch numbers in order and build them (Dataset::get for each
// index, then collate); results are delivered strictly in batch order whichever worker finishes first.
// At most max(prefetch_batches, num_workers) batches are in flight or waiting. num_workers = 0 fetches
// synchronously inside next(). Workers start at construction and, after next() reports the end of an
// epoch, prefetch the next one right away. The destructor stops and joins them, also mid-epoch: it waits
// at most for the Dataset::get calls already running.
//
// Errors: an exception from Dataset::get becomes an mmref::Error from next() naming the example index
// (the dataset's message should name its id/file); the failed batch counts as consumed. With skip_bad
// the example is dropped from its batch instead, counted in bad_examples() and its message kept; a batch
// whose examples all fail is skipped. Counts are updated when a batch is delivered, so they are the same
// for any num_workers.
//
// Resume: state() is the position after the last batch returned ({epoch+1, 0} after the end-of-epoch
// nullopt). A loader constructed with it yields exactly the remaining batches of that epoch, then the
// following epochs identical to an uninterrupted run (the sampler is a pure function of the epoch).
//
// Workers call at::init_num_threads() and use plain ops (no InferenceMode: inference tensors could not
// be saved for backward by the training step). at::set_num_threads is process-global in libtorch 1.13,
// so workers never call it.
//
// Ref: torch.utils.data.DataLoader (in-order delivery, prefetch_factor, worker error re-raise).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset/collate.h"
#include "data/dataset/sampler.h"

namespace mmref::data {

struct LoaderOptions {
  SamplerOptions sampler;
  int num_workers = 2;
  int prefetch_batches = 4;
  bool skip_bad = false;
  std::map<std::string, double> padding_values;  // per tensor key, default 0 (see collate)
};

struct LoaderState {
  int64_t epoch = 0;
  int64_t batch_in_epoch = 0;
  nlohmann::json to_json() const;  // {"epoch": E, "batch_in_epoch": B}
  // Throws mmref::Error when keys are missing, not integers or negative.
  static LoaderState from_json(const nlohmann::json& j);
  bool operator==(const LoaderState& o) const {
    return epoch == o.epoch && batch_in_epoch == o.batch_in_epoch;
  }
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, LoaderState start = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch, or nullopt at the end of an epoch (the next call begins the next epoch).
  std::optional<Batch> next();
  LoaderState state() const;
  double wait_seconds() const;  // total time next() blocked waiting for data
  int64_t bad_examples() const;
  std::vector<std::string> bad_messages() const;
  // Batches in the current epoch (for progress bars).
  int64_t batches_in_epoch() const;

 private:
  struct Result {
    Batch batch;
    std::vector<std::string> bad;  // skipped examples' messages (skip_bad)
    std::exception_ptr error;
  };
  void start_epoch(int64_t epoch, int64_t first_batch);
  void stop_workers();
  void worker_loop();
  Result build(int64_t epoch, int64_t batch_no, const std::vector<int64_t>& indices) const;

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  BatchSampler sampler_;

  // Epoch being delivered; protected by mu_ while workers run.
  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  int64_t epoch_ = 0;
  std::vector<std::vector<int64_t>> batches_;
  int64_t next_claim_ = 0, next_deliver_ = 0;
  std::map<int64_t, Result> ready_;
  bool stop_ = false;
  std::atomic<bool> cancel_{false};  // stop_ readable without the lock, checked between get() calls
  std::vector<std::thread> workers_;

  double wait_seconds_ = 0;
  int64_t bad_count_ = 0;
  std::vector<std::string> bad_messages_;
};

}  // namespace mmref::data
