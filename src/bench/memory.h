// Peak memory of one sweep point (what the JSONL records' "memory" holds).
//   CUDA: the caching allocator's peak allocated and reserved bytes, reset when the probe starts
//         (torch.cuda.reset_peak_memory_stats / max_memory_allocated / max_memory_reserved);
//   CPU and CUDA: peak RSS (VmHWM of /proc/self/status). The probe resets VmHWM to the current RSS by
//         writing "5" to /proc/self/clear_refs (Linux >= 4.0); where that is refused the figure is the
//         process-wide peak since start and `note` says so.
#pragma once
#include <cstdint>
#include <string>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

namespace mmref::bench {

struct MemoryPeak {
  int64_t allocated_bytes = -1;  // -1: not measured (CPU)
  int64_t reserved_bytes = -1;
  int64_t rss_bytes = -1;
  std::string note;  // "" or why a figure is not per point
};

// {"peak_allocated_bytes", "peak_reserved_bytes", "peak_rss_bytes"[, "note"]}; -1 -> null.
nlohmann::json to_json(const MemoryPeak& m);

// Resets the peaks on construction; read() returns the peaks since then.
class PeakMemoryProbe {
 public:
  explicit PeakMemoryProbe(const c10::Device& device);
  MemoryPeak read() const;

 private:
  c10::Device device_;
  bool rss_reset_ = false;
};

// VmHWM / VmRSS of this process in bytes (-1 when /proc is unreadable).
int64_t peak_rss_bytes();
int64_t current_rss_bytes();
// Writes "5" to /proc/self/clear_refs; false when refused.
bool reset_peak_rss();

}  // namespace mmref::bench
