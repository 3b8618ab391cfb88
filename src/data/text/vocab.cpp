// Character and phoneme vocabularies: building, encode/decode, JSON and wenet units.txt files.
// Ref: wenet tools/text2token.py / units.txt ("unit id" per line, <blank> 0, <unk> 1).
#include "data/text/vocab.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace mmref::data {

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Decodes one code point starting at s[i]; returns its byte length, or 0 when invalid.
size_t utf8_len(const std::string& s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and values beyond U+10FFFF are invalid.
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[n] || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) return 0;
  *cp = v;
  return n;
}

struct CodePoint {
  std::string bytes;
  uint32_t cp;
};

std::vector<CodePoint> decode_utf8(const std::string& s) {
  std::vector<CodePoint> out;
  size_t i = 0;
  while (i < s.size()) {
    uint32_t cp = 0;
    size_t n = utf8_len(s, i, &cp);
    if (n == 0) {
      MMREF_FAIL("invalid UTF-8 at byte {} of the text '{}'; convert the text to UTF-8", i, s.substr(0, 40));
    }
    out.push_back({s.substr(i, n), cp});
    i += n;
  }
  return out;
}

bool is_special(const std::string& u) {
  return u == UnitVocab::kBlank || u == UnitVocab::kUnk || u == UnitVocab::kPad || u == UnitVocab::kSos ||
         u == UnitVocab::kEos;
}

const char* kind_name(UnitVocab::Kind k) {
  return k == UnitVocab::Kind::kChar ? "char" : k == UnitVocab::Kind::kPhoneme ? "phoneme" : "piece";
}

}  // namespace

std::vector<std::string> split_utf8(const std::string& s) {
  std::vector<std::string> out;
  for (auto& c : decode_utf8(s)) out.push_back(std::move(c.bytes));
  return out;
}

const std::string& UnitVocab::unit(int64_t id) const {
  if (id < 0 || id >= size()) {
    MMREF_FAIL("vocabulary id {} is out of range [0, {}); the ids do not come from this vocabulary", id,
               size());
  }
  return units_[static_cast<size_t>(id)];
}

int64_t UnitVocab::id(const std::string& unit) const {
  auto it = index_.find(unit);
  return it == index_.end() ? -1 : it->second;
}

std::vector<std::string> UnitVocab::split(const std::string& text) const {
  std::vector<std::string> out;
  bool join_next = false;  // after a tie bar: the next code point joins the current unit
  for (auto& c : decode_utf8(text)) {
    if (c.cp < 0x80 && is_ascii_space(static_cast<char>(c.cp))) {
      out.emplace_back(kSpace);
      join_next = false;
      continue;
    }
    if (kind_ == Kind::kPhoneme && !out.empty() && out.back() != kSpace) {
      const bool combining = c.cp >= 0x300 && c.cp <= 0x36F;
      const bool tie = c.cp == 0x361 || c.cp == 0x35C;
      if (combining || join_next) {
        out.back() += c.bytes;
        join_next = tie;
        continue;
      }
    }
    join_next = false;
    out.push_back(std::move(c.bytes));
  }
  return out;
}

std::vector<int64_t> UnitVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& u : split(text)) {
    int64_t i = id(u);
    ids.push_back(i < 0 ? unk_id() : i);
  }
  return ids;
}

std::string UnitVocab::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  for (int64_t i : ids) {
    const std::string& u = unit(i);
    if (u == kSpace) {
      out += ' ';
    } else if (is_special(u)) {
      if (!skip_special) out += u;
    } else {
      for (size_t at = 0; at < u.size();) {  // "▁" (3 bytes) inside a piece is a word boundary
        if (u.compare(at, 3, kSpace) == 0) {
          out += ' ';
          at += 3;
        } else {
          out += u[at++];
        }
      }
    }
  }
  return out;
}

void UnitVocab::build_from(const std::vector<std::string>& texts, const VocabOptions& o) {
  std::set<std::string> seen;  // std::string compares bytes: UTF-8 byte order = code point order
  for (size_t t = 0; t < texts.size(); ++t) {
    try {
      for (auto& u : split(texts[t])) seen.insert(std::move(u));
    } catch (const Error& e) {
      MMREF_FAIL("building the {} vocabulary: text #{}: {}", kind_name(kind_), t, e.what());
    }
  }
  units_ = {kBlank, kUnk};
  if (o.add_pad) units_.emplace_back(kPad);
  if (o.add_sos_eos) {
    units_.emplace_back(kSos);
    units_.emplace_back(kEos);
  }
  for (const auto& u : seen) {
    if (!is_special(u)) units_.push_back(u);
  }
  finalize("built vocabulary");
}

void UnitVocab::finalize(const std::string& where) {
  if (units_.size() < 2 || units_[0] != kBlank || units_[1] != kUnk) {
    MMREF_FAIL("{}: the first units must be '<blank>' (id 0) and '<unk>' (id 1); rebuild the vocabulary",
               where);
  }
  index_.clear();
  pad_ = sos_ = eos_ = -1;
  for (size_t i = 0; i < units_.size(); ++i) {
    const std::string& u = units_[i];
    if (u.empty()) MMREF_FAIL("{}: unit {} is empty", where, i);
    if (!index_.emplace(u, static_cast<int64_t>(i)).second) {
      MMREF_FAIL("{}: unit '{}' appears twice (ids {} and {})", where, u, index_[u], i);
    }
    if (u == kPad) pad_ = static_cast<int64_t>(i);
    if (u == kSos) sos_ = static_cast<int64_t>(i);
    if (u == kEos) eos_ = static_cast<int64_t>(i);
  }
}

void UnitVocab::save_json(const std::string& path) const {
  nlohmann::json j;
  j["kind"] = kind_name(kind_);
  j["units"] = units_;
  j["blank"] = blank_id();
  j["unk"] = unk_id();
  j["pad"] = pad_;
  j["sos"] = sos_;
  j["eos"] = eos_;
  fs::atomic_write(path, j.dump(1) + "\n");
}

void UnitVocab::save_units(const std::string& path) const {
  fs::atomic_write(path, [&](std::ostream& os) {
    for (size_t i = 0; i < units_.size(); ++i) os << units_[i] << ' ' << i << '\n';
  });
}

void UnitVocab::load_json_into(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(fs::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    MMREF_FAIL("{}: not a valid vocabulary JSON file ({}); re-save it with save_vocab", path, e.what());
  }
  if (!j.is_object() || !j.contains("units") || !j["units"].is_array()) {
    MMREF_FAIL("{}: a vocabulary JSON needs a \"units\" list; re-save it with save_vocab", path);
  }
  if (j.contains("kind") && j["kind"] != kind_name(kind_)) {
    MMREF_FAIL("{}: this is a '{}' vocabulary, expected '{}'", path, j["kind"].dump(), kind_name(kind_));
  }
  units_.clear();
  for (const auto& u : j["units"]) {
    if (!u.is_string()) MMREF_FAIL("{}: \"units\" must hold strings, found {}", path, u.dump());
    units_.push_back(u.get<std::string>());
  }
  finalize(path);
}

void UnitVocab::load_units_into(const std::string& path) {
  std::istringstream in(fs::read_file(path));
  std::string line;
  int64_t lineno = 0;
  units_.clear();
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos || sp == 0) {
      MMREF_FAIL("{}:{}: expected \"unit id\", got '{}'", path, lineno, line);
    }
    const std::string unit = line.substr(0, sp);
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(line.substr(sp + 1), &used);
      if (used != line.size() - sp - 1) id = -1;
    } catch (const std::exception&) {
      id = -1;
    }
    if (id != static_cast<int64_t>(units_.size())) {
      MMREF_FAIL("{}:{}: expected id {} for unit '{}', got '{}'; ids must run 0, 1, 2, ... in order", path,
                 lineno, units_.size(), unit, line.substr(sp + 1));
    }
    units_.push_back(unit);
  }
  finalize(path);
}

CharVocab CharVocab::build(const std::vector<std::string>& texts, const VocabOptions& o) {
  CharVocab v;
  v.build_from(texts, o);
  return v;
}
CharVocab CharVocab::load_json(const std::string& path) {
  CharVocab v;
  v.load_json_into(path);
  return v;
}
CharVocab CharVocab::load_units(const std::string& path) {
  CharVocab v;
  v.load_units_into(path);
  return v;
}

PhonemeVocab PhonemeVocab::build(const std::vector<std::string>& phoneme_texts, const VocabOptions& o) {
  PhonemeVocab v;
  v.build_from(phoneme_texts, o);
  return v;
}
PhonemeVocab PhonemeVocab::load_json(const std::string& path) {
  PhonemeVocab v;
  v.load_json_into(path);
  return v;
}
PhonemeVocab PhonemeVocab::load_units(const std::string& path) {
  PhonemeVocab v;
  v.load_units_into(path);
  return v;
}

void save_vocab(const UnitVocab& v, const std::string& dir, const std::string& name) {
  const std::string base =
      name.empty() ? (v.kind() == UnitVocab::Kind::kChar ? "chars" : v.kind() == UnitVocab::Kind::kPhoneme ? "phonemes" : "pieces") : name;
  fs::make_dirs(dir);
  v.save_json(dir + "/" + base + ".json");
  v.save_units(dir + "/" + base + "_units.txt");
}

CharVocab load_char_vocab(const std::string& dir, const std::string& name) {
  return CharVocab::load_json(dir + "/" + name + ".json");
}

PhonemeVocab load_phoneme_vocab(const std::string& dir, const std::string& name) {
  return PhonemeVocab::load_json(dir + "/" + name + ".json");
}

}  // namespace mmref::data
