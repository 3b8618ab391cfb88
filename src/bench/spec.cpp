// Bench YAML parsing and sweep expansion; see spec.h.
#include "bench/spec.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "core/config.h"
#include "core/error.h"

namespace mmref::bench {

namespace {

std::optional<bool> plain_bool(const std::string& s) {
  for (const char* t : {"true", "True", "TRUE"}) {
    if (s == t) return true;
  }
  for (const char* f : {"false", "False", "FALSE"}) {
    if (s == f) return false;
  }
  return std::nullopt;
}

nlohmann::json scalar_to_json(const config::Node& n) {
  const std::string& s = n.value();
  if (n.quoted() || s.empty()) return s;
  if (auto b = plain_bool(s)) return *b;
  errno = 0;
  char* end = nullptr;
  const long long i = std::strtoll(s.c_str(), &end, 10);
  if (errno == 0 && end && *end == '\0') return static_cast<int64_t>(i);
  errno = 0;
  const double d = std::strtod(s.c_str(), &end);
  if (errno == 0 && end && *end == '\0' && s.find_first_of("0123456789") != std::string::npos) return d;
  return s;
}

[[noreturn]] void fail_at(const config::Node& n, const std::string& what) {
  throw ConfigError(fmt::format("{}: {}", n.mark().str(), what));
}

void read_budget(config::Reader r, Budget& b, bool with_max) {
  r.opt("count", b.count, config::Range::at_least(with_max ? 1 : 0));
  r.opt("seconds", b.seconds, config::Range::at_least(0));
  if (with_max) {
    r.opt("max", b.max, config::Range::at_least(1));
    if (b.max < b.count) r.fail("max", fmt::format("must be >= count ({}), got {}", b.count, b.max));
  }
  r.finish();
}

void add_varying(BenchSpec& s, const std::string& key) {
  for (const auto& k : s.varying) {
    if (k == key) return;
  }
  s.varying.push_back(key);
}

BenchSpec parse_bench(const config::Node& node, const std::string& where, const std::string& source) {
  BenchSpec s;
  s.source = source;
  const std::string prefix = where.empty() ? "" : where + ".";
  config::Reader r(&node, where, nullptr);
  r.opt("name", s.name);
  r.opt("description", s.description);
  r.req("target", s.target);
  r.choice("device", s.device, {"cpu", "cuda", "auto"});
  r.opt("peer", s.peer);
  r.opt("threads", s.threads, config::Range::at_least(0));
  read_budget(r.child("warmup"), s.warmup, /*with_max=*/false);
  read_budget(r.child("repeats"), s.repeats, /*with_max=*/true);
  if (const config::Node* st = r.raw("settings")) {
    if (!st->is_map()) r.fail("settings", "expected a map of fixed values, got " + st->kind_name());
    s.settings = yaml_to_json(*st);
  }
  // The cartesian product, first key outermost (slowest varying), in file order.
  std::vector<nlohmann::json> points;
  if (const config::Node* sw = r.raw("sweep")) {
    if (!sw->is_map()) r.fail("sweep", "expected a map of key -> list of values, got " + sw->kind_name());
    points.push_back(nlohmann::json::object());
    for (const auto& [key, values] : sw->entries()) {
      if (!values.is_sequence() || values.items().empty()) {
        fail_at(values, fmt::format("{}sweep.{}: expected a non-empty list of values, got {}", prefix, key,
                                    values.kind_name()));
      }
      add_varying(s, key);
      std::vector<nlohmann::json> next;
      for (const auto& p : points) {
        for (const auto& v : values.items()) {
          nlohmann::json q = p;
          q[key] = yaml_to_json(v);
          next.push_back(std::move(q));
        }
      }
      points = std::move(next);
    }
  }
  if (const config::Node* ps = r.raw("points")) {
    if (!ps->is_sequence()) r.fail("points", "expected a list of maps, got " + ps->kind_name());
    for (const auto& p : ps->items()) {
      if (!p.is_map()) fail_at(p, prefix + "points: each point must be a map, got " + p.kind_name());
      for (const auto& [key, v] : p.entries()) add_varying(s, key);
      points.push_back(yaml_to_json(p));
    }
  }
  r.finish();
  if (points.empty()) points.push_back(nlohmann::json::object());  // settings alone: one point
  for (auto& p : points) {
    nlohmann::json v = s.settings;
    for (auto it = p.begin(); it != p.end(); ++it) v[it.key()] = it.value();
    s.points.push_back(std::move(v));
  }
  for (size_t i = 0; i < s.points.size(); ++i) {
    const auto it = s.points[i].find("threads");
    if (it != s.points[i].end() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      throw ConfigError(fmt::format("{}: {}point {}: threads must be an integer >= 0, got {}", source, prefix, i,
                                    it->dump()));
    }
  }
  return s;
}

}  // namespace

nlohmann::json BenchSpec::point_keys(size_t i) const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& k : varying) {
    const auto it = points.at(i).find(k);
    if (it != points.at(i).end()) out[k] = *it;
  }
  return out;
}

int BenchSpec::threads_for(size_t i) const {
  const auto it = points.at(i).find("threads");
  return it != points.at(i).end() ? static_cast<int>(it->get<int64_t>()) : threads;
}

nlohmann::json yaml_to_json(const config::Node& n) {
  switch (n.kind()) {
    case config::Node::Kind::kNull: return nullptr;
    case config::Node::Kind::kScalar: return scalar_to_json(n);
    case config::Node::Kind::kSequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& i : n.items()) a.push_back(yaml_to_json(i));
      return a;
    }
    case config::Node::Kind::kMap: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, v] : n.entries()) o[k] = yaml_to_json(v);
      return o;
    }
  }
  return nullptr;
}

BenchFile parse_bench_file(const config::Node& root_in, const std::string& default_name,
                           const std::vector<std::string>& overrides) {
  if (!root_in.is_map()) fail_at(root_in, "a bench file must be a map (name:, target:, sweep:, ...)");
  config::Node root = root_in;
  BenchFile f;
  const std::string source = root.mark().file.empty() ? default_name : root.mark().file;
  if (config::Node* list = root.find("benches")) {
    if (!list->is_sequence() || list->items().empty()) {
      fail_at(*list, "benches: expected a non-empty list of bench maps, got " + list->kind_name());
    }
    config::Reader top(&root, "", nullptr);
    top.opt("name", f.name);
    std::string description;  // accepted, free text
    top.opt("description", description);
    f.name = f.name.empty() ? default_name : f.name;
    // Overrides apply to every entry: rebuild the list with each entry overridden.
    config::Node entries = config::Node::sequence(list->mark());
    for (const auto& e : list->items()) {
      config::Node entry = e;
      if (!entry.is_map()) fail_at(e, "benches: each entry must be a map, got " + e.kind_name());
      for (const auto& o : overrides) config::apply_override(entry, o);
      entries.push_back(std::move(entry));
    }
    top.raw("benches");
    top.finish();
    for (size_t i = 0; i < entries.items().size(); ++i) {
      BenchSpec s = parse_bench(entries.items()[i], fmt::format("benches[{}]", i), source);
      if (s.name.empty()) s.name = fmt::format("{}_{}", f.name, i);
      f.benches.push_back(std::move(s));
    }
  } else {
    for (const auto& o : overrides) config::apply_override(root, o);
    BenchSpec s = parse_bench(root, "", source);
    if (s.name.empty()) s.name = default_name;
    f.name = s.name;
    f.benches.push_back(std::move(s));
  }
  return f;
}

BenchFile load_bench_file(const std::string& path, const std::vector<std::string>& overrides) {
  if (!std::filesystem::exists(path)) {
    throw ConfigError(fmt::format("bench: config '{}' does not exist (configs/bench/ holds ready sweeps)", path));
  }
  const config::Node root = config::load_file(path);
  return parse_bench_file(root, std::filesystem::path(path).stem().string(), overrides);
}

}  // namespace mmref::bench
