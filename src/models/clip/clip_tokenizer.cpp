// CLIP BPE tokenizer; see clip_tokenizer.h.
#include "models/clip/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <sstream>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include "core/error.h"

namespace mmref::models {

namespace {

std::string utf8(UChar32 c) {
  std::string s;
  icu::UnicodeString(c).toUTF8String(s);
  return s;
}

std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) MMREF_FAIL("CLIP vocabulary '{}': cannot open (expected bpe_simple_vocab_16e6.txt.gz)", path);
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  const bool bad = n < 0;
  gzclose(f);
  if (bad) MMREF_FAIL("CLIP vocabulary '{}': not a readable gzip file", path);
  return out;
}

// html.unescape: numeric references and common named entities (with or without ';' for the classic
// ones, as Python accepts "&amp" without the semicolon).
std::string html_unescape(const std::string& s) {
  static const std::map<std::string, UChar32> named = {
      {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
      {"nbsp", 0xA0},    {"copy", 0xA9},    {"reg", 0xAE},     {"trade", 0x2122}, {"mdash", 0x2014},
      {"ndash", 0x2013}, {"hellip", 0x2026}, {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201C},
      {"rdquo", 0x201D}, {"laquo", 0xAB},   {"raquo", 0xBB},   {"deg", 0xB0},     {"middot", 0xB7},
      {"bull", 0x2022},  {"times", 0xD7},   {"divide", 0xF7},  {"euro", 0x20AC},  {"pound", 0xA3},
      {"yen", 0xA5},     {"cent", 0xA2},    {"sect", 0xA7},    {"para", 0xB6},    {"plusmn", 0xB1},
      {"frac12", 0xBD},  {"frac14", 0xBC},  {"frac34", 0xBE},  {"eacute", 0xE9},  {"egrave", 0xE8},
      {"aacute", 0xE1},  {"agrave", 0xE0},  {"uuml", 0xFC},    {"ouml", 0xF6},    {"auml", 0xE4},
      {"ccedil", 0xE7},  {"ntilde", 0xF1},  {"szlig", 0xDF},   {"iexcl", 0xA1},   {"iquest", 0xBF}};
  static const char* no_semicolon[] = {"amp", "lt", "gt", "quot", "nbsp", "copy", "reg"};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t j = i + 1;
    if (j < s.size() && s[j] == '#') {
      size_t k = j + 1;
      const bool hex = k < s.size() && (s[k] == 'x' || s[k] == 'X');
      if (hex) ++k;
      const size_t start = k;
      while (k < s.size() && (hex ? std::isxdigit(static_cast<unsigned char>(s[k])) : std::isdigit(static_cast<unsigned char>(s[k])))) ++k;
      if (k > start && k - start < 9) {
        long cp = std::strtol(s.substr(start, k - start).c_str(), nullptr, hex ? 16 : 10);
        if (cp <= 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
        out += utf8(static_cast<UChar32>(cp));
        i = (k < s.size() && s[k] == ';') ? k + 1 : k;
        continue;
      }
    } else {
      size_t k = j;
      while (k < s.size() && std::isalnum(static_cast<unsigned char>(s[k])) && k - j < 10) ++k;
      const std::string name = s.substr(j, k - j);
      auto it = named.find(name);
      if (it != named.end()) {
        const bool semi = k < s.size() && s[k] == ';';
        const bool bare_ok = std::any_of(std::begin(no_semicolon), std::end(no_semicolon),
                                         [&](const char* n) { return name == n; });
        if (semi || bare_ok) {
          out += utf8(it->second);
          i = semi ? k + 1 : k;
          continue;
        }
      }
    }
    out += s[i++];
  }
  return out;
}

// The ftfy.fix_text steps that change captions: NFC, uncurled quotes, Latin ligatures, character width.
std::string ftfy_like(const std::string& s) {
  UErrorCode st = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(st);
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(st);
  if (U_FAILURE(st)) MMREF_FAIL("ICU normalizers unavailable: {}", u_errorName(st));
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(s);
  icu::UnicodeString out;
  for (int32_t i = 0; i < in.length();) {
    const UChar32 c = in.char32At(i);
    i += U16_LENGTH(c);
    switch (c) {
      case 0x2018: case 0x2019: case 0x201A: case 0x201B: out.append(UChar32('\'')); continue;  // ‘ ’ ‚ ‛
      case 0x201C: case 0x201D: case 0x201E: case 0x201F: out.append(UChar32('"')); continue;   // “ ” „ ‟
      default: break;
    }
    const bool ligature = (c >= 0xFB00 && c <= 0xFB06) || c == 0x0132 || c == 0x0133 || c == 0x01C7 ||
                          c == 0x01C8 || c == 0x01C9 || c == 0x01CA || c == 0x01CB || c == 0x01CC ||
                          c == 0x01F1 || c == 0x01F2 || c == 0x01F3;
    const bool width = (c >= 0xFF01 && c <= 0xFFEE) || c == 0x3000;  // full-width ASCII, half-width kana
    if (ligature || width) {
      icu::UnicodeString one(c), mapped;
      nfkc->normalize(one, mapped, st);
      out.append(mapped);
    } else {
      out.append(c);
    }
  }
  icu::UnicodeString norm;
  nfc->normalize(out, norm, st);
  std::string r;
  norm.toUTF8String(r);
  return r;
}

bool is_space_cp(UChar32 c) { return u_isUWhiteSpace(c) || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x1F || c == 0x85; }

}  // namespace

std::string ClipTokenizer::clean(const std::string& text) {
  std::string t = html_unescape(html_unescape(ftfy_like(text)));
  // strip + whitespace runs -> ' ' (Python's \s), then lower-case (str.lower, full mapping).
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(t);
  icu::UnicodeString w;
  bool pending_space = false;
  for (int32_t i = 0; i < u.length();) {
    const UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    if (is_space_cp(c)) {
      pending_space = w.length() > 0;
      continue;
    }
    if (pending_space) w.append(UChar32(' ')), pending_space = false;
    w.append(c);
  }
  w.toLower(icu::Locale::getRoot());
  std::string r;
  w.toUTF8String(r);
  return r;
}

ClipTokenizer::ClipTokenizer(const std::string& path) {
  // bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to 256 + n.
  byte_encoder_.resize(256);
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<bool> have(256, false);
  for (int b : bs) have[b] = true, byte_encoder_[b] = utf8(b);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (!have[b]) byte_encoder_[b] = utf8(256 + n++);
  }
  for (int b = 0; b < 256; ++b) byte_decoder_[byte_encoder_[b]] = static_cast<uint8_t>(b);

  const std::string text = read_gz(path);
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  const size_t n_merges = 49152 - 256 - 2;
  if (lines.size() < n_merges + 1 || lines[0].rfind("\"bpe_simple_vocab", 0) != 0) {
    MMREF_FAIL("CLIP vocabulary '{}': not bpe_simple_vocab_16e6 ({} lines, first '{}')", path, lines.size(),
               lines.empty() ? "" : lines[0].substr(0, 40));
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (size_t i = 1; i <= n_merges; ++i) {
    const auto sp = lines[i].find(' ');
    if (sp == std::string::npos) MMREF_FAIL("CLIP vocabulary '{}': line {} is not a merge pair", path, i + 1);
    merges.emplace_back(lines[i].substr(0, sp), lines[i].substr(sp + 1));
  }
  for (int b : bs) decoder_.push_back(byte_encoder_[b]);
  for (int b = 0; b < 256; ++b) {
    if (!have[b]) decoder_.push_back(byte_encoder_[b]);
  }
  const size_t base = decoder_.size();
  for (size_t i = 0; i < base; ++i) decoder_.push_back(decoder_[i] + "</w>");
  for (size_t i = 0; i < merges.size(); ++i) {
    decoder_.push_back(merges[i].first + merges[i].second);
    ranks_[merges[i]] = static_cast<int64_t>(i);
  }
  decoder_.push_back("<|startoftext|>");
  decoder_.push_back("<|endoftext|>");
  for (size_t i = 0; i < decoder_.size(); ++i) encoder_[decoder_[i]] = static_cast<int64_t>(i);
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& token) const {
  if (auto it = cache_.find(token); it != cache_.end()) return it->second;
  // The special tokens are pre-seeded in the reference's cache: they stay whole.
  if (token == "<|startoftext|>" || token == "<|endoftext|>") return {token};
  // Split into code points (the byte stand-ins), '</w>' on the last.
  std::vector<std::string> word;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(token);
  for (int32_t i = 0; i < u.length();) {
    const UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    word.push_back(utf8(c));
  }
  if (word.empty()) return {};
  word.back() += "</w>";
  while (word.size() > 1) {
    int64_t best = LLONG_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = ranks_.find({word[i], word[i + 1]});
      if (it != ranks_.end() && it->second < best) best = it->second, at = i;
    }
    if (best == LLONG_MAX) break;
    const std::string first = word[at], second = word[at + 1];
    std::vector<std::string> next;
    for (size_t i = 0; i < word.size();) {  // merge every occurrence of the pair, left to right
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        next.push_back(first + second), i += 2;
      } else {
        next.push_back(word[i++]);
      }
    }
    word = std::move(next);
  }
  cache_[token] = word;
  return word;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  static const char* kPattern =
      "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";
  UErrorCode st = U_ZERO_ERROR;
  const icu::UnicodeString cleaned = icu::UnicodeString::fromUTF8(clean(text));
  std::unique_ptr<icu::RegexMatcher> m(
      new icu::RegexMatcher(icu::UnicodeString::fromUTF8(kPattern), cleaned, UREGEX_CASE_INSENSITIVE, st));
  if (U_FAILURE(st)) MMREF_FAIL("CLIP tokenizer: ICU regex failed: {}", u_errorName(st));
  std::vector<int64_t> ids;
  while (m->find()) {
    std::string tok;
    m->group(st).toUTF8String(tok);
    std::string mapped;
    for (unsigned char b : tok) mapped += byte_encoder_[b];
    for (const auto& piece : bpe(mapped)) ids.push_back(encoder_.at(piece));
  }
  return ids;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string joined;
  for (int64_t id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(decoder_.size())) MMREF_FAIL("CLIP decode: id {} out of range", id);
    joined += decoder_[id];
  }
  std::string bytes;
  const icu::UnicodeString u = icu::UnicodeString::fromUTF8(joined);
  for (int32_t i = 0; i < u.length();) {
    const UChar32 c = u.char32At(i);
    i += U16_LENGTH(c);
    const std::string cs = utf8(c);
    auto it = byte_decoder_.find(cs);
    if (it != byte_decoder_.end()) {
      bytes += static_cast<char>(it->second);
    } else {
      bytes += cs;  // '</w>' letters and special-token text are plain ASCII stand-ins already
    }
  }
  // Invalid utf-8 -> U+FFFD (Python's errors="replace"), then '</w>' -> ' '.
  std::string valid;
  icu::UnicodeString::fromUTF8(bytes).toUTF8String(valid);
  std::string out;
  for (size_t p = 0; p < valid.size();) {
    if (valid.compare(p, 4, "</w>") == 0) {
      out += ' ', p += 4;
    } else {
      out += valid[p++];
    }
  }
  return out;
}

at::Tensor ClipTokenizer::tokenize(const std::vector<std::string>& texts, int64_t context, bool truncate) const {
  at::Tensor out = at::zeros({static_cast<int64_t>(texts.size()), context}, at::kLong);
  auto a = out.accessor<int64_t, 2>();
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int64_t> ids{kSot};
    const auto body = encode(texts[i]);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(kEot);
    if (static_cast<int64_t>(ids.size()) > context) {
      if (!truncate) {
        MMREF_FAIL("CLIP tokenize: text {} has {} tokens, more than the context {} (pass truncate)", i, ids.size(),
                   context);
      }
      ids.resize(static_cast<size_t>(context));
      ids.back() = kEot;
    }
    for (size_t j = 0; j < ids.size(); ++j) a[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = ids[j];
  }
  return out;
}

}  // namespace mmref::models
