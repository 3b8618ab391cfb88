// The per-target markdown tables of `mmref bench report` (see report.h): rows = sweep points (and impl
// when a target has several), columns = devices, and a python-eager speed-ratio column per device when
// eager timings exist.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "bench/report.h"

namespace mmref::bench {

namespace {

using nlohmann::json;

std::string md_escape(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// "1.23 ms (812 images/s), 45.6 MiB, MFU 31.0%"; "OOM"; "error".
std::string cell_text(const BenchRecord& r) {
  if (r.status == "oom") return "OOM";
  if (!r.ok()) return "error";
  std::string s = r.latency.present ? format_number(r.latency.p50) + " ms" : "no latency";
  if (r.throughput > 0) s += fmt::format(" ({} {})", format_number(r.throughput), r.throughput_unit);
  if (r.rtf > 0) s += fmt::format(", RTF {}", format_number(r.rtf));
  if (r.peak_memory_bytes() > 0)
    s += ", " + format_number(r.peak_memory_bytes() / (1024.0 * 1024.0)) + " MiB";
  if (r.mfu > 0) s += fmt::format(", MFU {:.1f}%", r.mfu <= 1 ? 100 * r.mfu : r.mfu);  // fraction or percent
  return s;
}

// Device columns: GPUs first (the headline), then CPUs, each by name.
std::vector<std::string> device_order(const std::vector<const BenchRecord*>& recs) {
  std::map<std::string, bool> cpu;
  for (const auto* r : recs) cpu[r->device_label] = r->device_kind == "cpu";
  std::vector<std::string> out;
  for (bool want_cpu : {false, true}) {
    for (const auto& [label, is_cpu] : cpu) {
      if (is_cpu == want_cpu) out.push_back(label);
    }
  }
  return out;
}

json without(const json& point, const std::string& key) {
  json p = point;
  p.erase(key);
  return p;
}

// python-eager p50 / mmref p50 for an ok mmref record: its peer_ratio, else the python-eager record of
// the same device and point (exact, then ignoring "backend"); < 0 when there is none.
double eager_ratio(const BenchRecord& m, const std::vector<const BenchRecord*>& recs) {
  if (m.impl == "python-eager" || !m.ok() || !m.latency.present) return -1;
  if (m.peer_ratio > 0) return m.peer_ratio;
  const BenchRecord* loose = nullptr;
  for (const auto* r : recs) {
    if (r->impl != "python-eager" || r->device_label != m.device_label || !r->ok() || !r->latency.present)
      continue;
    if (r->point == m.point) return r->latency.p50 / m.latency.p50;
    if (!loose && without(r->point, "backend") == without(m.point, "backend")) loose = r;
  }
  return loose ? loose->latency.p50 / m.latency.p50 : -1;
}

}  // namespace

std::string markdown_summary(const MergedRecords& merged) {
  struct Sum {
    int64_t ok = 0, oom = 0, error = 0, ratios = 0;
    double log_sum = 0, lo = 1e300, hi = 0;
  };
  std::map<std::string, std::vector<const BenchRecord*>> by_target;
  for (const auto& r : merged.records) by_target[r.target].push_back(&r);
  std::string md =
      "| target | device | mmref points ok | OOM | error | python-eager / mmref p50: geomean (min .. max, "
      "points) |\n|---|---|---:|---:|---:|---|\n";
  for (const auto& [target, recs] : by_target) {
    std::map<std::string, Sum> by_device;
    for (const auto* r : recs) {
      if (r->impl == "python-eager") continue;
      Sum& s = by_device[r->device_label];
      ++(r->ok() ? s.ok : r->status == "oom" ? s.oom : s.error);
      const double q = eager_ratio(*r, recs);
      if (q > 0) s.log_sum += std::log(q), s.lo = std::min(s.lo, q), s.hi = std::max(s.hi, q), ++s.ratios;
    }
    for (const auto& d : device_order(recs)) {
      auto it = by_device.find(d);
      if (it == by_device.end()) continue;
      const Sum& s = it->second;
      const std::string ratio = s.ratios == 0
                                    ? std::string("-")
                                    : fmt::format("{:.2f}x ({:.2f} .. {:.2f}, {})",
                                                  std::exp(s.log_sum / s.ratios), s.lo, s.hi, s.ratios);
      md +=
          fmt::format("| {} | {} | {} | {} | {} | {} |\n", target, md_escape(d), s.ok, s.oom, s.error, ratio);
    }
  }
  return md + "\n";
}

std::string markdown_tables(const MergedRecords& merged, const std::vector<std::string>& plot_files) {
  std::map<std::string, std::vector<const BenchRecord*>> by_target;
  for (const auto& r : merged.records) by_target[r.target].push_back(&r);
  std::string md;
  md +=
      "Cells: p50 latency (throughput), peak memory in MiB (CUDA: peak allocated by the caching allocator; "
      "CPU: peak RSS of the process), MFU when the target declares its FLOPs. `OOM`: out of memory at that "
      "point; `error`: the point failed (the record's `error` says why); `-`: not run on that device. "
      "`vs eager`: python-eager p50 / mmref p50 on the same device (> 1: mmref is faster).\n\n";
  for (const auto& [target, recs] : by_target) {
    // Point keys: the ones that vary become columns, the constant ones go in a line under the heading.
    std::map<std::string, std::set<std::string>> values;
    for (const auto* r : recs) {
      for (auto it = r->point.begin(); it != r->point.end(); ++it) values[it.key()].insert(it->dump());
    }
    std::vector<std::string> cols;
    std::string fixed;
    for (const auto& [k, vals] : values) {
      bool everywhere = true;
      for (const auto* r : recs) everywhere = everywhere && r->point.contains(k);
      if (vals.size() == 1 && everywhere) {
        fixed += (fixed.empty() ? "" : ", ") + k + "=" + value_text(json::parse(*vals.begin()));
      } else {
        cols.push_back(k);
      }
    }
    std::set<std::string> impls;
    std::set<std::string> benches;
    bool eager = false;
    for (const auto* r : recs) {
      impls.insert(r->impl);
      if (!r->bench.empty()) benches.insert(r->bench);
      eager = eager || r->impl == "python-eager" || r->peer_ratio > 0;
    }
    const bool impl_col = impls.size() > 1;
    const std::vector<std::string> devices = device_order(recs);

    // Rows: distinct (point restricted to the columns, impl), in the records' order (already sorted).
    struct Row {
      json point;
      std::string impl;
      std::map<std::string, const BenchRecord*> cells;  // device -> record
    };
    std::vector<Row> rows;
    std::map<std::string, size_t> row_of;
    for (const auto* r : recs) {
      const std::string key = r->point.dump() + '\x1f' + r->impl;
      auto [it, fresh] = row_of.emplace(key, rows.size());
      if (fresh) rows.push_back({r->point, r->impl, {}});
      rows[it->second].cells[r->device_label] = r;
    }

    md += fmt::format("## {}\n\n", target);
    if (!benches.empty()) {
      std::string b;
      for (const auto& x : benches) b += (b.empty() ? "" : ", ") + x;
      md += "bench: " + b + (fixed.empty() ? "" : "; ");
    }
    if (!fixed.empty()) md += "fixed: " + fixed;
    if (!benches.empty() || !fixed.empty()) md += "\n\n";

    // No varying key: one "point" column naming the (fixed) point, so every row starts with its name.
    const bool point_col = cols.empty();
    std::vector<std::string> head = cols;
    if (point_col) head.push_back("point");
    if (impl_col) head.push_back("impl");
    for (const auto& d : devices) {
      head.push_back(md_escape(d));
      if (eager) head.push_back(devices.size() > 1 ? md_escape(d) + " vs eager" : "vs eager");
    }
    md += "|";
    for (const auto& h : head) md += " " + h + " |";
    md += "\n|";
    const size_t left_cols =
        cols.size() + (point_col ? 1 : 0) + (impl_col ? 1 : 0);  // names left, figures right
    for (size_t i = 0; i < head.size(); ++i) md += i < left_cols ? "---|" : "---:|";
    md += "\n";
    for (const auto& row : rows) {
      md += "|";
      for (const auto& k : cols)
        md += " " + (row.point.contains(k) ? md_escape(value_text(row.point.at(k))) : "") + " |";
      if (point_col)
        md += " " + (row.point.empty() ? std::string("-") : md_escape(point_text(row.point))) + " |";
      if (impl_col) md += " " + row.impl + " |";
      for (const auto& d : devices) {
        auto it = row.cells.find(d);
        md += " " + (it == row.cells.end() ? std::string("-") : md_escape(cell_text(*it->second))) + " |";
        if (!eager) continue;
        std::string ratio;
        if (it != row.cells.end()) {
          if (const double q = eager_ratio(*it->second, recs); q > 0) ratio = fmt::format("{:.2f}x", q);
        }
        md += " " + ratio + " |";
      }
      md += "\n";
    }
    md += "\n";
    for (const auto& f : plot_files) {
      if (f.rfind(target + "-", 0) == 0) md += fmt::format("![{}]({})\n", f, f);
    }
    if (!plot_files.empty()) md += "\n";
  }
  return md;
}

}  // namespace mmref::bench
