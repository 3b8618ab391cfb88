// English text normalisation: see normalize.h for the rules and examples.
//
// Implementation note: every transformation here only inspects or rewrites ASCII bytes (and a few whole
// multibyte punctuation sequences matched byte for byte). UTF-8 continuation and lead bytes are >= 0x80,
// so no ASCII rule can split a multibyte character.
//
// Ref: keithito/tacotron text/numbers.py (year and currency readings), written from the rules, not code.
#include "data/text/normalize.h"

#include <array>
#include <cctype>
#include <cstring>

#include "core/config.h"
#include "core/error.h"

namespace mmref::data {

void parse(config::Reader& r, TextNormOptions& o) {
  r.opt("lowercase", o.lowercase);
  r.opt("strip_punctuation", o.strip_punctuation);
  r.opt("numbers_to_words", o.numbers_to_words);
  r.opt("collapse_whitespace", o.collapse_whitespace);
  r.opt("keep_apostrophes", o.keep_apostrophes);
  r.finish();
}

namespace {

constexpr std::array<const char*, 20> kOnes = {"zero",    "one",     "two",       "three",    "four",
                                               "five",    "six",     "seven",     "eight",    "nine",
                                               "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                               "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
constexpr std::array<const char*, 10> kTens = {"",      "",      "twenty",  "thirty", "forty",
                                               "fifty", "sixty", "seventy", "eighty", "ninety"};
constexpr std::array<const char*, 5> kScales = {"", "thousand", "million", "billion", "trillion"};
constexpr int64_t kMaxNumber = 1000000000000000LL;  // 10^15 (exclusive)

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_alnum(char c) { return is_digit(c) || is_ascii_alpha(c); }
// A "word" byte: ASCII letter/digit or any byte of a multibyte character (letters of other scripts).
bool is_word_byte(char c) { return is_ascii_alnum(c) || static_cast<unsigned char>(c) >= 0x80; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

void append_word(std::string& out, const std::string& w) {
  if (!out.empty() && out.back() != ' ') out += ' ';
  out += w;
}

// 1..999 in words.
std::string below_thousand(int n) {
  std::string out;
  if (n >= 100) {
    out = std::string(kOnes[n / 100]) + " hundred";
    n %= 100;
  }
  if (n >= 20) {
    append_word(out, kTens[n / 10]);
    if (n % 10) append_word(out, kOnes[n % 10]);
  } else if (n > 0) {
    append_word(out, kOnes[n]);
  }
  return out;
}

std::string digits_to_words(const std::string& digits) {
  std::string out;
  for (char c : digits) append_word(out, kOnes[c - '0']);
  return out;
}

// Integer digit string (no sign, no commas) in words; digit by digit when it has a leading zero or is
// too long for the scale words.
std::string integer_string_to_words(const std::string& digits) {
  if (digits.size() > 1 && digits[0] == '0') return digits_to_words(digits);
  if (digits.size() > 15) return digits_to_words(digits);
  return number_to_words(std::stoll(digits));
}

// A number token found in the text.
struct NumberToken {
  std::string int_digits;   // commas removed; may be empty for ".5"
  std::string frac_digits;  // after '.', may be empty
  bool has_frac = false;
  bool had_commas = false;
  size_t end = 0;  // index just past the token (before any suffix)
};

// Parses digits [, ddd]* [. digits] starting at `i` (s[i] is a digit, or '.' followed by a digit).
NumberToken scan_number(const std::string& s, size_t i) {
  NumberToken t;
  size_t k = i;
  while (k < s.size() && is_digit(s[k])) t.int_digits += s[k++];
  // Thousands separators: only when the leading group has 1-3 digits and each group has exactly 3.
  if (!t.int_digits.empty() && t.int_digits.size() <= 3) {
    while (k + 3 < s.size() && s[k] == ',' && is_digit(s[k + 1]) && is_digit(s[k + 2]) &&
           is_digit(s[k + 3]) && (k + 4 >= s.size() || !is_digit(s[k + 4]))) {
      t.int_digits.append(s, k + 1, 3);
      t.had_commas = true;
      k += 4;
    }
  }
  if (k + 1 < s.size() && s[k] == '.' && is_digit(s[k + 1])) {
    t.has_frac = true;
    ++k;
    while (k < s.size() && is_digit(s[k])) t.frac_digits += s[k++];
  }
  t.end = k;
  return t;
}

std::string plain_number_words(const NumberToken& t) {
  std::string out;
  if (!t.int_digits.empty()) out = integer_string_to_words(t.int_digits);
  if (t.has_frac) {
    append_word(out, "point");
    append_word(out, digits_to_words(t.frac_digits));
  }
  return out;
}

struct Currency {
  const char* symbol;  // UTF-8 bytes
  const char* unit;
  const char* units;
  const char* sub;
  const char* subs;
};
constexpr std::array<Currency, 3> kCurrencies = {{{"$", "dollar", "dollars", "cent", "cents"},
                                                  {"\xE2\x82\xAC", "euro", "euros", "cent", "cents"},
                                                  {"\xC2\xA3", "pound", "pounds", "penny", "pence"}}};

std::string currency_words(const NumberToken& t, const Currency& c) {
  const bool simple_cents = t.has_frac && (t.frac_digits.size() == 1 || t.frac_digits.size() == 2);
  if (!t.has_frac || simple_cents) {
    const bool int_is_one = t.int_digits == "1";
    const bool int_is_zero = t.int_digits.empty() || t.int_digits.find_first_not_of('0') == std::string::npos;
    int cents = 0;
    if (simple_cents) {
      cents = std::stoi(t.frac_digits);
      if (t.frac_digits.size() == 1) cents *= 10;
    }
    std::string out;
    if (!int_is_zero || cents == 0) {
      out = integer_string_to_words(t.int_digits.empty() ? "0" : t.int_digits);
      append_word(out, int_is_one ? c.unit : c.units);
    }
    if (cents > 0) {
      append_word(out, number_to_words(cents));
      append_word(out, cents == 1 ? c.sub : c.subs);
    }
    return out;
  }
  std::string out = plain_number_words(t);
  append_word(out, c.units);
  return out;
}

// Ordinal suffix at s[k..k+1] (st/nd/rd/th, any case) not followed by a letter.
bool ordinal_suffix_at(const std::string& s, size_t k) {
  if (k + 1 >= s.size()) return false;
  char a = static_cast<char>(s[k] | 0x20), b = static_cast<char>(s[k + 1] | 0x20);
  bool ok =
      (a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') || (a == 't' && b == 'h');
  if (!ok || !is_ascii_alpha(s[k]) || !is_ascii_alpha(s[k + 1])) return false;
  return k + 2 >= s.size() || !is_ascii_alpha(s[k + 2]);
}

// "ninety" -> "nineties", "five" -> "fives", "six" -> "sixes".
std::string pluralize_last_word(const std::string& words) {
  if (words.back() == 'y') return words.substr(0, words.size() - 1) + "ies";
  if (words.back() == 'x') return words + "es";
  return words + "s";
}

// Appends number words with spaces separating them from neighbouring word characters.
void emit(std::string& out, const std::string& words, const std::string& s, size_t next) {
  if (!out.empty() && is_word_byte(out.back())) out += ' ';
  out += words;
  if (next < s.size() && is_word_byte(s[next])) out += ' ';
}

std::string expand_numbers(const std::string& s) {
  std::string out;
  out.reserve(s.size() * 2);
  size_t i = 0;
  while (i < s.size()) {
    const char prev = i > 0 ? s[i - 1] : ' ';
    // Currency symbol followed by a number, optionally after a minus sign ("-$5").
    bool done = false;
    const bool minus = s[i] == '-' && !is_ascii_alnum(prev) && prev != '.';
    for (const Currency& c : kCurrencies) {
      const size_t at = minus ? i + 1 : i;
      const size_t n = std::strlen(c.symbol);
      if (s.compare(at, n, c.symbol) == 0 && at + n < s.size() && is_digit(s[at + n])) {
        NumberToken t = scan_number(s, at + n);
        std::string words = currency_words(t, c);
        if (minus) words.insert(0, "minus ");
        emit(out, words, s, t.end);
        i = t.end;
        done = true;
        break;
      }
    }
    if (done) continue;
    bool negative = false;
    size_t start = i;
    if (s[i] == '-' && i + 1 < s.size() && is_digit(s[i + 1]) && !is_ascii_alnum(prev) && prev != '.') {
      negative = true;
      start = i + 1;
    }
    const bool leading_point =
        s[start] == '.' && start + 1 < s.size() && is_digit(s[start + 1]) && !is_digit(prev);
    if (!is_digit(s[start]) && !leading_point) {
      out += s[i++];
      continue;
    }
    NumberToken t = scan_number(s, start);
    size_t end = t.end;
    std::string words;
    if (end < s.size() && s[end] == '%') {
      words = plain_number_words(t);
      append_word(words, "percent");
      ++end;
    } else if (!t.has_frac && !t.int_digits.empty() && t.int_digits.size() <= 15 &&
               ordinal_suffix_at(s, end)) {
      words = ordinal_to_words(std::stoll(t.int_digits));
      end += 2;
    } else if (!negative && !t.has_frac && !t.had_commas && t.int_digits.size() == 4 &&
               t.int_digits[0] != '0' && std::stoi(t.int_digits) >= 1100 && std::stoi(t.int_digits) <= 2099) {
      words = year_to_words(std::stoi(t.int_digits));
    } else {
      words = plain_number_words(t);
    }
    // Plural numbers: "1990s" -> "nineteen nineties", "80s" -> "eighties".
    if (!t.has_frac && !t.int_digits.empty() && end == t.end && end < s.size() && (s[end] | 0x20) == 's' &&
        (end + 1 >= s.size() || !is_ascii_alpha(s[end + 1]))) {
      words = pluralize_last_word(words);
      ++end;
    }
    if (negative) words.insert(0, "minus ");
    emit(out, words, s, end);
    i = end;
  }
  return out;
}

void lowercase_ascii(std::string& s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

// Multibyte punctuation, matched as whole UTF-8 sequences.
constexpr std::array<const char*, 14> kUnicodePunct = {
    "\xE2\x80\x9C",  // “
    "\xE2\x80\x9D",  // ”
    "\xE2\x80\x9E",  // „
    "\xE2\x80\x98",  // ‘
    "\xE2\x80\x93",  // –
    "\xE2\x80\x94",  // —
    "\xE2\x80\x95",  // ―
    "\xE2\x80\xA6",  // …
    "\xC2\xAB",      // «
    "\xC2\xBB",      // »
    "\xC2\xBF",      // ¿
    "\xC2\xA1",      // ¡
    "\xC2\xB7",      // ·
    "\xE2\x80\xB2",  // ′
};
constexpr const char* kRightSingleQuote = "\xE2\x80\x99";  // ’ (used as an apostrophe)
constexpr const char* kNoBreakSpace = "\xC2\xA0";

bool is_letter_byte(char c) { return is_ascii_alpha(c) || static_cast<unsigned char>(c) >= 0x80; }

std::string strip_punct(const std::string& s, bool keep_apostrophes) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      if (c == '\'' || !(std::ispunct(u))) {
        if (c != '\'') {
          out += c;
        } else {
          bool internal = keep_apostrophes && !out.empty() && is_letter_byte(out.back()) &&
                          i + 1 < s.size() && is_letter_byte(s[i + 1]);
          out += internal ? '\'' : ' ';
        }
      } else {
        out += ' ';
      }
      ++i;
      continue;
    }
    if (s.compare(i, 3, kRightSingleQuote) == 0) {
      bool internal = keep_apostrophes && !out.empty() && is_letter_byte(out.back()) && i + 3 < s.size() &&
                      is_letter_byte(s[i + 3]);
      out += internal ? '\'' : ' ';
      i += 3;
      continue;
    }
    if (s.compare(i, 2, kNoBreakSpace) == 0) {
      out += ' ';
      i += 2;
      continue;
    }
    bool matched = false;
    for (const char* p : kUnicodePunct) {
      size_t n = std::strlen(p);
      if (s.compare(i, n, p) == 0) {
        out += ' ';
        i += n;
        matched = true;
        break;
      }
    }
    if (!matched) out += s[i++];
  }
  return out;
}

std::string collapse_ws(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool pending = false;
  for (char c : s) {
    if (is_space(c)) {
      pending = !out.empty();
      continue;
    }
    if (pending) out += ' ';
    pending = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string number_to_words(int64_t n) {
  if (n <= -kMaxNumber || n >= kMaxNumber) {
    MMREF_FAIL("number_to_words: {} is out of range (|n| must be below 10^15); read it digit by digit", n);
  }
  if (n == 0) return "zero";
  if (n < 0) return "minus " + number_to_words(-n);
  std::string out;
  int64_t scale = 1000000000000LL;
  for (int k = 4; k >= 0; --k, scale /= 1000) {
    int group = static_cast<int>((n / scale) % 1000);
    if (group == 0) continue;
    append_word(out, below_thousand(group));
    if (k > 0) append_word(out, kScales[k]);
  }
  return out;
}

std::string ordinal_to_words(int64_t n) {
  if (n < 0) MMREF_FAIL("ordinal_to_words: {} is negative; ordinals need n >= 0", n);
  std::string words = number_to_words(n);
  size_t sp = words.rfind(' ');
  std::string head = sp == std::string::npos ? "" : words.substr(0, sp + 1);
  std::string last = sp == std::string::npos ? words : words.substr(sp + 1);
  static constexpr std::array<std::pair<const char*, const char*>, 6> kIrregular = {{{"one", "first"},
                                                                                     {"two", "second"},
                                                                                     {"three", "third"},
                                                                                     {"five", "fifth"},
                                                                                     {"eight", "eighth"},
                                                                                     {"nine", "ninth"}}};
  for (const auto& [card, ord] : kIrregular) {
    if (last == card) return head + ord;
  }
  if (last == "twelve") return head + "twelfth";
  if (last.back() == 'y') return head + last.substr(0, last.size() - 1) + "ieth";
  return head + last + "th";
}

std::string year_to_words(int64_t n) {
  if (n < 1100 || n > 2099) return number_to_words(n);
  if (n == 2000) return "two thousand";
  if (n > 2000 && n < 2010) return "two thousand " + std::string(kOnes[n - 2000]);
  const int hi = static_cast<int>(n / 100), lo = static_cast<int>(n % 100);
  if (lo == 0) return number_to_words(hi) + " hundred";
  if (lo < 10) return number_to_words(hi) + " oh " + kOnes[lo];
  return number_to_words(hi) + " " + number_to_words(lo);
}

std::string normalize_text(const std::string& s, const TextNormOptions& o) {
  std::string t = o.numbers_to_words ? expand_numbers(s) : s;
  if (o.lowercase) lowercase_ascii(t);
  if (o.strip_punctuation) t = strip_punct(t, o.keep_apostrophes);
  if (o.collapse_whitespace) t = collapse_ws(t);
  return t;
}

}  // namespace mmref::data
