// Peak memory probes; see memory.h.
#include "bench/memory.h"

#include <fstream>
#include <sstream>

#include "core/compat.h"

namespace mmref::bench {

namespace {

int64_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream ss(line.substr(field.size() + 1));
      int64_t kb = -1;
      ss >> kb;
      return kb < 0 ? -1 : kb * 1024;
    }
  }
  return -1;
}

nlohmann::json or_null(int64_t v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); }

}  // namespace

int64_t peak_rss_bytes() { return status_kb("VmHWM"); }
int64_t current_rss_bytes() { return status_kb("VmRSS"); }

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

nlohmann::json to_json(const MemoryPeak& m) {
  nlohmann::json j = {{"peak_allocated_bytes", or_null(m.allocated_bytes)},
                      {"peak_reserved_bytes", or_null(m.reserved_bytes)},
                      {"peak_rss_bytes", or_null(m.rss_bytes)}};
  if (!m.note.empty()) j["note"] = m.note;
  return j;
}

PeakMemoryProbe::PeakMemoryProbe(const c10::Device& device) : device_(device) {
  if (device_.is_cuda()) compat::cuda_reset_peak_memory(device_.has_index() ? device_.index() : 0);
  rss_reset_ = reset_peak_rss();
}

MemoryPeak PeakMemoryProbe::read() const {
  MemoryPeak m;
  if (device_.is_cuda()) {
    const auto p = compat::cuda_peak_memory(device_.has_index() ? device_.index() : 0);
    m.allocated_bytes = p.allocated_bytes;
    m.reserved_bytes = p.reserved_bytes;
  }
  m.rss_bytes = peak_rss_bytes();
  if (!rss_reset_) m.note = "peak_rss_bytes is the process-wide peak (/proc/self/clear_refs refused)";
  return m;
}

}  // namespace mmref::bench
