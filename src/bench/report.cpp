// `mmref bench report`: reading and merging mmref.bench.v1 records, and writing report.md with its plots
// (see report.h). Tables: report_tables.cpp; comparisons: report_compare.cpp; plots: report_plots.cpp.
#include "bench/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "bench/plot_png.h"
#include "core/error.h"
#include "core/fs.h"

namespace mmref::bench {

namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

constexpr const char* kSchema = "mmref.bench.v1";

struct Where {
  const std::string& source;
  int64_t line;
};

[[noreturn]] void bad(const Where& w, const std::string& what) {
  MMREF_FAIL("{}:{}: {}", w.source, w.line, what);
}

const json* field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// Optional number: missing or null -> fallback; a number -> its value; anything else -> error.
double number(const json& obj, const char* key, const std::string& path, const Where& w,
              double fallback = -1) {
  const json* v = field(obj, key);
  if (!v) return fallback;
  if (!v->is_number()) bad(w, fmt::format("'{}' must be a number, got {}", path, v->dump()));
  return v->get<double>();
}

std::string string(const json& obj, const char* key, const std::string& path, const Where& w,
                   const std::string& fallback = "") {
  const json* v = field(obj, key);
  if (!v) return fallback;
  if (!v->is_string()) bad(w, fmt::format("'{}' must be a string, got {}", path, v->dump()));
  return v->get<std::string>();
}

const json& object(const json& obj, const char* key, const Where& w) {
  static const json kEmpty = json::object();
  const json* v = field(obj, key);
  if (!v) return kEmpty;
  if (!v->is_object()) bad(w, fmt::format("'{}' must be an object, got {}", key, v->dump()));
  return *v;
}

void replace_all(std::string& s, const std::string& what, const std::string& with) {
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p)) s.replace(p, what.size(), with);
}

std::string shorten_cpu(std::string m) {
  for (const char* junk : {"(R)", "(r)", "(TM)", "(tm)", " CPU", " Processor", " processor"})
    replace_all(m, junk, "");
  if (auto at = m.find('@'); at != std::string::npos) m = m.substr(0, at);       // "@ 2.10GHz"
  if (auto w = m.find(" with "); w != std::string::npos) m = m.substr(0, w);     // "with Radeon Graphics"
  for (auto p = m.find("-Core"); p != std::string::npos; p = m.find("-Core")) {  // "16-Core"
    auto b = m.rfind(' ', p);
    m.erase(b == std::string::npos ? 0 : b, p + 5 - (b == std::string::npos ? 0 : b));
  }
  std::string out;
  for (char c : m) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

double BenchRecord::peak_memory_bytes() const {
  if (peak_allocated_bytes > 0) return peak_allocated_bytes;
  if (peak_rss_bytes > 0) return peak_rss_bytes;
  return -1;
}

std::string device_label(const json& env) {
  const json* dev = field(env, "device");
  const std::string kind = dev && dev->is_string() ? dev->get<std::string>() : "cpu";
  const json* name = field(env, "device_name");
  if (kind != "cpu") {
    if (name && name->is_string() && !name->get<std::string>().empty()) return name->get<std::string>();
    return kind;
  }
  const json* model = field(env, "cpu_model");
  std::string label = model && model->is_string() ? shorten_cpu(model->get<std::string>()) : "";
  if (label.empty()) label = "CPU";
  const json* threads = field(env, "threads");
  if (!threads || !threads->is_number()) threads = field(env, "cpu_cores");
  if (threads && threads->is_number()) label += fmt::format(" x{}", threads->get<int64_t>());
  return label;
}

BenchRecord parse_record(const std::string& text, const std::string& source, int64_t line) {
  const Where w{source, line};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    bad(w, fmt::format("not a JSON line ({}); results files hold one JSON object per line", e.what()));
  }
  if (!j.is_object()) bad(w, "not a JSON object; results files hold one mmref.bench.v1 object per line");
  BenchRecord r;
  r.source = source;
  r.line = line;
  const std::string schema = string(j, "schema", "schema", w, kSchema);
  if (schema != kSchema) bad(w, fmt::format("schema '{}' is not {}", schema, kSchema));
  r.target = string(j, "target", "target", w);
  if (r.target.empty()) bad(w, "record has no 'target'");
  r.bench = string(j, "bench", "bench", w);
  r.impl = string(j, "impl", "impl", w, "mmref");
  r.status = string(j, "status", "status", w, "ok");
  r.error = string(j, "error", "error", w);
  r.swept = object(j, "point", w);
  r.config = object(j, "config", w);
  // The runner's own keys (device, threads, warm-up/repeat budgets, the peer's command line) and nested
  // objects do not name the point.
  for (auto it = r.config.begin(); it != r.config.end(); ++it) {
    const std::string& k = it.key();
    if (k == "device" || k == "threads" || k == "warmup" || k == "repeats" || k.rfind("peer", 0) == 0 ||
        it->is_object()) {
      continue;
    }
    r.point[k] = it.value();
  }
  for (auto it = r.swept.begin(); it != r.swept.end(); ++it) r.point[it.key()] = it.value();
  r.point.erase("threads");  // even when swept: the device label says "x<threads>" (a column per count)
  r.env = object(j, "env", w);

  const json& lat = object(j, "latency_ms", w);
  auto& L = r.latency;
  L.mean = number(lat, "mean", "latency_ms.mean", w, 0);
  L.p50 = number(lat, "p50", "latency_ms.p50", w, L.mean);
  L.p90 = number(lat, "p90", "latency_ms.p90", w, L.p50);
  L.p99 = number(lat, "p99", "latency_ms.p99", w, L.p90);
  L.min = number(lat, "min", "latency_ms.min", w, L.p50);
  L.max = number(lat, "max", "latency_ms.max", w, L.p99);
  L.std = number(lat, "std", "latency_ms.std", w, 0);
  L.n = static_cast<int64_t>(number(lat, "n", "latency_ms.n", w, 0));
  L.present = L.p50 > 0;

  const json& thr = object(j, "throughput", w);
  r.throughput = number(thr, "value", "throughput.value", w);
  r.throughput_unit = string(thr, "unit", "throughput.unit", w);
  r.rtf = number(j, "rtf", "rtf", w);
  const json& mem = object(j, "memory", w);
  r.peak_allocated_bytes = number(mem, "peak_allocated_bytes", "memory.peak_allocated_bytes", w);
  r.peak_reserved_bytes = number(mem, "peak_reserved_bytes", "memory.peak_reserved_bytes", w);
  r.peak_rss_bytes = number(mem, "peak_rss_bytes", "memory.peak_rss_bytes", w);
  r.flops = number(j, "flops", "flops", w);
  r.tflops = number(j, "tflops", "tflops", w);
  r.mfu = number(j, "mfu", "mfu", w);
  r.peer_ratio = number(j, "peer_ratio", "peer_ratio", w);

  r.device_kind = string(r.env, "device", "env.device", w, "cpu");
  r.device_label = device_label(r.env);
  r.commit = string(r.env, "mmref_commit", "env.mmref_commit", w);
  r.time_utc = string(r.env, "time_utc", "env.time_utc", w);
  if (const json* d = field(r.env, "mmref_dirty"); d && d->is_boolean()) r.dirty = d->get<bool>();
  return r;
}

std::vector<BenchRecord> load_records(const std::vector<std::string>& paths, int64_t* files_read) {
  if (paths.empty()) throw UsageError("bench report: give at least one results file or folder");
  std::vector<std::string> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (stdfs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (const auto& e : stdfs::recursive_directory_iterator(p, ec)) {
        if (e.is_regular_file() && e.path().extension() == ".jsonl") found.push_back(e.path().string());
      }
      if (ec) MMREF_FAIL("bench report: cannot list '{}': {}", p, ec.message());
      if (found.empty()) {
        MMREF_FAIL("bench report: no .jsonl results files under '{}' (`mmref bench CONFIG` writes them)", p);
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (stdfs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      MMREF_FAIL("bench report: '{}' does not exist (give results .jsonl files or folders holding them)", p);
    }
  }
  std::vector<BenchRecord> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) MMREF_FAIL("bench report: cannot open '{}'", f);
    std::string text;
    for (int64_t line = 1; std::getline(in, text); ++line) {
      if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
      out.push_back(parse_record(text, f, line));
    }
  }
  if (out.empty()) {
    MMREF_FAIL("bench report: no records in {} file(s) ({}{})", files.size(), files.front(),
               files.size() > 1 ? ", ..." : "");
  }
  if (files_read) *files_read = static_cast<int64_t>(files.size());
  return out;
}

int compare_values(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_number() != b.is_number()) return a.is_number() ? -1 : 1;
  if (a.is_string() && b.is_string()) return a.get<std::string>().compare(b.get<std::string>());
  if (a.is_string() != b.is_string()) return a.is_string() ? -1 : 1;
  return a.dump().compare(b.dump());
}

bool point_less(const json& a, const json& b) {
  std::set<std::string> keys;
  for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
  for (auto it = b.begin(); it != b.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    const bool ha = a.contains(k), hb = b.contains(k);
    if (ha != hb) return !ha;
    if (!ha) continue;
    if (int c = compare_values(a.at(k), b.at(k)); c != 0) return c < 0;
  }
  return false;
}

std::string point_text(const json& point) {
  std::string s;
  for (auto it = point.begin(); it != point.end(); ++it) {
    if (!s.empty()) s += ", ";
    s += it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
  }
  return s;
}

std::string format_number(double v) {
  const double a = std::abs(v);
  if (a >= 1e7) return fmt::format("{:.3g}M", v / 1e6);
  if (a >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (a >= 1e5) return fmt::format("{:.0f}k", v / 1e3);
  if (a >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 1) return fmt::format("{:.2f}", v);
  if (a == 0) return "0";
  if (a >= 1e-4) {  // 3 significant figures: 0.300, 0.0124
    return fmt::format("{:.{}f}", v, 2 - static_cast<int>(std::floor(std::log10(a))));
  }
  return fmt::format("{:.2e}", v);
}

MergedRecords merge_newest(std::vector<BenchRecord> records) {
  // Newest wins: compare env.time_utc (ISO 8601, so text order is time order), then input order.
  std::map<std::string, size_t> best;
  MergedRecords m;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const std::string key = r.target + '\x1f' + r.point.dump() + '\x1f' + r.impl + '\x1f' + r.device_label;
    auto [it, fresh] = best.emplace(key, i);
    if (fresh) continue;
    ++m.superseded;
    if (records[it->second].time_utc <= r.time_utc) it->second = i;
  }
  std::set<std::string> sources;
  for (const auto& [key, i] : best) {
    sources.insert(records[i].source);
    m.records.push_back(std::move(records[i]));
  }
  std::sort(m.records.begin(), m.records.end(), [](const BenchRecord& a, const BenchRecord& b) {
    if (a.target != b.target) return a.target < b.target;
    if (point_less(a.point, b.point)) return true;
    if (point_less(b.point, a.point)) return false;
    if (a.impl != b.impl) return a.impl == "mmref" || (b.impl != "mmref" && a.impl < b.impl);
    return a.device_label < b.device_label;
  });
  return m;
}

CompareSpec parse_compare(const std::string& text) {
  const auto eq = text.find('=');
  const auto comma = text.find(',', eq == std::string::npos ? 0 : eq);
  CompareSpec s;
  if (eq != std::string::npos && comma != std::string::npos) {
    s.key = text.substr(0, eq);
    s.a = text.substr(eq + 1, comma - eq - 1);
    s.b = text.substr(comma + 1);
  }
  if (s.key.empty() || s.a.empty() || s.b.empty() || s.b.find(',') != std::string::npos) {
    throw UsageError(fmt::format(
        "bench report: --compare '{}' must be KEY=A,B (e.g. backend=mmref,torch, impl=mmref,python-eager, "
        "commit=abc123,def456)",
        text));
  }
  if (s.a == s.b)
    throw UsageError(fmt::format("bench report: --compare '{}' compares '{}' with itself", text, s.a));
  return s;
}

namespace {

std::string devices_section(const MergedRecords& merged) {
  struct Info {
    std::set<std::string> commits, hosts, software;
    std::string first, last;
    int64_t n = 0;
  };
  std::map<std::string, Info> devs;
  for (const auto& r : merged.records) {
    Info& d = devs[r.device_label];
    ++d.n;
    if (!r.commit.empty()) d.commits.insert(r.commit.substr(0, 10) + (r.dirty ? " (dirty)" : ""));
    auto s = [&](const char* k) {
      auto it = r.env.find(k);
      return it != r.env.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (!s("hostname").empty()) d.hosts.insert(s("hostname"));
    std::string sw;
    if (!s("torch_version").empty()) sw += "torch " + s("torch_version");
    if (!s("cuda_version").empty()) sw += ", CUDA " + s("cuda_version");
    if (!s("driver_version").empty()) sw += ", driver " + s("driver_version");
    if (!s("cpu_model").empty() && r.device_kind != "cpu") sw += ", host CPU " + s("cpu_model");
    if (!sw.empty()) d.software.insert(sw);
    if (!r.time_utc.empty()) {
      if (d.first.empty() || r.time_utc < d.first) d.first = r.time_utc;
      if (r.time_utc > d.last) d.last = r.time_utc;
    }
  }
  auto join = [](const std::set<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : "; ") + x;
    return s;
  };
  std::string out = "Devices:\n\n";
  for (const auto& [label, d] : devs) {
    out += fmt::format("- **{}**: {} cells", label, d.n);
    if (!d.software.empty()) out += "; " + join(d.software);
    if (!d.commits.empty()) out += "; mmref " + join(d.commits);
    if (!d.hosts.empty()) out += "; host " + join(d.hosts);
    if (!d.first.empty()) out += "; " + (d.first == d.last ? d.first : d.first + " .. " + d.last);
    out += "\n";
  }
  return out + "\n";
}

std::string safe_stem(const std::string& s) {
  std::string out;
  for (char c : s)
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  return out;
}

}  // namespace

ReportResult write_report(const ReportOptions& o) {
  if (o.format != "svg" && o.format != "png" && o.format != "md") {
    throw UsageError(fmt::format("bench report: --format '{}' must be svg, png or md", o.format));
  }
  int64_t files = 0;
  std::vector<BenchRecord> records = load_records(o.inputs, &files);
  std::vector<CompareRow> compared;
  if (o.compare)
    compared = compare_records(records, *o.compare);  // before merging: commits are not a cell key
  const size_t total = records.size();
  MergedRecords merged = merge_newest(std::move(records));
  merged.files = files;
  fs::make_dirs(o.out_dir);

  ReportResult res;
  res.files.push_back(o.out_dir + "/report.md");
  std::vector<std::string> plot_files;
  if (o.format != "md") {
    for (const auto& [stem, spec] : build_plots(merged)) {
      const std::string name = safe_stem(stem) + "." + o.format;
      const std::string path = o.out_dir + "/" + name;
      if (o.format == "svg") {
        fs::atomic_write(path, render_svg(spec));
      } else {
        write_plot_png(spec, path);
      }
      plot_files.push_back(name);
      res.files.push_back(path);
    }
  }
  std::string inputs;
  for (const auto& i : o.inputs) inputs += (inputs.empty() ? "" : " ") + i;
  std::string md = "# mmref benchmark report\n\n";
  md +=
      fmt::format("{} records from {} file(s) in {}; {} cells", total, files, inputs, merged.records.size());
  md += merged.superseded > 0
            ? fmt::format(
                  " ({} older records superseded: the newest env.time_utc of each target, point, impl "
                  "and device wins).\n\n",
                  merged.superseded)
            : " (no duplicates).\n\n";
  md += devices_section(merged);
  md += "## Summary\n\n" + markdown_summary(merged);
  md += markdown_tables(merged, plot_files);
  if (o.compare) md += markdown_compare(compared, *o.compare);
  fs::atomic_write(res.files.front(), md);
  res.markdown = std::move(md);
  return res;
}

}  // namespace mmref::bench
