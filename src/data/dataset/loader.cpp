// DataLoader: ordered, bounded, multi-threaded batch fetching with exact resume (see loader.h).
#include "data/dataset/loader.h"

#include <algorithm>
#include <chrono>

#include <ATen/Parallel.h>
#include <fmt/format.h>

#include "core/error.h"

namespace mmref::data {
namespace {

std::shared_ptr<const Dataset> non_null(std::shared_ptr<const Dataset> d) {
  MMREF_CHECK(d != nullptr, "DataLoader needs a dataset");
  return d;
}

}  // namespace

nlohmann::json LoaderState::to_json() const { return {{"epoch", epoch}, {"batch_in_epoch", batch_in_epoch}}; }

LoaderState LoaderState::from_json(const nlohmann::json& j) {
  LoaderState s;
  for (const char* key : {"epoch", "batch_in_epoch"}) {
    if (!j.is_object() || !j.contains(key) || !j.at(key).is_number_integer() || j.at(key).get<int64_t>() < 0)
      MMREF_FAIL(
          "loader state: '{}' must be an integer >= 0 in {} (was the checkpoint written by "
          "DataLoader::state().to_json()?)",
          key, j.dump());
  }
  s.epoch = j.at("epoch").get<int64_t>();
  s.batch_in_epoch = j.at("batch_in_epoch").get<int64_t>();
  return s;
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, LoaderState start)
    : dataset_(non_null(std::move(dataset))),
      options_(std::move(options)),
      sampler_(*dataset_, options_.sampler) {
  if (options_.num_workers < 0)
    throw ConfigError(fmt::format("loader: num_workers must be >= 0, got {}", options_.num_workers));
  if (options_.prefetch_batches < 1)
    throw ConfigError(
        fmt::format("loader: prefetch_batches must be >= 1, got {}", options_.prefetch_batches));
  if (start.epoch < 0 || start.batch_in_epoch < 0)
    MMREF_FAIL("loader: cannot resume from epoch {} batch {} (must be >= 0)", start.epoch,
               start.batch_in_epoch);
  start_epoch(start.epoch, start.batch_in_epoch);
}

DataLoader::~DataLoader() { stop_workers(); }

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  // Workers are stopped here (constructor, or after stop_workers()).
  batches_ = sampler_.epoch_batches(epoch);
  const int64_t n = static_cast<int64_t>(batches_.size());
  if (first_batch > n)
    MMREF_FAIL(
        "loader: cannot resume at batch {} of epoch {}: the epoch has only {} batches (the "
        "dataset or the sampler options changed since the checkpoint)",
        first_batch, epoch, n);
  epoch_ = epoch;
  next_claim_ = next_deliver_ = first_batch;
  ready_.clear();
  stop_ = false;
  cancel_ = false;
  for (int i = 0; i < options_.num_workers && first_batch < n; ++i)
    workers_.emplace_back([this] { worker_loop(); });
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    cancel_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  ready_.clear();
}

void DataLoader::worker_loop() {
  at::init_num_threads();
  const int64_t window = std::max(options_.prefetch_batches, options_.num_workers);
  const int64_t n = static_cast<int64_t>(batches_.size());  // fixed while workers run
  for (;;) {
    int64_t b = 0;
    {
      std::unique_lock<std::mutex> lk(mu_);
      work_cv_.wait(lk, [&] { return stop_ || next_claim_ >= n || next_claim_ - next_deliver_ < window; });
      if (stop_ || next_claim_ >= n) return;
      b = next_claim_++;
    }
    Result r = build(epoch_, b, batches_[static_cast<size_t>(b)]);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;
      ready_.emplace(b, std::move(r));
    }
    ready_cv_.notify_all();
  }
}

DataLoader::Result DataLoader::build(int64_t epoch, int64_t batch_no,
                                     const std::vector<int64_t>& indices) const {
  Result r;
  try {
    std::vector<Example> examples;
    std::vector<int64_t> kept;
    examples.reserve(indices.size());
    for (int64_t idx : indices) {
      if (cancel_) return r;  // the loader is shutting down: the result is discarded
      std::string why;
      try {
        examples.push_back(dataset_->get(idx));
        kept.push_back(idx);
        continue;
      } catch (const std::exception& e) {
        why = e.what();
      } catch (...) {
        why = "unknown exception";
      }
      std::string msg =
          fmt::format("dataset example index {} (epoch {}, batch {}): {}", idx, epoch, batch_no, why);
      if (!options_.skip_bad) {
        r.error = std::make_exception_ptr(Error(msg));
        return r;
      }
      r.bad.push_back(std::move(msg));
    }
    if (!examples.empty()) {
      r.batch = collate(std::move(examples), options_.padding_values);
      r.batch.indices = std::move(kept);
    }
  } catch (const std::exception& e) {
    r.error = std::make_exception_ptr(
        Error(fmt::format("loader: batch {} of epoch {}: {}", batch_no, epoch, e.what())));
  }
  return r;
}

std::optional<Batch> DataLoader::next() {
  using Clock = std::chrono::steady_clock;
  for (;;) {
    if (next_deliver_ >= static_cast<int64_t>(batches_.size())) {
      stop_workers();
      start_epoch(epoch_ + 1, 0);  // workers begin prefetching the next epoch now
      return std::nullopt;
    }
    Result r;
    const auto t0 = Clock::now();
    if (workers_.empty()) {
      r = build(epoch_, next_deliver_, batches_[static_cast<size_t>(next_deliver_)]);
      std::lock_guard<std::mutex> lk(mu_);
      ++next_deliver_;
    } else {
      std::unique_lock<std::mutex> lk(mu_);
      ready_cv_.wait(lk, [&] { return ready_.count(next_deliver_) > 0; });
      auto node = ready_.extract(next_deliver_);
      r = std::move(node.mapped());
      ++next_deliver_;
    }
    wait_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
    work_cv_.notify_all();
    bad_count_ += static_cast<int64_t>(r.bad.size());
    for (auto& m : r.bad) bad_messages_.push_back(std::move(m));
    if (r.error) std::rethrow_exception(r.error);
    if (r.batch.ids.empty()) continue;  // every example of this batch was bad (skip_bad)
    return std::move(r.batch);
  }
}

LoaderState DataLoader::state() const {
  std::lock_guard<std::mutex> lk(mu_);
  return {epoch_, next_deliver_};
}

double DataLoader::wait_seconds() const { return wait_seconds_; }
int64_t DataLoader::bad_examples() const { return bad_count_; }
std::vector<std::string> DataLoader::bad_messages() const { return bad_messages_; }
int64_t DataLoader::batches_in_epoch() const { return static_cast<int64_t>(batches_.size()); }

}  // namespace mmref::data
