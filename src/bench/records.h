// The JSONL records `mmref bench CONFIG` writes: schema "mmref.bench.v1", one line per point and
// implementation ("mmref", "python-eager"). Field list: README.md "Benchmark sweeps"; readers:
// report.h (`mmref bench report`).
#pragma once
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/memory.h"
#include "bench/stats.h"
#include "bench/target.h"

namespace mmref::bench {

inline constexpr const char* kBenchSchema = "mmref.bench.v1";

// What one implementation measured at one point.
struct Measurement {
  std::string impl = "mmref";
  std::string status = "ok";  // "ok" | "oom" | "error"
  std::string error;
  Summary latency;  // ms
  int64_t warmup_count = 0;
  double warmup_seconds = 0;
  MemoryPeak memory;
};

// Fills the derived figures from latency p50 and the target's Work: throughput {value = units / p50 s,
// unit}, rtf (p50 s / audio seconds), flops, tflops (flops / p50 s), mfu (tflops / peak, when
// peak_tflops > 0). Fields that do not apply are null. `peer_p50_ms` > 0 adds peer_ratio.
nlohmann::json make_record(const std::string& bench, const std::string& target, const nlohmann::json& point,
                           const nlohmann::json& config, const Measurement& m, const Work& work,
                           const nlohmann::json& env, double peak_tflops, double peer_p50_ms);

// An append-only JSONL file: every line is flushed as it is written, so a crash keeps finished points.
class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path);  // creates parent folders; throws mmref::Error
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace mmref::bench
