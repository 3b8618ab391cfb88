// YAML configs: loading with `base:`/`include:` composition, `a.b.c=value` overrides, and a Reader that
// maps a YAML map onto a typed C++ struct in one place, with defaults, range checks and errors that name
// the file, line, key path and what was expected (unknown keys get a "did you mean" suggestion).
//
// Composition:
//   base: ../base.yaml           (top level; string or list) the file is merged on top of its bases
//   model: {include: m.yaml, x: 1}  (any map; string or list) the included maps are merged under the
//                                 map's own keys, which win
// Maps merge key by key, recursively; lists and scalars are replaced whole. Paths are relative to the
// file that names them.
//
// Typed parsing (one function per struct, see experiment.cpp for an example):
//   void parse(config::Reader& r, RuntimeConfig& c) {
//     r.opt("threads", c.threads, config::Range::at_least(0));
//     r.choice("device", c.device, {"cpu", "cuda", "auto"});
//     r.finish();                       // unknown keys -> ConfigError with a suggestion
//   }
// Every value a Reader reads (given or defaulted) is recorded in an "effective" tree, which is the fully
// resolved config written into each run directory and loadable as is.
#pragma once
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mmref::config {

// Where a value came from: a file position, or the command line.
struct Mark {
  std::string file;  // "" for values made in code (defaults)
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
  std::string str() const;  // "configs/a.yaml:12:3", "<command line>", or "<default>"
};

class Node {
 public:
  enum class Kind { kNull, kScalar, kSequence, kMap };

  Node() = default;
  static Node scalar(std::string value, bool quoted = false, Mark mark = {});
  static Node map(Mark mark = {});
  static Node sequence(Mark mark = {});

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_scalar() const { return kind_ == Kind::kScalar; }
  bool is_map() const { return kind_ == Kind::kMap; }
  bool is_sequence() const { return kind_ == Kind::kSequence; }
  // "a map", "a list", "a value", "nothing (null)": for messages.
  std::string kind_name() const;

  const std::string& value() const { return scalar_; }
  bool quoted() const { return quoted_; }
  const Mark& mark() const { return mark_; }
  void set_mark(Mark m) { mark_ = std::move(m); }
  // Where the key of this value stands in its parent map (unknown-key messages point at the key).
  const Mark& key_mark() const { return key_mark_.file.empty() ? mark_ : key_mark_; }
  void set_key_mark(Mark m) { key_mark_ = std::move(m); }

  // Map access (keys keep file order).
  const std::deque<std::pair<std::string, Node>>& entries() const { return entries_; }
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
  Node& set(const std::string& key, Node value);  // replaces or appends
  bool erase(const std::string& key);

  // Sequence access.
  const std::vector<Node>& items() const { return items_; }
  void push_back(Node n) { items_.push_back(std::move(n)); }

 private:
  Kind kind_ = Kind::kNull;
  std::string scalar_;
  bool quoted_ = false;
  // deque: references to entries stay valid when keys are appended (Reader::child relies on it).
  std::deque<std::pair<std::string, Node>> entries_;
  std::vector<Node> items_;
  Mark mark_;
  Mark key_mark_;
};

// Parses YAML text (no composition). `name` is used in messages. Throws ConfigError.
Node parse_yaml(const std::string& text, const std::string& name);
// Loads a config file and resolves base:/include: (cycles and missing files are errors).
Node load_file(const std::string& path);
// Applies one "a.b.c=value" override; the value is parsed as YAML ("[1, 2]", "true", "text").
void apply_override(Node& root, const std::string& assignment);
// Deep merge: maps merged key by key (overlay wins), anything else replaced.
void merge_into(Node& base, const Node& overlay);
// Block-style YAML, re-loadable by load_file.
std::string to_yaml(const Node& node);

// Value ranges for numeric fields.
struct Range {
  std::optional<double> min, max;
  bool min_exclusive = false;
  static Range any() { return {}; }
  static Range at_least(double lo) { return Range{lo, std::nullopt, false}; }
  static Range positive() { return Range{0.0, std::nullopt, true}; }
  static Range between(double lo, double hi) { return Range{lo, hi, false}; }
};

// Reads one map into typed fields. Copyable handles into a shared parse; cheap.
class Reader {
 public:
  // `effective` receives every value read (may be null). `path` is the key path of `node` ("" = root).
  Reader(const Node* node, std::string path, Node* effective, Mark parent_mark = {});

  // Optional fields keep their current value (the default) when the key is absent or null.
  void opt(const std::string& key, bool& v);
  void opt(const std::string& key, int& v, Range r = {});
  void opt(const std::string& key, int64_t& v, Range r = {});
  void opt(const std::string& key, double& v, Range r = {});
  void opt(const std::string& key, std::string& v);
  void opt(const std::string& key, std::vector<int64_t>& v, Range r = {});
  void opt(const std::string& key, std::vector<double>& v, Range r = {});
  void opt(const std::string& key, std::vector<std::string>& v);
  // Required fields: absent -> ConfigError "missing required key".
  void req(const std::string& key, int64_t& v, Range r = {});
  void req(const std::string& key, double& v, Range r = {});
  void req(const std::string& key, std::string& v);
  // A string from a fixed set; the message lists the allowed values.
  void choice(const std::string& key, std::string& v, std::initializer_list<const char*> allowed,
              bool required = false);
  // A nested map (absent -> an empty map, so its fields take their defaults).
  Reader child(const std::string& key);
  // Declares a key handled elsewhere (e.g. a task-specific section parsed later) so finish() accepts it.
  void allow(const std::string& key);
  // The raw node of a key, or null. Marks the key as known.
  const Node* raw(const std::string& key);
  bool has(const std::string& key) const;

  // Unknown keys -> ConfigError naming file:line, key path and the closest known key.
  void finish();

  // Throws ConfigError "<mark>: <path.key>: <what>" (for checks across several fields).
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  const std::string& path() const { return path_; }

 private:
  const Node* get(const std::string& key, bool required, const char* expected);
  std::string key_path(const std::string& key) const;
  void record(const std::string& key, Node value);
  Mark mark_of(const std::string& key) const;

  const Node* node_;
  std::string path_;
  Node* effective_;
  Mark parent_mark_;
  std::vector<std::string> known_;
};

// Levenshtein distance (used for "did you mean").
int edit_distance(const std::string& a, const std::string& b);
// The closest candidate within a small distance, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace mmref::config
