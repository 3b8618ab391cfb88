// The sweep runner behind `mmref bench CONFIG`: for every point of every bench (spec.h) it
//   1. makes a fresh target, sets the point's intra-op threads, resets the peak-memory counters
//      (memory.h), prepares (model + fresh random inputs);
//   2. warms up (NVTX range "bench.warmup") until the warm-up count AND seconds are met;
//   3. times repeats (NVTX "bench.timed", one "bench.call" per call): at least repeats.count, then on
//      until repeats.seconds or repeats.max. GPU: a pair of CUDA events around each call, read after
//      synchronising on the stop event; CPU: std::chrono::steady_clock;
//   4. catches an out-of-memory error anywhere in 1-3 (compat::is_out_of_memory) as status "oom" with
//      the point's sizes, any other error as "error", frees the target (and the CUDA cache) and goes on;
//   5. with `peer: true`, runs the target's Python eager peer (peer.h) on the same point, with the warm-up
//      and repeat counts mmref used; a failing peer is recorded as that peer's status "error";
//   6. appends the mmref record (with peer_ratio = peer p50 / mmref p50) and the peer's record to the
//      JSONL file, flushed at once (records.h), and prints one console line per record.
// The file is <out>/<run name>-<UTC yyyymmddThhmmssZ>-<host>.jsonl (default out: runs/bench).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "bench/spec.h"

namespace mmref::bench {

struct RunOptions {
  std::string out_dir = "runs/bench";
  std::string jsonl_path;     // "" -> <out_dir>/<name>-<time>-<host>.jsonl
  std::string python;         // "" -> $MMREF_PYTHON, else /usr/bin/python3
  std::string repo_root;      // "" -> environment.h repo_root()
  std::ostream* console = nullptr;  // one line per record (null: quiet)
};

struct RunSummary {
  std::string jsonl_path;
  int64_t points = 0, ok = 0, oom = 0, error = 0;
  int64_t peers_ok = 0, peers_failed = 0;
  std::vector<nlohmann::json> records;  // everything written, in order
};

// "cpu" | "cuda" | "auto" -> a device; "cuda" without a visible GPU throws mmref::Error.
c10::Device resolve_device(const std::string& name);

// Runs every bench of the file. Throws only for problems before the first point (an unknown target, a
// cuda bench without a GPU, an unwritable output folder); point failures are records.
RunSummary run_bench_file(const BenchFile& file, const RunOptions& options);

// The expanded points, one line each (`mmref bench CONFIG --dry-run`).
std::string describe_points(const BenchFile& file);

}  // namespace mmref::bench
