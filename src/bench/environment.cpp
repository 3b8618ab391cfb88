// Run environment, repository root, GPU peak table; see environment.h.
#include "bench/environment.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "core/compat.h"
#include "kernels/common/cuda_device.h"
#include "mmref/build_info.h"

namespace mmref::bench {

namespace stdfs = std::filesystem;

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// stdout of a shell command, "" when it fails.
std::string capture(const std::string& cmd, int* rc_out = nullptr) {
  std::string out;
  int rc = -1;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    std::array<char, 512> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    rc = ::pclose(p);
  }
  if (rc_out) *rc_out = rc;
  return rc == 0 ? trim(out) : "";
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return trim(line.substr(colon + 1));
    }
  }
  return "unknown";
}

// "570.86.15" from /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  570.86.15 ...").
std::string nvidia_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto at = line.find("Kernel Module");
  if (at == std::string::npos) return "";
  std::string rest = trim(line.substr(at + 13));
  return rest.substr(0, rest.find(' '));
}

int64_t mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kb = -1;
  in >> key >> kb;  // "MemTotal:   131072000 kB"
  return key == "MemTotal:" && kb > 0 ? kb * 1024 : -1;
}

std::string cuda_version_string(int v) { return v > 0 ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : ""; }

std::string format_utc(const char* fmt_str) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), fmt_str, &tm);
  return buf.data();
}

nlohmann::json str_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

}  // namespace

HostInfo collect_host_info(const std::string& root) {
  HostInfo h;
  const std::string git = fmt::format("git -C '{}' ", root);
  h.mmref_commit = capture(git + "rev-parse --short=12 HEAD 2>/dev/null");
  if (h.mmref_commit.empty()) h.mmref_commit = MMREF_GIT_COMMIT;  // no git here: the commit cmake saw
  int rc = 0;
  const std::string status = capture(git + "status --porcelain --untracked-files=no 2>/dev/null", &rc);
  h.mmref_dirty = rc == 0 && !status.empty();
  h.cpu_model = cpu_model_name();
  h.cpu_cores = static_cast<int>(std::thread::hardware_concurrency());
  std::array<char, 256> host{};
  h.hostname = ::gethostname(host.data(), host.size() - 1) == 0 ? host.data() : "unknown";
  return h;
}

nlohmann::json environment_json(const HostInfo& host, const c10::Device& device, int threads) {
  nlohmann::json env = {{"device", device.is_cuda() ? "cuda" : "cpu"},
                        {"device_name", host.cpu_model},
                        {"device_memory_bytes", nullptr},
                        {"driver_version", nullptr},
                        {"cuda_version", nullptr},
                        {"cudnn_version", nullptr},
                        {"torch_version", compat::torch_version()},
                        {"mmref_commit", host.mmref_commit},
                        {"mmref_dirty", host.mmref_dirty},
                        {"cpu_model", host.cpu_model},
                        {"cpu_cores", host.cpu_cores},
                        {"threads", threads},
                        {"hostname", host.hostname},
                        {"time_utc", utc_now_iso()}};
  if (device.is_cpu()) {
    if (const int64_t total = mem_total_bytes(); total > 0) env["device_memory_bytes"] = total;
    return env;
  }
  const auto rt = kernels::query_cuda_runtime();
  const int index = device.has_index() ? device.index() : 0;
  for (const auto& d : rt.devices) {
    if (d.index != index) continue;
    env["device_name"] = d.name;
    env["device_memory_bytes"] = static_cast<int64_t>(d.total_memory_bytes);
  }
  std::string driver = nvidia_driver_version();
  if (driver.empty()) driver = cuda_version_string(rt.driver_version);
  env["driver_version"] = str_or_null(driver);
  const int64_t torch_cuda = compat::torch_cuda_runtime_version();
  env["cuda_version"] = str_or_null(cuda_version_string(static_cast<int>(torch_cuda > 0 ? torch_cuda : rt.runtime_version)));
  if (const int64_t cudnn = compat::cudnn_version(); cudnn > 0) env["cudnn_version"] = cudnn;
  return env;
}

std::string utc_now_iso() { return format_utc("%Y-%m-%dT%H:%M:%SZ"); }
std::string utc_now_compact() { return format_utc("%Y%m%dT%H%M%SZ"); }

std::string repo_root() {
  std::error_code ec;
  if (stdfs::is_directory(stdfs::path(MMREF_SOURCE_DIR) / "benchmarks", ec)) return MMREF_SOURCE_DIR;
  stdfs::path p = stdfs::read_symlink("/proc/self/exe", ec);
  for (p = p.parent_path(); !ec && !p.empty() && p != p.root_path(); p = p.parent_path()) {
    if (stdfs::is_directory(p / "configs" / "bench", ec)) return p.string();
  }
  return ".";
}

double peak_dense_tflops(const std::string& name, const std::string& dtype) {
  const bool half = dtype == "bfloat16" || dtype == "bf16" || dtype == "float16" || dtype == "fp16";
  const bool fp32 = dtype == "float32" || dtype == "fp32";
  if (!half && !fp32) return 0;
  struct Row {
    const char* match;
    double half_tflops, fp32_tflops;
  };
  // Order matters: the PCIe H100 before the generic H100 (SXM).
  static const Row kRows[] = {{"H200", 989.4, 66.9}, {"H100 PCIe", 756.5, 51.2}, {"H100", 989.4, 66.9},
                              {"A100", 312.0, 19.5}};
  for (const auto& r : kRows) {
    if (name.find(r.match) != std::string::npos) return half ? r.half_tflops : r.fp32_tflops;
  }
  return 0;
}

}  // namespace mmref::bench
