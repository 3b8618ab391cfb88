// YAML configs: parse (yaml-cpp), compose, override, emit, and read into typed structs. See config.h.
#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/fs.h"

namespace mmref::config {
namespace stdfs = std::filesystem;

// ------------------------------------------------------------------------------------------------
// Mark and Node

std::string Mark::str() const {
  if (file.empty()) return "<default>";
  if (line <= 0) return file;
  if (column <= 0) return fmt::format("{}:{}", file, line);
  return fmt::format("{}:{}:{}", file, line, column);
}

Node Node::scalar(std::string value, bool quoted, Mark mark) {
  Node n;
  n.kind_ = Kind::kScalar;
  n.scalar_ = std::move(value);
  n.quoted_ = quoted;
  n.mark_ = std::move(mark);
  return n;
}

Node Node::map(Mark mark) {
  Node n;
  n.kind_ = Kind::kMap;
  n.mark_ = std::move(mark);
  return n;
}

Node Node::sequence(Mark mark) {
  Node n;
  n.kind_ = Kind::kSequence;
  n.mark_ = std::move(mark);
  return n;
}

std::string Node::kind_name() const {
  switch (kind_) {
    case Kind::kNull: return "nothing (null)";
    case Kind::kScalar: return fmt::format("the value '{}'", scalar_);
    case Kind::kSequence: return "a list";
    case Kind::kMap: return "a map";
  }
  return "?";
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Node* Node::find(const std::string& key) {
  for (auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

Node& Node::set(const std::string& key, Node value) {
  if (kind_ != Kind::kMap) {
    kind_ = Kind::kMap;
    scalar_.clear();
    items_.clear();
  }
  if (Node* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  entries_.emplace_back(key, std::move(value));
  return entries_.back().second;
}

bool Node::erase(const std::string& key) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const auto& e) { return e.first == key; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

// ------------------------------------------------------------------------------------------------
// Parsing

namespace {

[[noreturn]] void config_fail(const Mark& mark, const std::string& what) {
  throw ConfigError(fmt::format("{}: {}", mark.str(), what));
}

Mark mark_from(const YAML::Mark& m, const std::string& file) {
  Mark out;
  out.file = file;
  if (m.line >= 0) out.line = m.line + 1;
  if (m.column >= 0) out.column = m.column + 1;
  return out;
}

Node convert(const YAML::Node& y, const std::string& file) {
  const Mark mark = mark_from(y.Mark(), file);
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: {
      Node n;
      n.set_mark(mark);
      return n;
    }
    case YAML::NodeType::Scalar:
      // yaml-cpp tags plain scalars "?" and quoted/literal ones "!".
      return Node::scalar(y.Scalar(), y.Tag() == "!", mark);
    case YAML::NodeType::Sequence: {
      Node n = Node::sequence(mark);
      for (const auto& item : y) n.push_back(convert(item, file));
      return n;
    }
    case YAML::NodeType::Map: {
      Node n = Node::map(mark);
      for (auto it = y.begin(); it != y.end(); ++it) {
        if (!it->first.IsScalar()) {
          config_fail(mark_from(it->first.Mark(), file), "map keys must be plain names");
        }
        const std::string key = it->first.Scalar();
        if (n.find(key)) {
          config_fail(mark_from(it->first.Mark(), file), fmt::format("duplicate key '{}'", key));
        }
        Node& child = n.set(key, convert(it->second, file));
        child.set_key_mark(mark_from(it->first.Mark(), file));
      }
      return n;
    }
  }
  return Node();
}

std::vector<std::string> string_list(const Node& n, const std::string& what) {
  std::vector<std::string> out;
  if (n.is_scalar()) {
    out.push_back(n.value());
  } else if (n.is_sequence()) {
    for (const auto& item : n.items()) {
      if (!item.is_scalar()) config_fail(item.mark(), what + ": expected a file path, got " + item.kind_name());
      out.push_back(item.value());
    }
  } else {
    config_fail(n.mark(), what + ": expected a file path or a list of paths, got " + n.kind_name());
  }
  return out;
}

std::string resolve_relative(const std::string& from_file, const std::string& rel) {
  stdfs::path p(rel);
  if (p.is_relative()) p = stdfs::path(from_file).parent_path() / p;
  return p.lexically_normal().string();
}

Node load_composed(const std::string& path, std::vector<std::string>& stack);

// Resolves `include:` in every map of `n`, depth first.
void resolve_includes(Node& n, const std::string& file, std::vector<std::string>& stack) {
  if (n.is_sequence()) {
    // Sequences hold Nodes by value; rebuild with resolved items.
    Node out = Node::sequence(n.mark());
    for (Node item : n.items()) {
      resolve_includes(item, file, stack);
      out.push_back(std::move(item));
    }
    n = std::move(out);
    return;
  }
  if (!n.is_map()) return;
  Node resolved = Node::map(n.mark());
  for (const auto& [k, v] : n.entries()) {
    if (k == "include") continue;
    Node child = v;
    resolve_includes(child, file, stack);
    resolved.set(k, std::move(child));
  }
  if (const Node* inc = n.find("include")) {
    Node merged = Node::map(n.mark());
    for (const auto& rel : string_list(*inc, "include")) {
      const std::string target = resolve_relative(file, rel);
      if (!fs::exists(target)) {
        config_fail(inc->mark(), fmt::format("include '{}' not found (looked for '{}')", rel, target));
      }
      Node sub = load_composed(target, stack);
      if (!sub.is_map()) {
        config_fail(inc->mark(), fmt::format("include '{}' must hold a map, it holds {}", rel,
                                             sub.kind_name()));
      }
      merge_into(merged, sub);
    }
    merge_into(merged, resolved);
    resolved = std::move(merged);
  }
  n = std::move(resolved);
}

Node load_composed(const std::string& path, std::vector<std::string>& stack) {
  std::error_code ec;
  const std::string canon = stdfs::weakly_canonical(path, ec).string();
  if (std::find(stack.begin(), stack.end(), canon) != stack.end()) {
    std::string chain;
    for (const auto& s : stack) chain += s + " -> ";
    throw ConfigError(fmt::format("{}: include cycle: {}{}", path, chain, canon));
  }
  if (!fs::exists(path)) throw ConfigError(fmt::format("config file '{}' not found", path));
  if (stdfs::is_directory(path, ec)) {
    throw ConfigError(fmt::format("'{}' is a folder; give the path of a YAML config file", path));
  }
  std::string text;
  try {
    text = fs::read_file(path);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  stack.push_back(canon);
  Node root = parse_yaml(text, path);
  if (root.is_null()) root = Node::map(Mark{path, 1, 1});
  if (!root.is_map()) config_fail(root.mark(), "a config file must hold a map of keys, it holds " + root.kind_name());

  Node result = Node::map(root.mark());
  if (const Node* base = root.find("base")) {
    for (const auto& rel : string_list(*base, "base")) {
      const std::string target = resolve_relative(path, rel);
      if (!fs::exists(target)) {
        config_fail(base->mark(), fmt::format("base config '{}' not found (looked for '{}')", rel, target));
      }
      merge_into(result, load_composed(target, stack));
    }
    root.erase("base");
  }
  resolve_includes(root, path, stack);
  merge_into(result, root);
  stack.pop_back();
  return result;
}

}  // namespace

Node parse_yaml(const std::string& text, const std::string& name) {
  YAML::Node y;
  try {
    y = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    config_fail(mark_from(e.mark, name), "YAML syntax error: " + e.msg);
  }
  return convert(y, name);
}

Node load_file(const std::string& path) {
  std::vector<std::string> stack;
  return load_composed(path, stack);
}

void merge_into(Node& base, const Node& overlay) {
  if (base.is_map() && overlay.is_map()) {
    for (const auto& [k, v] : overlay.entries()) {
      Node* existing = base.find(k);
      if (existing && existing->is_map() && v.is_map()) {
        merge_into(*existing, v);
      } else {
        base.set(k, v);
      }
    }
    return;
  }
  base = overlay;
}

void apply_override(Node& root, const std::string& assignment) {
  const Mark cli{"<command line>", 0, 0};
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError(fmt::format(
        "override '{}': expected key.path=value (for example train.lr=3e-4)", assignment));
  }
  const std::string key_path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  std::vector<std::string> keys;
  size_t start = 0;
  while (true) {
    const auto dot = key_path.find('.', start);
    keys.push_back(key_path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (keys.back().empty()) {
      throw ConfigError(fmt::format("override '{}': empty key in '{}'", assignment, key_path));
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  Node value = text.empty() ? Node::scalar("", true) : parse_yaml(text, "<command line>");
  value.set_mark(cli);
  if (!root.is_map()) root = Node::map(cli);
  Node* cur = &root;
  std::string walked;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    walked += (walked.empty() ? "" : ".") + keys[i];
    Node* next = cur->find(keys[i]);
    if (!next) {
      next = &cur->set(keys[i], Node::map(cli));
    } else if (!next->is_map()) {
      throw ConfigError(fmt::format("override '{}': '{}' is {}, not a map", assignment, walked,
                                    next->kind_name()));
    }
    cur = next;
  }
  cur->set(keys.back(), std::move(value));
}

namespace {

void emit(YAML::Emitter& out, const Node& n) {
  switch (n.kind()) {
    case Node::Kind::kNull:
      out << YAML::Null;
      break;
    case Node::Kind::kScalar:
      if (n.quoted() || n.value().empty()) {
        out << YAML::DoubleQuoted << n.value();
      } else {
        out << n.value();
      }
      break;
    case Node::Kind::kSequence: {
      bool flat = std::all_of(n.items().begin(), n.items().end(), [](const Node& i) { return i.is_scalar(); });
      out << (flat ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
      for (const auto& i : n.items()) emit(out, i);
      out << YAML::EndSeq;
      break;
    }
    case Node::Kind::kMap:
      if (n.entries().empty()) {
        out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
        break;
      }
      out << YAML::Block << YAML::BeginMap;
      for (const auto& [k, v] : n.entries()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}

}  // namespace

std::string to_yaml(const Node& node) {
  YAML::Emitter out;
  emit(out, node);
  return std::string(out.c_str()) + "\n";
}

// ------------------------------------------------------------------------------------------------
// Typed reading

int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  int best_d = std::numeric_limits<int>::max();
  for (const auto& c : candidates) {
    const int d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // Accept typos up to a third of the word (at least 2 edits), like git's suggestions.
  const int limit = std::max<int>(2, static_cast<int>(word.size()) / 3);
  return best_d <= limit ? best : std::string();
}

namespace {

bool looks_like_non_string(const std::string& s) {
  if (s.empty()) return true;
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "null", "~",
                                 "True", "False", "Yes", "No", "On", "Off", "Null", "NULL",
                                 "TRUE", "FALSE"};
  for (const char* w : kWords) {
    if (s == w) return true;
  }
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end && *end == '\0';
}

std::optional<int64_t> parse_int(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const bool hex = s.size() > 2 && (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0);
  const long long v = std::strtoll(s.c_str(), &end, hex ? 16 : 10);
  if (errno == ERANGE || !end || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<double> parse_double(const std::string& s) {
  if (s == ".inf" || s == ".Inf" || s == "+.inf") return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf") return -std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno == ERANGE || !end || *end != '\0') return std::nullopt;
  // strtod accepts "nan"/"inf" spellings YAML does not; require a digit.
  if (s.find_first_of("0123456789") == std::string::npos) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool(const std::string& s) {
  static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* t : kTrue) {
    if (s == t) return true;
  }
  for (const char* f : kFalse) {
    if (s == f) return false;
  }
  return std::nullopt;
}

std::string format_number(double v) { return fmt::format("{}", v); }

std::string range_text(const Range& r) {
  if (r.min && r.max) return fmt::format("between {} and {}", format_number(*r.min), format_number(*r.max));
  if (r.min) return fmt::format("{} {}", r.min_exclusive ? ">" : ">=", format_number(*r.min));
  if (r.max) return fmt::format("<= {}", format_number(*r.max));
  return "any value";
}

bool in_range(double v, const Range& r) {
  if (std::isnan(v)) return !r.min && !r.max;
  if (r.min && (r.min_exclusive ? v <= *r.min : v < *r.min)) return false;
  if (r.max && v > *r.max) return false;
  return true;
}

}  // namespace

Reader::Reader(const Node* node, std::string path, Node* effective, Mark parent_mark)
    : node_(node), path_(std::move(path)), effective_(effective), parent_mark_(std::move(parent_mark)) {
  if (node_ && !node_->is_null() && !node_->is_map()) {
    throw ConfigError(fmt::format("{}: {}: expected a map of keys, got {}", node_->mark().str(),
                                  path_.empty() ? "<root>" : path_, node_->kind_name()));
  }
  if (node_ && node_->is_null()) node_ = nullptr;
  if (effective_ && !effective_->is_map()) *effective_ = Node::map();
}

std::string Reader::key_path(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

Mark Reader::mark_of(const std::string& key) const {
  if (node_) {
    if (const Node* n = node_->find(key)) return n->mark();
    return node_->mark();
  }
  return parent_mark_;
}

void Reader::fail(const std::string& key, const std::string& what) const {
  throw ConfigError(fmt::format("{}: {}: {}", mark_of(key).str(), key_path(key), what));
}

bool Reader::has(const std::string& key) const {
  const Node* n = node_ ? node_->find(key) : nullptr;
  return n && !n->is_null();
}

const Node* Reader::get(const std::string& key, bool required, const char* expected) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
  const Node* n = node_ ? node_->find(key) : nullptr;
  if (!n || n->is_null()) {
    if (required) {
      const Mark m = node_ ? node_->mark() : parent_mark_;
      throw ConfigError(fmt::format("{}: missing required key '{}' (expected {})", m.str(),
                                    key_path(key), expected));
    }
    return nullptr;
  }
  return n;
}

void Reader::record(const std::string& key, Node value) {
  if (effective_) effective_->set(key, std::move(value));
}

void Reader::allow(const std::string& key) {
  if (std::find(known_.begin(), known_.end(), key) == known_.end()) known_.push_back(key);
}

const Node* Reader::raw(const std::string& key) {
  const Node* n = get(key, false, "");
  if (n && effective_) effective_->set(key, *n);
  return n;
}

namespace {

// Shared scalar readers, each with the message that says what was expected.
int64_t as_int(const Reader& r, const std::string& key, const Node& n, const Range& range) {
  if (!n.is_scalar() || n.quoted()) r.fail(key, "expected an integer, got " + n.kind_name());
  auto v = parse_int(n.value());
  if (!v) r.fail(key, fmt::format("expected an integer, got '{}'", n.value()));
  if (!in_range(static_cast<double>(*v), range)) {
    r.fail(key, fmt::format("must be {}, got {}", range_text(range), *v));
  }
  return *v;
}

double as_double(const Reader& r, const std::string& key, const Node& n, const Range& range) {
  if (!n.is_scalar() || n.quoted()) r.fail(key, "expected a number, got " + n.kind_name());
  auto v = parse_double(n.value());
  if (!v) r.fail(key, fmt::format("expected a number, got '{}'", n.value()));
  if (!in_range(*v, range)) r.fail(key, fmt::format("must be {}, got {}", range_text(range), n.value()));
  return *v;
}

std::string as_string(const Reader& r, const std::string& key, const Node& n) {
  if (!n.is_scalar()) r.fail(key, "expected a string, got " + n.kind_name());
  return n.value();
}

Node int_node(int64_t v) { return Node::scalar(std::to_string(v)); }
Node double_node(double v) {
  if (std::isinf(v)) return Node::scalar(v > 0 ? ".inf" : "-.inf");
  if (std::isnan(v)) return Node::scalar(".nan");
  std::string s = fmt::format("{}", v);
  // Keep a float-looking spelling so the written config reads back as a number of the same kind.
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return Node::scalar(s);
}
Node string_node(const std::string& v) { return Node::scalar(v, looks_like_non_string(v)); }

const Node& expect_list(const Reader& r, const std::string& key, const Node& n, const char* of) {
  if (!n.is_sequence()) r.fail(key, fmt::format("expected a list of {}, got {}", of, n.kind_name()));
  return n;
}

}  // namespace

void Reader::opt(const std::string& key, bool& v) {
  if (const Node* n = get(key, false, "true or false")) {
    std::optional<bool> b;
    if (n->is_scalar() && !n->quoted()) b = parse_bool(n->value());
    if (!b) fail(key, "expected true or false, got " + n->kind_name());
    v = *b;
  }
  record(key, Node::scalar(v ? "true" : "false"));
}

void Reader::opt(const std::string& key, int& v, Range r) {
  int64_t wide = v;
  Range clamped = r;
  if (!clamped.min) clamped.min = static_cast<double>(std::numeric_limits<int>::min());
  if (!clamped.max) clamped.max = static_cast<double>(std::numeric_limits<int>::max());
  if (const Node* n = get(key, false, "an integer")) wide = as_int(*this, key, *n, clamped);
  v = static_cast<int>(wide);
  record(key, int_node(v));
}

void Reader::opt(const std::string& key, int64_t& v, Range r) {
  if (const Node* n = get(key, false, "an integer")) v = as_int(*this, key, *n, r);
  record(key, int_node(v));
}

void Reader::opt(const std::string& key, double& v, Range r) {
  if (const Node* n = get(key, false, "a number")) v = as_double(*this, key, *n, r);
  record(key, double_node(v));
}

void Reader::opt(const std::string& key, std::string& v) {
  if (const Node* n = get(key, false, "a string")) v = as_string(*this, key, *n);
  record(key, string_node(v));
}

void Reader::opt(const std::string& key, std::vector<int64_t>& v, Range r) {
  if (const Node* n = get(key, false, "a list of integers")) {
    std::vector<int64_t> out;
    for (const auto& item : expect_list(*this, key, *n, "integers").items()) {
      out.push_back(as_int(*this, key, item, r));
    }
    v = std::move(out);
  }
  Node seq = Node::sequence();
  for (auto x : v) seq.push_back(int_node(x));
  record(key, std::move(seq));
}

void Reader::opt(const std::string& key, std::vector<double>& v, Range r) {
  if (const Node* n = get(key, false, "a list of numbers")) {
    std::vector<double> out;
    for (const auto& item : expect_list(*this, key, *n, "numbers").items()) {
      out.push_back(as_double(*this, key, item, r));
    }
    v = std::move(out);
  }
  Node seq = Node::sequence();
  for (auto x : v) seq.push_back(double_node(x));
  record(key, std::move(seq));
}

void Reader::opt(const std::string& key, std::vector<std::string>& v) {
  if (const Node* n = get(key, false, "a list of strings")) {
    std::vector<std::string> out;
    if (n->is_scalar()) {
      out.push_back(n->value());  // a single string is a one-element list
    } else {
      for (const auto& item : expect_list(*this, key, *n, "strings").items()) {
        out.push_back(as_string(*this, key, item));
      }
    }
    v = std::move(out);
  }
  Node seq = Node::sequence();
  for (const auto& x : v) seq.push_back(string_node(x));
  record(key, std::move(seq));
}

void Reader::req(const std::string& key, int64_t& v, Range r) {
  v = as_int(*this, key, *get(key, true, "an integer"), r);
  record(key, int_node(v));
}

void Reader::req(const std::string& key, double& v, Range r) {
  v = as_double(*this, key, *get(key, true, "a number"), r);
  record(key, double_node(v));
}

void Reader::req(const std::string& key, std::string& v) {
  v = as_string(*this, key, *get(key, true, "a string"));
  record(key, string_node(v));
}

void Reader::choice(const std::string& key, std::string& v, std::initializer_list<const char*> allowed,
                    bool required) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  std::string list;
  for (const auto& a : names) list += (list.empty() ? "" : ", ") + a;
  if (const Node* n = get(key, required, ("one of: " + list).c_str())) {
    const std::string s = as_string(*this, key, *n);
    if (std::find(names.begin(), names.end(), s) == names.end()) {
      const std::string near = closest(s, names);
      fail(key, fmt::format("'{}' is not one of: {}{}", s, list,
                            near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near)));
    }
    v = s;
  }
  record(key, string_node(v));
}

Reader Reader::child(const std::string& key) {
  const Node* n = get(key, false, "a map");
  Node* eff = nullptr;
  if (effective_) {
    Node* existing = effective_->find(key);
    eff = existing ? existing : &effective_->set(key, Node::map());
  }
  // `eff` stays valid while siblings are appended: Node keeps its entries in a deque.
  return Reader(n, key_path(key), eff, mark_of(key));
}

void Reader::finish() {
  if (!node_) return;
  for (const auto& [k, v] : node_->entries()) {
    if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
    const std::string near = closest(k, known_);
    std::string known_list;
    for (const auto& kk : known_) known_list += (known_list.empty() ? "" : ", ") + kk;
    const std::string hint = !near.empty() ? fmt::format("did you mean '{}'?", near)
                                           : fmt::format("known keys here: {}", known_list);
    throw ConfigError(fmt::format("{}: {}: unknown key; {}", v.key_mark().str(), key_path(k), hint));
  }
}

}  // namespace mmref::config
