// The Python eager peer of a sweep point, run as a child process (the peer protocol):
//
//   $MMREF_PYTHON (default /usr/bin/python3) <repo root>/<script> --point '<json>' --device cpu|cuda
//       --warmup N --repeats N --threads T
//
// --point is the point's values merged with PeerSpec::args. The script times `repeats` calls after
// `warmup` untimed ones and prints, as its LAST stdout line, one JSON object:
//   {"times_ms": [...], "peak_rss_bytes": int (optional), "peak_allocated_bytes": int (optional),
//    "torch_version": "..."}
// A missing script, a non-zero exit or an unreadable last line gives status "error" with the message
// (the last lines of the peer's output); the sweep goes on. benchmarks/peers/peer_common.py implements
// the script side.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::bench {

struct PeerRequest {
  std::string script;  // relative to repo_root (or absolute)
  nlohmann::json point = nlohmann::json::object();
  std::string device = "cpu";  // "cpu" | "cuda"
  int64_t warmup = 0, repeats = 1;
  int threads = 1;
};

struct PeerResult {
  std::string status = "error";  // "ok" | "error"
  std::string error;
  std::vector<double> times_ms;
  int64_t peak_rss_bytes = -1, peak_allocated_bytes = -1;
  std::string torch_version;
  std::string command;  // what was run (for the record)
};

// python "" -> $MMREF_PYTHON, else /usr/bin/python3.
PeerResult run_peer_script(const PeerRequest& request, const std::string& python, const std::string& repo_root);

// Parses a peer's whole output (its last non-empty line must be the JSON object). Throws mmref::Error.
PeerResult parse_peer_output(const std::string& output);

}  // namespace mmref::bench
