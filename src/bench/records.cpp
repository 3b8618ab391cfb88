// JSONL records; see records.h.
#include "bench/records.h"

#include <filesystem>

#include "core/error.h"

namespace mmref::bench {

nlohmann::json make_record(const std::string& bench, const std::string& target, const nlohmann::json& point,
                           const nlohmann::json& config, const Measurement& m, const Work& work,
                           const nlohmann::json& env, double peak_tflops, double peer_p50_ms) {
  const bool ok = m.status == "ok" && m.latency.n > 0;
  const double p50_s = m.latency.p50 / 1e3;
  nlohmann::json r = {{"schema", kBenchSchema},
                      {"bench", bench},
                      {"target", target},
                      {"impl", m.impl},
                      {"point", point},
                      {"config", config},
                      {"status", m.status},
                      {"error", m.status == "ok" ? nlohmann::json(nullptr) : nlohmann::json(m.error)},
                      {"latency_ms", ok ? to_json(m.latency) : nlohmann::json(nullptr)},
                      {"warmup", {{"count", m.warmup_count}, {"seconds", m.warmup_seconds}}},
                      {"throughput", nullptr},
                      {"rtf", nullptr},
                      {"memory", to_json(m.memory)},
                      {"flops", work.flops > 0 ? nlohmann::json(work.flops) : nlohmann::json(nullptr)},
                      {"tflops", nullptr},
                      {"mfu", nullptr},
                      {"peer_ratio", nullptr},
                      {"env", env}};
  if (ok && p50_s > 0) {
    if (work.units > 0 && !work.unit.empty()) {
      r["throughput"] = {{"value", work.units / p50_s}, {"unit", work.unit}};
    }
    if (work.audio_seconds > 0) r["rtf"] = p50_s / work.audio_seconds;
    if (work.flops > 0) {
      const double tflops = work.flops / p50_s / 1e12;
      r["tflops"] = tflops;
      if (peak_tflops > 0) r["mfu"] = tflops / peak_tflops;
    }
    if (peer_p50_ms > 0) r["peer_ratio"] = peer_p50_ms / m.latency.p50;
  }
  return r;
}

JsonlWriter::JsonlWriter(const std::string& path) : path_(path) {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  out_.open(path, std::ios::app);
  if (!out_) MMREF_FAIL("bench: cannot open '{}' for writing (pass --out DIR)", path);
}

void JsonlWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) MMREF_FAIL("bench: writing '{}' failed (disk full?)", path_);
}

}  // namespace mmref::bench
