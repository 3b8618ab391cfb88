// The plots of `mmref bench report` (see report.h): per target, p50 latency and throughput against the
// batch key (else the first numeric swept key) and peak memory against the sequence/length key (else the
// same x), one series per device x impl x other varying keys, at most kMaxSeries per plot.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "bench/report.h"

namespace mmref::bench {

namespace {

using nlohmann::json;

constexpr size_t kMaxSeries = 10;
// Keys that mean "how long is the input", in the order we prefer them for the memory plot.
const char* const kLengthKeys[] = {
    "seq",     "seq_len",  "sequence_length", "length",     "tokens", "frames", "num_frames", "audio_seconds",
    "seconds", "duration", "resolution",      "image_size", "size",   "height", "steps"};

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Point keys whose values vary across recs, with whether every value is a number.
std::map<std::string, bool> varying_keys(const std::vector<const BenchRecord*>& recs) {
  std::map<std::string, std::set<std::string>> values;
  std::map<std::string, bool> numeric;
  for (const auto* r : recs) {
    for (auto it = r->point.begin(); it != r->point.end(); ++it) {
      values[it.key()].insert(it->dump());
      auto [n, fresh] = numeric.emplace(it.key(), true);
      n->second = n->second && it->is_number();
    }
  }
  std::map<std::string, bool> out;
  for (const auto& [k, v] : values) {
    // Missing counts as a value: explicit points often add keys ({causal: true}) the product lacks.
    bool everywhere = true;
    for (const auto* r : recs) everywhere = everywhere && r->point.contains(k);
    if (v.size() > 1 || !everywhere) out[k] = numeric[k];
  }
  return out;
}

enum class Metric { kLatency, kThroughput, kMemory };

double metric_value(const BenchRecord& r, Metric m) {
  switch (m) {
    case Metric::kLatency:
      return r.latency.present ? r.latency.p50 : -1;
    case Metric::kThroughput:
      return r.throughput;
    case Metric::kMemory:
      return r.peak_memory_bytes() > 0 ? r.peak_memory_bytes() / (1024.0 * 1024.0) : -1;
  }
  return -1;
}

std::pair<std::string, PlotSpec> make_plot(const std::string& target, std::vector<const BenchRecord*> recs,
                                           const std::string& xkey, Metric metric) {
  std::vector<const BenchRecord*> with;
  for (const auto* r : recs) {
    if (r->point.contains(xkey) && r->point.at(xkey).is_number() && metric_value(*r, metric) > 0)
      with.push_back(r);
  }
  recs = with;
  // Series identity: device, impl (when several), then the other varying keys while the count stays
  // legible; a key that would push it past kMaxSeries is held at its first value (named in the subtitle).
  std::set<std::string> devices, impls;
  for (const auto* r : recs) devices.insert(r->device_label), impls.insert(r->impl);
  std::vector<std::string> id_keys;
  std::string fixed;
  auto identity = [&](const BenchRecord& r, const std::vector<std::string>& keys) {
    std::string s = r.device_label;
    if (impls.size() > 1) s += ", " + r.impl;
    for (const auto& k : keys) {
      if (r.point.contains(k)) s += ", " + k + "=" + value_text(r.point.at(k));  // absent: not named
    }
    return s;
  };
  for (const auto& [k, numeric] : varying_keys(recs)) {
    if (k == xkey) continue;
    std::vector<std::string> trial = id_keys;
    trial.push_back(k);
    std::set<std::string> ids;
    for (const auto* r : recs) ids.insert(identity(*r, trial));
    if (ids.size() <= kMaxSeries) {
      id_keys = trial;
      continue;
    }
    // Hold k at its most common value ("unset" counts as one; ties: the first in sort order), so the
    // main sweep stays when a few explicit points or another bench add values.
    std::map<std::string, std::pair<int64_t, const BenchRecord*>> count;  // value dump -> (n, example)
    for (const auto* r : recs) {
      auto& c = count[r->point.contains(k) ? r->point.at(k).dump() : std::string()];
      ++c.first;
      if (!c.second) c.second = r;
    }
    const BenchRecord* pick = nullptr;
    std::string pick_key;
    int64_t best = 0;
    for (const auto& [v, c] : count) {
      const bool unset = v.empty();
      const bool earlier =
          pick && !unset && pick_key.size() && compare_values(c.second->point.at(k), pick->point.at(k)) < 0;
      if (c.first > best || (c.first == best && earlier)) best = c.first, pick = c.second, pick_key = v;
    }
    std::vector<const BenchRecord*> kept;
    for (const auto* r : recs) {
      if ((r->point.contains(k) ? r->point.at(k).dump() : std::string()) == pick_key) kept.push_back(r);
    }
    recs = kept;
    fixed += (fixed.empty() ? "" : ", ") +
             (pick_key.empty() ? k + " unset" : k + "=" + value_text(pick->point.at(k)));
  }
  // Holding a key can make others constant (another bench's settings): name only what still varies.
  const auto still = varying_keys(recs);
  id_keys.erase(
      std::remove_if(id_keys.begin(), id_keys.end(), [&](const std::string& k) { return !still.count(k); }),
      id_keys.end());
  std::map<std::string, PlotSeries> series;
  std::vector<std::string> order;
  for (const auto* r : recs) {
    const std::string id = identity(*r, id_keys);
    if (!series.count(id)) order.push_back(id), series[id].name = id;
    series[id].points.emplace_back(r->point.at(xkey).get<double>(), metric_value(*r, metric));
  }
  std::sort(order.begin(), order.end());  // legend grouped by device
  PlotSpec p;
  const char* what = metric == Metric::kLatency      ? "p50 latency"
                     : metric == Metric::kThroughput ? "throughput"
                                                     : "peak memory";
  p.title = fmt::format("{}: {} vs {}", target, what, xkey);
  p.subtitle = fixed.empty() ? "" : "held at " + fixed;
  p.x_label = xkey;
  std::set<std::string> units;
  for (const auto* r : recs) units.insert(r->throughput_unit);
  p.y_label = metric == Metric::kLatency ? "p50 latency (ms)"
              : metric == Metric::kThroughput
                  ? (units.size() == 1 && !units.begin()->empty() ? "throughput (" + *units.begin() + ")"
                                                                  : std::string("throughput"))
                  : "peak memory (MiB)";
  double xmin = 1e300, xmax = 0, ymin = 1e300, ymax = 0;
  for (const auto& id : order) {
    if (p.series.size() == kMaxSeries) break;
    for (const auto& [x, y] : series[id].points) {
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
    }
    p.series.push_back(series[id]);
  }
  // Batch sizes and lengths are usually powers of two: a log2 axis once they span 4x.
  p.log2_x = xmin > 0 && xmax / xmin >= 4;
  p.log10_y = ymin > 0 && ymax / ymin >= 50;
  const char* suffix = metric == Metric::kLatency      ? "latency"
                       : metric == Metric::kThroughput ? "throughput"
                                                       : "memory";
  return {target + "-" + suffix, p};
}

}  // namespace

std::vector<std::pair<std::string, PlotSpec>> build_plots(const MergedRecords& merged) {
  std::map<std::string, std::vector<const BenchRecord*>> by_target;
  for (const auto& r : merged.records) {
    if (r.ok()) by_target[r.target].push_back(&r);
  }
  std::vector<std::pair<std::string, PlotSpec>> out;
  for (const auto& [target, recs] : by_target) {
    const auto keys = varying_keys(recs);
    std::string x;
    if (keys.count("batch") && keys.at("batch")) x = "batch";
    for (const auto& [k, numeric] : keys) {
      if (x.empty() && numeric) x = k;
    }
    if (x.empty()) continue;  // nothing numeric is swept: the table says it all
    std::string xmem;
    for (const char* k : kLengthKeys) {
      if (xmem.empty() && keys.count(k) && keys.at(k)) xmem = k;
    }
    if (xmem.empty()) xmem = x;
    bool thr = false, mem = false, lat = false;
    for (const auto* r : recs) {
      lat = lat || r->latency.present;
      thr = thr || r->throughput > 0;
      mem = mem || r->peak_memory_bytes() > 0;
    }
    auto add = [&](const std::string& key, Metric m) {
      auto plot = make_plot(target, recs, key, m);
      if (!plot.second.series.empty()) out.push_back(std::move(plot));
    };
    if (lat) add(x, Metric::kLatency);
    if (thr) add(x, Metric::kThroughput);
    if (mem) add(xmem, Metric::kMemory);
  }
  return out;
}

}  // namespace mmref::bench
