// Text normalisation tests (suite TextNorm*): a hand-checked table of inputs and expected outputs,
// number/ordinal/year building blocks, option switches and YAML parsing.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='TextNorm*'
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "data/text/normalize.h"

namespace mmref::data {
namespace {

// Hand-checked with the default options (lowercase, strip punctuation, numbers to words, collapse
// whitespace, keep apostrophes):
//
//   input                                  expected
//   "Hello, World!"                        "hello world"
//   "123"                                  "one hundred twenty three"          (no "and")
//   "0"                                    "zero"
//   "-42"                                  "minus forty two"
//   "1,000,000"                            "one million"                       (thousands separators)
//   "1,2"                                  "one two"                           (not a separator)
//   "3.14"                                 "three point one four"
//   "-0.5" / ".5"                          "minus zero point five" / "point five"
//   "1st place" "22nd" "3rd" "11th" "100th"  first place / twenty second / third / eleventh / one hundredth
//   "1984" "2005" "2000" "1900" "1905" "2019"  years 1100..2099
//   "1099" "2100"                          not years: plain cardinals
//   "the 1990s" "80s"                      plural numbers: nineteen nineties / eighties
//   "$5" "$1" "$5.50" "$0.99" "$1.01"      currency with dollars/cents, singular for one; "-$5" minus
//   "50%" "3.5%"                           percentages
//   "Don't" "'quoted'" "it’s"              apostrophes kept only inside words, ’ -> '
//   "Café Über" "日本語 text"              non-ASCII letters kept unchanged (ASCII lowercased)
const std::vector<std::pair<std::string, std::string>> kTable = {
    {"Hello, World!", "hello world"},
    {"123", "one hundred twenty three"},
    {"0", "zero"},
    {"-42", "minus forty two"},
    {"1,000,000", "one million"},
    {"1,2", "one two"},
    {"1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"},
    {"1000001", "one million one"},
    {"1000000000000", "one trillion"},
    {"999999999999999",
     "nine hundred ninety nine trillion nine hundred ninety nine billion nine hundred ninety nine "
     "million nine hundred ninety nine thousand nine hundred ninety nine"},
    {"007", "zero zero seven"},
    {"3.14", "three point one four"},
    {"-0.5", "minus zero point five"},
    {".5", "point five"},
    {"1st place", "first place"},
    {"22nd", "twenty second"},
    {"3rd", "third"},
    {"11th", "eleventh"},
    {"100th", "one hundredth"},
    {"2nd-hand", "second hand"},
    {"1984", "nineteen eighty four"},
    {"2005", "two thousand five"},
    {"2000", "two thousand"},
    {"1900", "nineteen hundred"},
    {"1905", "nineteen oh five"},
    {"2019", "twenty nineteen"},
    {"1099", "one thousand ninety nine"},
    {"2100", "two thousand one hundred"},
    {"the 1990s", "the nineteen nineties"},
    {"80s", "eighties"},
    {"$5", "five dollars"},
    {"$1", "one dollar"},
    {"$5.50", "five dollars fifty cents"},
    {"$0.99", "ninety nine cents"},
    {"$1.01", "one dollar one cent"},
    {"$2,500", "two thousand five hundred dollars"},
    {"-$5", "minus five dollars"},
    {"$1,000,000.99", "one million dollars ninety nine cents"},
    {"\xE2\x82\xAC"
     "20",
     "twenty euros"},
    {"\xC2\xA3"
     "1",
     "one pound"},
    {"50%", "fifty percent"},
    {"3.5%", "three point five percent"},
    {"Don't stop", "don't stop"},
    {"'quoted'", "quoted"},
    {"it\xE2\x80\x99s", "it's"},
    {"Caf\xC3\xA9 \xC3\x9c"
     "ber",
     "caf\xC3\xA9 \xC3\x9c"
     "ber"},
    {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E text", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E text"},
    {"  multiple   spaces\tand\nlines  ", "multiple spaces and lines"},
    {"\xE2\x80\x9CSmart quotes\xE2\x80\x9D \xE2\x80\x94 and\xE2\x80\xA6 more", "smart quotes and more"},
    {"mp3", "mp three"},
    {"5-3", "five three"},
    {"A-B well-known", "a b well known"},
    {"", ""},
    {"In 1984 I paid $5 for 3.14 kg, 50% off!",
     "in nineteen eighty four i paid five dollars for three point one four kg fifty percent off"},
};

TEST(TextNorm, HandCheckedTable) {
  ASSERT_GE(kTable.size(), 25u);
  for (const auto& [in, want] : kTable) {
    EXPECT_EQ(normalize_text(in), want) << "input: '" << in << "'";
  }
}

TEST(TextNorm, CardinalsOrdinalsYears) {
  EXPECT_EQ(number_to_words(0), "zero");
  EXPECT_EQ(number_to_words(-12), "minus twelve");
  EXPECT_EQ(number_to_words(1000001), "one million one");
  EXPECT_EQ(number_to_words(7000000000LL), "seven billion");
  EXPECT_EQ(number_to_words(110), "one hundred ten");
  EXPECT_EQ(ordinal_to_words(0), "zeroth");
  EXPECT_EQ(ordinal_to_words(12), "twelfth");
  EXPECT_EQ(ordinal_to_words(20), "twentieth");
  EXPECT_EQ(ordinal_to_words(21), "twenty first");
  EXPECT_EQ(ordinal_to_words(1000000), "one millionth");
  EXPECT_EQ(year_to_words(1100), "eleven hundred");
  EXPECT_EQ(year_to_words(2099), "twenty ninety nine");
  EXPECT_EQ(year_to_words(1066), "one thousand sixty six");  // outside 1100..2099
  EXPECT_THROW(number_to_words(1000000000000000LL), Error);
  EXPECT_THROW(ordinal_to_words(-1), Error);
  // Longer than the scale words: digit by digit.
  EXPECT_EQ(normalize_text("1234567890123456"),
            "one two three four five six seven eight nine zero one two three four five six");
}

TEST(TextNorm, OptionsSwitchStepsOff) {
  TextNormOptions o;
  o.numbers_to_words = false;
  EXPECT_EQ(normalize_text("Call 911!", o), "call 911");
  o = {};
  o.lowercase = false;
  EXPECT_EQ(normalize_text("Hello World", o), "Hello World");
  o = {};
  o.strip_punctuation = false;
  EXPECT_EQ(normalize_text("Hi, there!", o), "hi, there!");
  o = {};
  o.keep_apostrophes = false;
  EXPECT_EQ(normalize_text("don't", o), "don t");
  o = {};
  o.collapse_whitespace = false;
  EXPECT_EQ(normalize_text("a  b", o), "a  b");
}

TEST(TextNorm, NeverSplitsMultibyteCharacters) {
  // Every non-ASCII code point of the input must come out whole (only ASCII bytes are rewritten).
  const std::string in = "\xC3\x89t\xC3\xA9 2021 na\xC3\xAFve \xF0\x9F\x98\x80 \xD0\x9F\xD1\x80\xD0\xB8";
  const std::string out = normalize_text(in);
  EXPECT_EQ(out,
            "\xC3\x89t\xC3\xA9 twenty twenty one na\xC3\xAFve \xF0\x9F\x98\x80 "
            "\xD0\x9F\xD1\x80\xD0\xB8");
}

TEST(TextNorm, ParsesYamlOptions) {
  config::Node node = config::parse_yaml("lowercase: false\nkeep_apostrophes: false\n", "norm.yaml");
  config::Reader r(&node, "", nullptr);
  TextNormOptions o;
  parse(r, o);
  EXPECT_FALSE(o.lowercase);
  EXPECT_FALSE(o.keep_apostrophes);
  EXPECT_TRUE(o.numbers_to_words);
  config::Node bad = config::parse_yaml("lowercas: false\n", "norm.yaml");
  config::Reader rb(&bad, "", nullptr);
  TextNormOptions ob;
  EXPECT_THROW(parse(rb, ob), ConfigError);
}

}  // namespace
}  // namespace mmref::data
