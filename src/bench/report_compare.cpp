// `mmref bench report --compare KEY=A,B`: B/A latency ratios per point with their spread (report.h says
// what is computed). Works on the unmerged records, because two commits of the same point are one cell in
// the tables but two sides here; within one side the newest record wins.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "bench/report.h"
#include "core/error.h"

namespace mmref::bench {

namespace {

using nlohmann::json;

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The record's value of the compared key, and whether it is A (0), B (1) or neither (-1).
std::string side_value(const BenchRecord& r, const std::string& key) {
  if (key == "impl") return r.impl;
  if (key == "commit") return r.commit;
  if (key == "device") return r.device_label;
  if (r.point.contains(key)) return value_text(r.point.at(key));
  if (r.config.contains(key)) return value_text(r.config.at(key));
  return "";
}

bool matches(const std::string& value, const std::string& want, const std::string& key) {
  if (key == "commit" || key == "device") return !value.empty() && value.rfind(want, 0) == 0;  // prefix
  return value == want;
}

// Delta-method standard error of ln(median): 1.2533 * (std / p50) / sqrt(n); < 0 when not recorded.
double log_median_se(const LatencyStats& s) {
  if (s.n < 2 || s.std <= 0 || s.p50 <= 0) return -1;
  return 1.2533 * (s.std / s.p50) / std::sqrt(static_cast<double>(s.n));
}

// Ratios near 1 matter to the third decimal; far from 1, three significant figures.
std::string fmt_ratio(double r) {
  if (r <= 0) return "";
  return r >= 0.1 && r < 10 ? fmt::format("{:.3f}", r) : format_number(r);
}

std::string side_cell(const std::optional<BenchRecord>& r) {
  if (!r) return "-";
  if (r->status == "oom") return "OOM";
  if (!r->ok()) return "error";
  if (!r->latency.present) return "no latency";
  return format_number(r->latency.p50);
}

}  // namespace

std::vector<CompareRow> compare_records(const std::vector<BenchRecord>& records, const CompareSpec& spec) {
  std::map<std::string, CompareRow> groups;
  std::set<std::string> seen;
  bool any_a = false, any_b = false;
  for (const auto& r : records) {
    const std::string v = side_value(r, spec.key);
    if (!v.empty()) seen.insert(v);
    const int side = matches(v, spec.a, spec.key) ? 0 : matches(v, spec.b, spec.key) ? 1 : -1;
    if (side < 0) continue;
    (side == 0 ? any_a : any_b) = true;
    json point = r.point;
    point.erase(spec.key);
    const std::string impl = spec.key == "impl" ? "" : r.impl;
    const std::string device = spec.key == "device" ? "" : r.device_label;
    const std::string gkey = r.target + '\x1f' + point.dump() + '\x1f' + impl + '\x1f' + device;
    CompareRow& row = groups[gkey];
    row.target = r.target, row.point = point, row.impl = impl, row.device = device;
    std::optional<BenchRecord>& slot = side == 0 ? row.a : row.b;
    if (!slot || slot->time_utc <= r.time_utc) slot = r;
  }
  if (!any_a || !any_b) {
    std::string vals;
    for (const auto& v : seen) vals += (vals.empty() ? "" : ", ") + v;
    throw UsageError(fmt::format("bench report: --compare {}={},{}: no record has {} '{}' (values seen: {})",
                                 spec.key, spec.a, spec.b, spec.key, any_a ? spec.b : spec.a,
                                 vals.empty() ? "none" : vals));
  }
  std::vector<CompareRow> rows;
  for (auto& [k, row] : groups) {
    if (row.a && row.b && row.a->ok() && row.b->ok() && row.a->latency.present && row.b->latency.present) {
      const LatencyStats &A = row.a->latency, &B = row.b->latency;
      row.ratio = B.p50 / A.p50;
      if (A.p90 > 0 && A.min > 0) row.range_lo = B.min / A.p90, row.range_hi = B.p90 / A.min;
      const double sa = log_median_se(A), sb = log_median_se(B);
      if (sa >= 0 && sb >= 0) {
        const double half = 1.96 * std::sqrt(sa * sa + sb * sb);
        row.ci_lo = row.ratio * std::exp(-half), row.ci_hi = row.ratio * std::exp(half);
      }
    }
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(), [](const CompareRow& x, const CompareRow& y) {
    if (x.target != y.target) return x.target < y.target;
    if (x.device != y.device) return x.device < y.device;
    if (x.impl != y.impl) return x.impl < y.impl;
    return point_less(x.point, y.point);
  });
  return rows;
}

std::string markdown_compare(const std::vector<CompareRow>& rows, const CompareSpec& spec) {
  std::string md = fmt::format("## Comparison: {} {} / {}\n\n", spec.key, spec.b, spec.a);
  md += fmt::format(
      "B/A = p50 latency of {0}={2} over {0}={1} at the same target, point, impl and device (> 1: {2} is "
      "slower). range = [B.min / A.p90, B.p90 / A.min], the ratio if each run fell anywhere between its "
      "fastest repeat and its 90th percentile. 95% CI = ratio * exp(+-1.96 sqrt(sA^2 + sB^2)), "
      "sX = 1.2533 std/p50 / sqrt(n) (delta method for ln median; shown when both sides recorded std and "
      "n).\n\n",
      spec.key, spec.a, spec.b);
  md += fmt::format("| target | point | device | impl | {0} p50 ms | {1} p50 ms | B/A | range | 95% CI |\n",
                    spec.a, spec.b);
  md += "|---|---|---|---|---:|---:|---:|---|---|\n";
  // Geometric mean of the ratios per (target, device): the one-number summary.
  std::map<std::tuple<std::string, std::string, std::string>, std::pair<double, int>>
      geo;  // (target, device, impl)
  int64_t only_a = 0, only_b = 0;
  for (const auto& r : rows) {
    if (!r.a || !r.b) {  // counted below the table, not listed
      ++(r.a ? only_a : only_b);
      continue;
    }
    // Name the swept keys only (the fixed settings are in the target's table).
    json shown = json::object();
    for (const auto* side : {&*r.a, &*r.b}) {
      for (auto it = side->swept.begin(); it != side->swept.end(); ++it) {
        if (it.key() != spec.key && r.point.contains(it.key())) shown[it.key()] = r.point.at(it.key());
      }
    }
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.target, point_text(shown),
                      r.device, r.impl, side_cell(r.a), side_cell(r.b), fmt_ratio(r.ratio),
                      r.range_lo > 0 ? fmt_ratio(r.range_lo) + " .. " + fmt_ratio(r.range_hi) : "",
                      r.ci_lo > 0 ? fmt_ratio(r.ci_lo) + " .. " + fmt_ratio(r.ci_hi) : "");
    if (r.ratio > 0) {
      auto& g = geo[{r.target, r.device, r.impl}];
      g.first += std::log(r.ratio), g.second += 1;
    }
  }
  md += "\n";
  if (only_a + only_b > 0) {
    md += fmt::format("Unpaired (not listed): {} point(s) with only {}={}, {} with only {}={}.\n\n", only_a,
                      spec.key, spec.a, only_b, spec.key, spec.b);
  }
  if (geo.empty()) {
    md += "No point has a measured latency on both sides.\n\n";
  } else {
    for (const auto& [k, g] : geo) {
      const auto& [target, device, impl] = k;
      md += fmt::format("- {}{}{}: geometric mean B/A {:.3f} over {} point(s)\n", target,
                        device.empty() ? "" : " on " + device, impl.empty() ? "" : " (" + impl + ")",
                        std::exp(g.first / g.second), g.second);
    }
    md += "\n";
  }
  return md;
}

}  // namespace mmref::bench
