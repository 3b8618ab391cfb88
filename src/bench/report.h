// `mmref bench report`: merges the JSONL records that `mmref bench CONFIG` wrote on several machines into
// markdown tables (one per target: rows = sweep points, columns = devices), line plots (latency and
// throughput against batch, peak memory against the sequence/length key, one series per device) and, with
// a comparison spec, B/A latency ratios between two backends, impls, commits or devices.
//
// Input: mmref.bench.v1 records, one JSON object per line (src/bench/runner.h writes them). Fields read:
// target, impl, point, config, status, error, latency_ms{mean,p50,p90,p99,min,max,std,n},
// throughput{value,unit}, rtf, memory{peak_allocated_bytes,peak_reserved_bytes,peak_rss_bytes}, flops,
// tflops, mfu, peer_ratio, env{device,device_name,cpu_model,threads,mmref_commit,time_utc,...}. Only
// target is required; a missing or null optional field is simply absent from the report.
//
// Merging: records with the same (target, point, impl, device label) are one cell; the newest
// env.time_utc wins (ties: the later file, then the later line) and the report counts the superseded.
// Results layout and the latest table: benchmarks/results/README.md.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/svg_plot.h"

namespace mmref::bench {

struct LatencyStats {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, min = 0, max = 0, std = 0;
  int64_t n = 0;
  bool present = false;  // latency_ms was there with at least p50 (or mean, used as p50)
};

// One line of a results file.
struct BenchRecord {
  std::string source;  // file it came from
  int64_t line = 0;    // 1-based line in that file
  std::string bench, target, impl = "mmref", status = "ok", error;
  // What identifies the measured point: the record's config without the runner's own keys (device,
  // threads, warmup, repeats, peer*, nested objects) with its swept "point" on top. Two benches that sweep
  // the same keys under different fixed settings (heads 4 vs 8) are different points; the same settings
  // measured by differently named benches on two machines are one row. Tables and plots show the keys that
  // vary.
  nlohmann::json point = nlohmann::json::object();
  nlohmann::json swept = nlohmann::json::object();  // the record's "point" as written
  nlohmann::json config = nlohmann::json::object();
  nlohmann::json env = nlohmann::json::object();
  LatencyStats latency;
  double throughput = -1;  // < 0: none
  std::string throughput_unit;
  double rtf = -1, flops = -1, tflops = -1, mfu = -1, peer_ratio = -1;  // < 0: none
  double peak_allocated_bytes = -1, peak_reserved_bytes = -1, peak_rss_bytes = -1;
  std::string device_kind;   // env.device: "cpu", "cuda" (default "cpu")
  std::string device_label;  // the column name, device_label(env)
  std::string commit, time_utc;
  bool dirty = false;

  // Peak memory shown in tables and plots: the allocator's peak (CUDA) when recorded, else peak RSS.
  double peak_memory_bytes() const;
  bool ok() const { return status == "ok"; }
};

// Column name of a device: CUDA -> env.device_name ("NVIDIA H200"); CPU -> the model without
// trademarks, "CPU", "Processor" and clock ("Intel Xeon Platinum 8488C") plus " x<threads>".
std::string device_label(const nlohmann::json& env);

// Parses one line. Throws mmref::Error "FILE:LINE: ..." for text that is not a JSON object, another
// schema, a missing target, or a field of the wrong type.
BenchRecord parse_record(const std::string& text, const std::string& source, int64_t line);
// Reads every record of the given files and folders (folders: every *.jsonl below them, sorted by path).
// Blank lines are skipped. Throws mmref::Error for a missing path, a folder without .jsonl files, or
// inputs that hold no record at all.
std::vector<BenchRecord> load_records(const std::vector<std::string>& paths, int64_t* files_read = nullptr);

struct MergedRecords {
  std::vector<BenchRecord> records;  // one per (target, point, impl, device), sorted by target then point
  int64_t superseded = 0;            // older duplicates dropped
  int64_t files = 0;
};
MergedRecords merge_newest(std::vector<BenchRecord> records);

// --compare KEY=A,B. KEY: "impl", "commit" (env.mmref_commit, A and B are prefixes), "device" (label)
// or a point/config key such as "backend" or "dtype".
struct CompareSpec {
  std::string key, a, b;
};
CompareSpec parse_compare(const std::string& text);  // throws UsageError for anything but KEY=A,B

// One compared point. Ratios are B/A of p50 latency (> 1: B is slower). Spread:
//   range  = [B.min / A.p90, B.p90 / A.min]: the ratio if each side's run fell anywhere between its
//            fastest repeat and its 90th percentile (a robust "how much do the repeats overlap" band);
//   ci95   = exp(ln(ratio) +- 1.96 * sqrt(sA^2 + sB^2)) with sX = 1.2533 * std/p50 / sqrt(n), the
//            delta-method standard error of ln(median) under roughly normal timings. Only when both
//            sides recorded std and n > 1.
struct CompareRow {
  std::string target, device, impl;
  nlohmann::json point;  // without the compared key
  std::optional<BenchRecord> a, b;
  double ratio = -1, range_lo = -1, range_hi = -1, ci_lo = -1, ci_hi = -1;  // < 0: not computable
};
std::vector<CompareRow> compare_records(const std::vector<BenchRecord>& records, const CompareSpec& spec);

// Order of point values and points: numbers numerically, then strings, then the rest by JSON text; a
// point with a missing key sorts first. point_text: "batch=4, seq=256" (keys in JSON order).
int compare_values(const nlohmann::json& a, const nlohmann::json& b);
bool point_less(const nlohmann::json& a, const nlohmann::json& b);
std::string point_text(const nlohmann::json& point);
// Numbers for tables: 3 significant figures, k/M suffixes from 10^4 ("0.412", "12.3", "812", "12.3k").
std::string format_number(double v);

// Markdown pieces (report.md is the header, one table per target and the comparison).
std::string markdown_tables(const MergedRecords& merged, const std::vector<std::string>& plot_files = {});
// One row per (target, device): mmref points ok / OOM / error and the geometric mean (min .. max) of
// python-eager p50 / mmref p50 over the points where both ran (> 1: mmref is faster).
std::string markdown_summary(const MergedRecords& merged);
std::string markdown_compare(const std::vector<CompareRow>& rows, const CompareSpec& spec);

// The plots of one merged record set: (file stem, spec) per target and metric, e.g.
// ("kernel.attention-latency", ...). Series = device x impl x the other varying point keys, at most 10;
// keys that would make more are held at their first value and named in the subtitle.
std::vector<std::pair<std::string, PlotSpec>> build_plots(const MergedRecords& merged);

struct ReportOptions {
  std::vector<std::string> inputs;
  std::string out_dir = "bench_report";
  std::string format = "svg";  // svg | png | md (no plots)
  std::optional<CompareSpec> compare;
};
struct ReportResult {
  std::string markdown;            // what report.md holds
  std::vector<std::string> files;  // every file written, report.md first
};
// Loads, merges, writes <out_dir>/report.md and the plots. Throws mmref::Error / UsageError.
ReportResult write_report(const ReportOptions& options);

}  // namespace mmref::bench
