// JSONL dataset manifests: one JSON object per line, the common currency of mmref's datasets.
//
//   {"path": "wavs/a.wav", "text": "hello world", "speaker": "p225", "split": "train", "duration": 1.5,
//    "anything_else": ...}
//
//   path      required, non-empty string; relative paths are resolved against the manifest's folder
//   text      optional string (alias "caption"); when the key is present it must not be empty
//   speaker   optional string or integer;   split  optional string
//   duration  optional number >= 0 (seconds; 0 = unknown, probed elsewhere)
//   other keys are kept in `extra` and written back by write_manifest
// Blank lines are ignored. Every bad line (broken JSON, not an object, missing path, empty text, wrong
// type, negative duration) is an mmref::Error "<file>:<line>: <what>"; with skip_bad the line is
// skipped instead, counted in BadInputReport::skipped and its message kept in BadInputReport::messages.
// The layout readers (readers.h) follow the same rules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::data {

struct BadInputReport {
  int64_t skipped = 0;
  std::vector<std::string> messages;  // one per skipped input, "<file>:<line>: <what>"
};

struct ManifestEntry {
  std::string path, text, speaker, split;
  double duration = 0;   // seconds; 0 = unknown
  int64_t line = 0;      // 1-based line in the source file (0 when not from a line, e.g. class folders)
  nlohmann::json extra;  // other keys of the line (an object, or null when none)
};

std::vector<ManifestEntry> read_manifest(const std::string& path, bool skip_bad = false,
                                         BadInputReport* report = nullptr);

// Writes entries as JSONL atomically (mmref::fs::atomic_write; creates the folder). Paths inside the
// manifest's folder are written relative to it when relative_paths, so the data folder can move.
void write_manifest(const std::string& path, const std::vector<ManifestEntry>& entries,
                    bool relative_paths = true);

// The shared bad-input rule: throws mmref::Error(message) unless skip_bad; otherwise counts the input
// in `report` (may be null).
void handle_bad_input(const std::string& message, bool skip_bad, BadInputReport* report);

// `p` resolved against `base_dir` when relative, lexically normalised.
std::string resolve_path(const std::string& base_dir, const std::string& p);

}  // namespace mmref::data
