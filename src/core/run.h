// A run directory and everything written into it:
//   runs/<name>/<YYYYmmdd-HHMMSS>/
//     config.yaml     the effective (fully resolved) config; `mmref train <it>` re-runs it as is
//     metrics.jsonl   one JSON object per logged step: {"step":..,"time":..,"phase":..,"<metric>":..}
//     events.out.tfevents.*  TensorBoard scalars (and images/audio from sample hooks)
//     log.txt         the text log (spdlog), also echoed to stderr
//     summary.json    final metrics, wall time, steps/s, peak memory (written atomically)
//     checkpoints/    see checkpoint.h
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace spdlog {
class logger;
}

namespace mmref {

class TensorBoardWriter;
namespace config {
class Node;
}

class Run {
 public:
  // Makes a new timestamped run folder under <root>/<name>/ and writes config.yaml into it.
  static std::unique_ptr<Run> create(const std::string& root, const std::string& name,
                                     const config::Node& effective_config,
                                     const std::string& log_level = "info");
  // Re-opens an existing run folder (resume): logs and metrics are appended.
  static std::unique_ptr<Run> open(const std::string& dir, const std::string& log_level = "info");
  // A data-parallel worker of rank > 0: writes nothing (rank 0 owns the run folder); its log goes to
  // stderr only, prefixed "[rank N]", at warn level unless log_level is finer than info.
  static std::unique_ptr<Run> worker(int rank, const std::string& log_level = "info");
  ~Run();

  const std::string& dir() const { return dir_; }
  // False for a worker(): metrics, summaries and TensorBoard are then no-ops.
  bool primary() const { return primary_; }
  std::string checkpoint_dir() const { return dir_ + "/checkpoints"; }
  spdlog::logger& log() { return *logger_; }
  // Writes to log.txt only: for the error main() already prints to stderr as one line.
  void log_error_to_file(const std::string& msg);
  TensorBoardWriter& tensorboard();  // throws mmref::Error on a worker

  // One line in metrics.jsonl (flushed) and one TensorBoard scalar per metric, tagged "<phase>/<name>".
  void log_metrics(int64_t step, const std::string& phase,
                   const std::vector<std::pair<std::string, double>>& metrics);
  // summary.json, atomically; adds wall_time_s since the run was created or opened.
  void write_summary(const nlohmann::json& summary);
  double elapsed_seconds() const;

 private:
  Run(std::string dir, const std::string& log_level);
  Run(int rank, const std::string& log_level);
  std::string dir_;
  bool primary_ = true;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<spdlog::logger> file_logger_;
  std::unique_ptr<TensorBoardWriter> tb_;
  std::chrono::steady_clock::time_point start_;
  int metrics_fd_ = -1;
};

// Peak resident set size of this process in bytes (getrusage), for summaries and CPU benchmarks.
int64_t peak_rss_bytes();

}  // namespace mmref
