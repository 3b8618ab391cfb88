// A bench YAML file (`mmref bench CONFIG`) parsed and expanded into sweep points.
//
//   name: attention_cpu                 # names the JSONL file and every record's "bench"
//   description: ...                    # optional, free text
//   target: kernel.attention            # `mmref bench targets` lists them
//   device: cpu | cuda | auto           # auto: cuda when libtorch sees a GPU (default auto)
//   settings: {dtype: float32, heads: 4}  # fixed values merged into every point
//   sweep: {batch: [1, 4], seq: [128, 512]}   # cartesian product, first key outermost
//   points: [{batch: 8, seq: 2048}]     # explicit points (merged over settings), after the product
//   warmup: {count: 3, seconds: 0}      # untimed calls until BOTH are met
//   repeats: {count: 10, seconds: 0, max: 10000}  # at least count; then on until seconds or max
//   peer: false                         # also time the target's Python eager peer (runner.h)
//   threads: 0                          # intra-op threads (0: libtorch's default); a point's `threads` wins
//
// or `benches: [ {...}, ... ]` (each entry as above; a top-level `name:` names the JSONL file).
// Unknown keys are ConfigErrors naming the key, file and line. A point's "point" record (the keys that
// vary) is the sweep's keys plus every key an explicit point names, in file order.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::config {
class Node;
}

namespace mmref::bench {

struct Budget {
  int64_t count = 0;
  double seconds = 0;
  int64_t max = 0;  // repeats only: the most timed calls (0 for warm-up: no cap beyond count/seconds)
};

struct BenchSpec {
  std::string name, description, target, device = "auto";
  std::string source;  // the YAML file (messages)
  nlohmann::json settings = nlohmann::json::object();
  std::vector<nlohmann::json> points;  // fully resolved values of each point (settings merged)
  std::vector<std::string> varying;    // swept / explicitly listed keys, in file order
  Budget warmup{/*count=*/3, /*seconds=*/0, /*max=*/0};
  Budget repeats{/*count=*/10, /*seconds=*/0, /*max=*/10000};
  bool peer = false;
  int threads = 0;

  // The varying keys of point i (what records call "point").
  nlohmann::json point_keys(size_t i) const;
  // Intra-op threads for point i: its `threads` value, else the bench's (0: libtorch's default).
  int threads_for(size_t i) const;
};

// A bench file: its run name (top-level `name:`, else the file stem) and its benches.
struct BenchFile {
  std::string name;
  std::vector<BenchSpec> benches;
};

// Loads and expands a bench YAML. `overrides` are "a.b=value" assignments applied to the file's tree
// before parsing (in a `benches:` file, to every entry). Throws ConfigError.
BenchFile load_bench_file(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from an already loaded tree (tests). `default_name` is used when there is no `name:`.
BenchFile parse_bench_file(const config::Node& root, const std::string& default_name,
                           const std::vector<std::string>& overrides = {});

// YAML -> JSON with YAML's plain-scalar typing: true/false, integers, floats, null; quoted -> string.
nlohmann::json yaml_to_json(const config::Node& node);

}  // namespace mmref::bench
