// Run directories, metrics, logs and summaries; see run.h.
#include "core/run.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/tensorboard.h"

namespace mmref {

namespace {

std::string timestamp_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

}  // namespace

Run::Run(std::string dir, const std::string& log_level)
    : dir_(std::move(dir)), start_(std::chrono::steady_clock::now()) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(dir_ + "/log.txt", /*truncate=*/false);
  logger_ = std::make_shared<spdlog::logger>("mmref", spdlog::sinks_init_list{console, file});
  logger_->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  logger_->set_level(spdlog::level::from_str(log_level));
  logger_->flush_on(spdlog::level::info);
  file_logger_ = std::make_shared<spdlog::logger>("mmref-file", file);
  file_logger_->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  file_logger_->flush_on(spdlog::level::err);
  tb_ = std::make_unique<TensorBoardWriter>(dir_);
  metrics_fd_ = ::open((dir_ + "/metrics.jsonl").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (metrics_fd_ < 0) {
    MMREF_FAIL("cannot open '{}/metrics.jsonl': {}", dir_, std::strerror(errno));
  }
}

Run::Run(int rank, const std::string& log_level) : primary_(false), start_(std::chrono::steady_clock::now()) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  logger_ = std::make_shared<spdlog::logger>(fmt::format("mmref-rank{}", rank), console);
  logger_->set_pattern(fmt::format("[%Y-%m-%d %H:%M:%S.%e] [rank {}] [%^%l%$] %v", rank));
  auto level = spdlog::level::from_str(log_level);
  logger_->set_level(level < spdlog::level::info ? level : spdlog::level::warn);
  file_logger_ = logger_;
}

std::unique_ptr<Run> Run::worker(int rank, const std::string& log_level) {
  return std::unique_ptr<Run>(new Run(rank, log_level));
}

TensorBoardWriter& Run::tensorboard() {
  if (!tb_) MMREF_FAIL("internal: TensorBoard used on a data-parallel worker (only rank 0 writes the run)");
  return *tb_;
}

Run::~Run() {
  if (metrics_fd_ >= 0) ::close(metrics_fd_);
  if (logger_) logger_->flush();
}

std::unique_ptr<Run> Run::create(const std::string& root, const std::string& name,
                                 const config::Node& effective_config, const std::string& log_level) {
  const std::string base = root + "/" + name + "/" + timestamp_now();
  std::string dir = base;
  for (int i = 1; fs::exists(dir); ++i) dir = fmt::format("{}-{}", base, i);
  fs::make_dirs(dir);
  fs::make_dirs(dir + "/checkpoints");
  fs::atomic_write(dir + "/config.yaml", config::to_yaml(effective_config));
  return std::unique_ptr<Run>(new Run(dir, log_level));
}

std::unique_ptr<Run> Run::open(const std::string& dir, const std::string& log_level) {
  if (!fs::exists(dir + "/config.yaml")) {
    MMREF_FAIL("'{}' is not an mmref run folder (no config.yaml in it)", dir);
  }
  fs::make_dirs(dir + "/checkpoints");
  return std::unique_ptr<Run>(new Run(dir, log_level));
}

void Run::log_metrics(int64_t step, const std::string& phase,
                      const std::vector<std::pair<std::string, double>>& metrics) {
  if (!primary_) return;
  nlohmann::json j;
  j["step"] = step;
  j["time"] = elapsed_seconds();
  j["phase"] = phase;
  for (const auto& [k, v] : metrics) {
    if (std::isfinite(v)) {
      j[k] = v;
    } else {
      j[k] = std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");  // JSON has no NaN
    }
    tb_->add_scalar(phase + "/" + k, v, step);
  }
  const std::string line = j.dump() + "\n";
  if (::write(metrics_fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    MMREF_FAIL("cannot append to '{}/metrics.jsonl': {}", dir_, std::strerror(errno));
  }
}

void Run::write_summary(const nlohmann::json& summary) {
  if (!primary_) return;
  nlohmann::json j = summary;
  j["wall_time_s"] = elapsed_seconds();
  j["peak_rss_bytes"] = peak_rss_bytes();
  fs::atomic_write(dir_ + "/summary.json", j.dump(2) + "\n");
  tb_->flush();
}

void Run::log_error_to_file(const std::string& msg) {
  if (primary_) file_logger_->error("{}", msg);
}

double Run::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace mmref
