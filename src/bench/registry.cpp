#include <algorithm>
#include <map>
#include <mutex>

#include "bench/target.h"
#include "core/error.h"

namespace mmref::bench {

namespace {

struct Entry {
  std::string description;
  TargetFactory factory;
};

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}

const nlohmann::json* find(const nlohmann::json& v, const std::string& key) {
  auto it = v.find(key);
  return it == v.end() || it->is_null() ? nullptr : &*it;
}

[[noreturn]] void wrong_type(const std::string& key, const char* want, const nlohmann::json& got) {
  throw Error("bench point: '" + key + "' must be " + want + ", got " + got.dump());
}

}  // namespace

int64_t Point::get_int(const std::string& key, int64_t fallback) const {
  const auto* v = find(values, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) wrong_type(key, "an integer", *v);
  return v->get<int64_t>();
}

double Point::get_double(const std::string& key, double fallback) const {
  const auto* v = find(values, key);
  if (!v) return fallback;
  if (!v->is_number()) wrong_type(key, "a number", *v);
  return v->get<double>();
}

std::string Point::get_string(const std::string& key, const std::string& fallback) const {
  const auto* v = find(values, key);
  if (!v) return fallback;
  if (!v->is_string()) wrong_type(key, "a string", *v);
  return v->get<std::string>();
}

bool Point::get_bool(const std::string& key, bool fallback) const {
  const auto* v = find(values, key);
  if (!v) return fallback;
  if (!v->is_boolean()) wrong_type(key, "true or false", *v);
  return v->get<bool>();
}

void register_target(const std::string& name, const std::string& description, TargetFactory factory) {
  registry()[name] = Entry{description, std::move(factory)};
}

std::unique_ptr<Target> make_target(const std::string& name) {
  register_builtin_targets();
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [n, e] : registry()) known += (known.empty() ? "" : ", ") + n;
    throw Error("bench: unknown target '" + name + "' (known: " + known +
                "); `mmref bench targets` lists them");
  }
  return it->second.factory();
}

std::vector<std::pair<std::string, std::string>> target_list() {
  register_builtin_targets();
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [n, e] : registry()) out.emplace_back(n, e.description);
  return out;
}

void register_builtin_targets() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_kernel_targets();
    register_train_targets();
    register_asr_targets();
    register_diffusion_targets();
  });
}

}  // namespace mmref::bench
