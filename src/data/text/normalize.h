// English text normalisation for TTS/ASR transcripts: numbers to words, ASCII lowercasing, punctuation
// stripping and whitespace collapsing, UTF-8 safe (multibyte characters are never split; non-ASCII
// letters are kept as they are).
//
//   normalize_text("In 1984 I paid $5 for 3.14 kg, 50% off!", {})
//     -> "in nineteen eighty four i paid five dollars for three point one four kg fifty percent off"
//
// Number forms (applied first, so '$', '%', '.', ',' are still there to read):
//   integers        "123" -> "one hundred twenty three" (no "and"); "1,000,000" -> "one million";
//                   up to 999 trillion; longer digit runs and ones with a leading zero ("007") are read
//                   digit by digit
//   negatives       "-5" -> "minus five" (a '-' right before a digit, not after a letter or digit)
//   plurals         "1990s" -> "nineteen nineties", "80s" -> "eighties"
//   decimals        "3.14" -> "three point one four"; ".5" -> "point five"
//   ordinals        "1st" "22nd" "3rd" "11th" -> "first" "twenty second" "third" "eleventh"
//   years           a bare 4-digit number in 1100..2099: "1984" -> "nineteen eighty four",
//                   "1900" -> "nineteen hundred", "1905" -> "nineteen oh five", "2000" -> "two thousand",
//                   "2005" -> "two thousand five", "2019" -> "twenty nineteen"
//   currency        "$5" -> "five dollars", "$1" -> "one dollar", "$5.50" -> "five dollars fifty cents",
//                   "$0.99" -> "ninety nine cents", "-$5" -> "minus five dollars"; likewise "€" (euros) and
//                   "£" (pounds)
//   percentages     "50%" -> "fifty percent", "3.5%" -> "three point five percent"
// Punctuation: ASCII punctuation and common Unicode punctuation (curly quotes, dashes, ellipsis, « » ¿ ¡)
// become spaces; with keep_apostrophes an apostrophe between two letters stays ("don't"; U+2019 becomes
// "'"), quotes around words go.
//
// Ref: keithito/tacotron text/numbers.py and cleaners.py (rules for years and currency, not code).
#pragma once
#include <cstdint>
#include <string>

namespace mmref::config {
class Reader;
}

namespace mmref::data {

struct TextNormOptions {
  bool lowercase = true;  // ASCII A-Z only; other letters are kept as they are
  bool strip_punctuation = true;
  bool numbers_to_words = true;
  bool collapse_whitespace = true;  // runs of whitespace -> one space, trimmed
  bool keep_apostrophes = true;     // word-internal apostrophes survive strip_punctuation
};

// YAML keys: lowercase, strip_punctuation, numbers_to_words, collapse_whitespace, keep_apostrophes.
void parse(config::Reader& r, TextNormOptions& o);

std::string normalize_text(const std::string& s, const TextNormOptions& o = {});

// Building blocks (exposed for tests and other modules).
// Cardinal number in words: 0 -> "zero", -12 -> "minus twelve", 1000001 -> "one million one".
// |n| must be below 10^15 (throws mmref::Error otherwise).
std::string number_to_words(int64_t n);
// Ordinal: 1 -> "first", 22 -> "twenty second", 100 -> "one hundredth". n >= 0, below 10^15.
std::string ordinal_to_words(int64_t n);
// Year reading for 1100..2099 (other values fall back to number_to_words).
std::string year_to_words(int64_t n);

}  // namespace mmref::data
