// Dataset layout readers (LJSpeech, LibriSpeech, captioned/class-folder images and videos): see
// readers.h. Ref: keithito/tacotron datasets/ljspeech.py and torchaudio.datasets.LIBRISPEECH (layouts).
#include "data/dataset/readers.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"

namespace mmref::data {

namespace stdfs = std::filesystem;

namespace {

// Splits a file into lines (BOM and '\r' removed).
std::vector<std::string> read_lines(const std::string& path) {
  std::istringstream in(fs::read_file(path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (lines.empty() && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t") == std::string::npos; }

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

void require_dir(const std::string& root, const char* what) {
  std::error_code ec;
  if (!stdfs::is_directory(root, ec)) {
    MMREF_FAIL("{} dataset folder '{}' does not exist or is not a folder", what, root);
  }
}

std::string lower_ext(const stdfs::path& p) {
  std::string e = p.extension().string();
  if (!e.empty()) e.erase(0, 1);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

std::vector<ManifestEntry> read_media_folder(const std::string& root, bool skip_bad, BadInputReport* report,
                                             const char* what, const std::set<std::string>& exts) {
  require_dir(root, what);
  std::vector<ManifestEntry> out;
  const std::string captions = (stdfs::path(root) / "captions.jsonl").string();
  if (fs::exists(captions)) {
    const std::vector<std::string> lines = read_lines(captions);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (blank(lines[i])) continue;
      const auto bad = [&](const std::string& why) {
        handle_bad_input(fmt::format("{}:{}: {}", captions, i + 1, why), skip_bad, report);
      };
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(lines[i]);
      } catch (const nlohmann::json::parse_error& err) {
        std::string w = err.what();
        size_t cut = w.find("] ");
        bad("broken JSON (" + (cut == std::string::npos ? w : w.substr(cut + 2)) + ")");
        continue;
      }
      if (!j.is_object()) {
        bad(std::string("expected a JSON object, got ") + j.type_name());
        continue;
      }
      auto file = j.find("file");
      if (file == j.end() || !file->is_string() || file->get<std::string>().empty()) {
        bad(file == j.end() ? "missing required key \"file\"" : "\"file\" must be a non-empty string");
        continue;
      }
      const char* cap_key = j.contains("caption") ? "caption" : (j.contains("text") ? "text" : nullptr);
      if (cap_key == nullptr) {
        bad("missing key \"caption\"");
        continue;
      }
      const auto& cap = j[cap_key];
      if (!cap.is_string()) {
        bad(std::string("\"") + cap_key + "\" must be a string, got " + cap.dump());
        continue;
      }
      if (blank(cap.get<std::string>())) {
        bad(std::string("empty caption (\"") + cap_key + "\" is present but empty)");
        continue;
      }
      ManifestEntry e;
      e.path = resolve_path(root, file->get<std::string>());
      if (!fs::exists(e.path)) {
        bad(fmt::format("{} file '{}' does not exist", what, e.path));
        continue;
      }
      e.text = cap.get<std::string>();
      e.line = static_cast<int64_t>(i + 1);
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() == "file" || it.key() == cap_key) continue;
        if (e.extra.is_null()) e.extra = nlohmann::json::object();
        e.extra[it.key()] = it.value();
      }
      out.push_back(std::move(e));
    }
    return out;
  }
  // Class folders: root/<class>/<file>.
  std::vector<stdfs::path> classes;
  for (const auto& d : stdfs::directory_iterator(root)) {
    if (d.is_directory()) classes.push_back(d.path());
  }
  std::sort(classes.begin(), classes.end());
  for (const auto& cls : classes) {
    std::vector<stdfs::path> files;
    for (const auto& f : stdfs::directory_iterator(cls)) {
      if (f.is_regular_file() && exts.count(lower_ext(f.path()))) files.push_back(f.path());
    }
    std::sort(files.begin(), files.end());
    const std::string name = cls.filename().string();
    for (const auto& f : files) {
      ManifestEntry e;
      e.path = f.lexically_normal().string();
      e.text = name;
      e.extra = nlohmann::json::object({{"class", name}});
      out.push_back(std::move(e));
    }
  }
  if (out.empty()) {
    MMREF_FAIL("{} folder '{}' has neither captions.jsonl nor class folders with {} files", what, root, what);
  }
  return out;
}

}  // namespace

std::vector<ManifestEntry> read_ljspeech(const std::string& root, bool skip_bad, BadInputReport* report) {
  require_dir(root, "LJSpeech");
  const std::string meta = (stdfs::path(root) / "metadata.csv").string();
  if (!fs::exists(meta)) MMREF_FAIL("LJSpeech: '{}' does not exist; is '{}' the LJSpeech root?", meta, root);
  const std::vector<std::string> lines = read_lines(meta);
  std::vector<ManifestEntry> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (blank(lines[i])) continue;
    const auto bad = [&](const std::string& why) {
      handle_bad_input(fmt::format("{}:{}: {}", meta, i + 1, why), skip_bad, report);
    };
    std::vector<std::string> fields;
    std::stringstream ss(lines[i]);
    std::string f;
    while (std::getline(ss, f, '|')) fields.push_back(f);
    if (!lines[i].empty() && lines[i].back() == '|') fields.emplace_back();
    if (fields.size() < 2 || fields.size() > 3) {
      bad(fmt::format("expected 'id|text|normalized_text', found {} field(s)", fields.size()));
      continue;
    }
    const std::string id = trim(fields[0]);
    if (id.empty()) {
      bad("empty id");
      continue;
    }
    if (!seen.insert(id).second) {
      bad(fmt::format("duplicate id '{}'", id));
      continue;
    }
    const std::string raw = trim(fields[1]);
    const std::string norm = fields.size() == 3 ? trim(fields[2]) : "";
    if (raw.empty() && norm.empty()) {
      bad(fmt::format("empty transcript for '{}'", id));
      continue;
    }
    ManifestEntry e;
    e.path = (stdfs::path(root) / "wavs" / (id + ".wav")).lexically_normal().string();
    if (!fs::exists(e.path)) {
      bad(fmt::format("audio file '{}' does not exist", e.path));
      continue;
    }
    e.text = norm.empty() ? raw : norm;
    e.speaker = "ljspeech";
    e.line = static_cast<int64_t>(i + 1);
    e.extra = nlohmann::json::object({{"id", id}, {"raw_text", raw}});
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<ManifestEntry> read_librispeech(const std::string& root, bool skip_bad, BadInputReport* report) {
  require_dir(root, "LibriSpeech");
  std::vector<stdfs::path> trans;
  for (const auto& f : stdfs::recursive_directory_iterator(root)) {
    const std::string name = f.path().filename().string();
    if (f.is_regular_file() && name.size() > 10 && name.compare(name.size() - 10, 10, ".trans.txt") == 0) {
      trans.push_back(f.path());
    }
  }
  if (trans.empty()) MMREF_FAIL("LibriSpeech: no *.trans.txt files under '{}'", root);
  std::sort(trans.begin(), trans.end());
  std::vector<ManifestEntry> out;
  for (const auto& tp : trans) {
    const std::string tfile = tp.lexically_normal().string();
    const stdfs::path rel = tp.lexically_relative(root);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    // subset/speaker/chapter/file -> split = subset.
    const std::string split = parts.size() >= 4 ? parts[parts.size() - 4] : "";
    const std::vector<std::string> lines = read_lines(tfile);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (blank(lines[i])) continue;
      const auto bad = [&](const std::string& why) {
        handle_bad_input(fmt::format("{}:{}: {}", tfile, i + 1, why), skip_bad, report);
      };
      const std::string line = trim(lines[i]);
      const size_t sp = line.find_first_of(" \t");
      const std::string id = line.substr(0, sp);
      const std::string text = sp == std::string::npos ? "" : trim(line.substr(sp + 1));
      if (text.empty()) {
        bad(fmt::format("empty transcript for '{}' (expected '<utt-id> TEXT')", id));
        continue;
      }
      const size_t d1 = id.find('-');
      const size_t d2 = d1 == std::string::npos ? d1 : id.find('-', d1 + 1);
      if (d1 == 0 || d2 == std::string::npos || d2 == d1 + 1 || d2 + 1 >= id.size()) {
        bad(fmt::format("utterance id '{}' is not '<speaker>-<chapter>-<n>'", id));
        continue;
      }
      ManifestEntry e;
      e.path = (tp.parent_path() / (id + ".flac")).lexically_normal().string();
      if (!fs::exists(e.path)) {
        bad(fmt::format("audio file '{}' does not exist", e.path));
        continue;
      }
      e.text = text;
      e.speaker = id.substr(0, d1);
      e.split = split;
      e.line = static_cast<int64_t>(i + 1);
      e.extra = nlohmann::json::object({{"id", id}, {"chapter", id.substr(d1 + 1, d2 - d1 - 1)}});
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::vector<ManifestEntry> read_image_folder(const std::string& root, bool skip_bad, BadInputReport* report) {
  static const std::set<std::string> exts = {"png", "jpg", "jpeg", "bmp", "webp", "gif", "tif", "tiff"};
  return read_media_folder(root, skip_bad, report, "image", exts);
}

std::vector<ManifestEntry> read_video_folder(const std::string& root, bool skip_bad, BadInputReport* report) {
  static const std::set<std::string> exts = {"mp4", "mkv", "avi", "mov", "webm", "m4v", "mpg", "mpeg", "gif"};
  return read_media_folder(root, skip_bad, report, "video", exts);
}

}  // namespace mmref::data
