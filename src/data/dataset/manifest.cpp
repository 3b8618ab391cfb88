// JSONL manifest reading and writing: see manifest.h for the format and the bad-input rules.
#include "data/dataset/manifest.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"

namespace mmref::data {

namespace stdfs = std::filesystem;

void handle_bad_input(const std::string& message, bool skip_bad, BadInputReport* report) {
  if (!skip_bad) throw Error(message);
  if (report != nullptr) {
    ++report->skipped;
    report->messages.push_back(message);
  }
}

std::string resolve_path(const std::string& base_dir, const std::string& p) {
  stdfs::path path(p);
  if (path.is_relative()) path = stdfs::path(base_dir) / path;
  return path.lexically_normal().string();
}

namespace {

// Parses one manifest line into `e`; returns "" on success or the reason it is bad.
std::string parse_line(const std::string& text, const std::string& dir, ManifestEntry& e) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& err) {
    std::string what = err.what();
    // nlohmann's message starts with "[json.exception.parse_error.101] "; keep the readable part.
    size_t cut = what.find("] ");
    return "broken JSON (" + (cut == std::string::npos ? what : what.substr(cut + 2)) + ")";
  }
  if (!j.is_object()) return "expected a JSON object, got " + std::string(j.type_name());
  auto path_it = j.find("path");
  if (path_it == j.end()) return "missing required key \"path\"";
  if (!path_it->is_string()) return "\"path\" must be a string, got " + path_it->dump();
  if (path_it->get<std::string>().empty()) return "\"path\" is empty";
  e.path = resolve_path(dir, path_it->get<std::string>());
  for (const char* key : {"text", "caption"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_string()) return std::string("\"") + key + "\" must be a string, got " + it->dump();
    e.text = it->get<std::string>();
    if (e.text.find_first_not_of(" \t\r\n") == std::string::npos) {
      return std::string("empty transcript (\"") + key + "\" is present but empty)";
    }
    break;
  }
  if (auto it = j.find("speaker"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      e.speaker = it->get<std::string>();
    } else if (it->is_number_integer()) {
      e.speaker = it->dump();
    } else {
      return "\"speaker\" must be a string or an integer, got " + it->dump();
    }
  }
  if (auto it = j.find("split"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return "\"split\" must be a string, got " + it->dump();
    e.split = it->get<std::string>();
  }
  if (auto it = j.find("duration"); it != j.end() && !it->is_null()) {
    if (!it->is_number()) return "\"duration\" must be a number of seconds, got " + it->dump();
    e.duration = it->get<double>();
    if (!std::isfinite(e.duration) || e.duration < 0) {
      return "negative duration " + it->dump() + " (seconds must be >= 0)";
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "path" || k == "text" || k == "caption" || k == "speaker" || k == "split" || k == "duration") {
      continue;
    }
    if (e.extra.is_null()) e.extra = nlohmann::json::object();
    e.extra[k] = it.value();
  }
  // A "caption" alias that was not used as the text (both present) stays in extra.
  if (j.contains("text") && j.contains("caption")) {
    if (e.extra.is_null()) e.extra = nlohmann::json::object();
    e.extra["caption"] = j["caption"];
  }
  return "";
}

}  // namespace

std::vector<ManifestEntry> read_manifest(const std::string& path, bool skip_bad, BadInputReport* report) {
  if (!fs::exists(path)) MMREF_FAIL("manifest '{}' does not exist; check the dataset path", path);
  std::istringstream in(fs::read_file(path));
  const std::string dir = stdfs::path(path).parent_path().string();
  std::vector<ManifestEntry> out;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ManifestEntry e;
    e.line = lineno;
    std::string why = parse_line(line, dir, e);
    if (!why.empty()) {
      handle_bad_input(fmt::format("{}:{}: {}", path, lineno, why), skip_bad, report);
      continue;
    }
    out.push_back(std::move(e));
  }
  return out;
}

void write_manifest(const std::string& path, const std::vector<ManifestEntry>& entries, bool relative_paths) {
  const stdfs::path dir = stdfs::path(path).parent_path();
  if (!dir.empty()) fs::make_dirs(dir.string());
  const stdfs::path abs_dir = stdfs::absolute(dir.empty() ? stdfs::path(".") : dir).lexically_normal();
  std::string body;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ManifestEntry& e = entries[i];
    if (e.path.empty()) MMREF_FAIL("write_manifest({}): entry {} has an empty path", path, i);
    if (e.duration < 0 || !std::isfinite(e.duration)) {
      MMREF_FAIL("write_manifest({}): entry {} ('{}') has a bad duration {}", path, i, e.path, e.duration);
    }
    std::string p = e.path;
    if (relative_paths) {
      stdfs::path abs = stdfs::absolute(stdfs::path(e.path)).lexically_normal();
      stdfs::path rel = abs.lexically_relative(abs_dir);
      if (!rel.empty() && *rel.begin() != "..") p = rel.string();
    }
    nlohmann::ordered_json j;
    j["path"] = p;
    if (!e.text.empty()) j["text"] = e.text;
    if (!e.speaker.empty()) j["speaker"] = e.speaker;
    if (!e.split.empty()) j["split"] = e.split;
    if (e.duration > 0) j["duration"] = e.duration;
    if (e.extra.is_object()) {
      for (auto it = e.extra.begin(); it != e.extra.end(); ++it) {
        if (!j.contains(it.key())) j[it.key()] = it.value();
      }
    } else if (!e.extra.is_null()) {
      MMREF_FAIL("write_manifest({}): entry {} ('{}'): extra must be a JSON object", path, i, e.path);
    }
    try {
      body += j.dump() + "\n";
    } catch (const nlohmann::json::exception& err) {
      MMREF_FAIL("write_manifest({}): entry {} ('{}') cannot be written as JSON ({}); is its text UTF-8?",
                 path, i, e.path, err.what());
    }
  }
  fs::atomic_write(path, body);
}

}  // namespace mmref::data
