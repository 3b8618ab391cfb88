// Vocabulary tests (suite CharVocab*): building, encode/decode round trips, reserved ids, the JSON and
// wenet units.txt files, save_vocab/load_char_vocab, and error messages for bad files and bad UTF-8.
// PhonemeVocab tests live in text_phonemize_test.cpp.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='CharVocab*'
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/text/vocab.h"

namespace mmref::data {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

class CharVocabTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("char_vocab"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

// Texts "ab ba" and "çé" give, by code point order after the reserved units:
//   0 <blank>  1 <unk>  2 a  3 b  4 ç (U+00E7)  5 é (U+00E9)  6 ▁ (U+2581, the space)
TEST_F(CharVocabTest, BuildSortsCodePointsAfterReservedIds) {
  CharVocab v = CharVocab::build({"ab ba", "\xC3\xA7\xC3\xA9"});
  const std::vector<std::string> want = {"<blank>",  "<unk>",    "a",           "b",
                                         "\xC3\xA7", "\xC3\xA9", "\xE2\x96\x81"};
  EXPECT_EQ(v.units(), want);
  EXPECT_EQ(v.blank_id(), 0);
  EXPECT_EQ(v.unk_id(), 1);
  EXPECT_EQ(v.pad_id(), -1);
  EXPECT_EQ(v.encode("ab \xC3\xA7"), (std::vector<int64_t>{2, 3, 6, 4}));
  EXPECT_EQ(v.encode("az"), (std::vector<int64_t>{2, 1}));  // z unknown
  EXPECT_EQ(v.decode({2, 3, 6, 4, 5}), "ab \xC3\xA7\xC3\xA9");
  EXPECT_EQ(v.decode({0, 2, 0, 1, 3}), "ab");  // blank and unk dropped
  EXPECT_EQ(v.decode({0, 2, 1}, /*skip_special=*/false), "<blank>a<unk>");
  EXPECT_THROW(v.decode({7}), Error);
  EXPECT_THROW(v.unit(-1), Error);
}

TEST_F(CharVocabTest, OptionalSpecialIds) {
  VocabOptions o;
  o.add_pad = true;
  o.add_sos_eos = true;
  CharVocab v = CharVocab::build({"ba"}, o);
  EXPECT_EQ(v.units(), (std::vector<std::string>{"<blank>", "<unk>", "<pad>", "<sos>", "<eos>", "a", "b"}));
  EXPECT_EQ(v.pad_id(), 2);
  EXPECT_EQ(v.sos_id(), 3);
  EXPECT_EQ(v.eos_id(), 4);
  EXPECT_EQ(v.decode({3, 6, 5, 4, 2}), "ba");
}

TEST_F(CharVocabTest, RoundTripsMultibyteText) {
  const std::vector<std::string> texts = {"hello world", "na\xC3\xAFve caf\xC3\xA9",
                                          "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80"};
  CharVocab v = CharVocab::build(texts);
  for (const auto& t : texts) {
    auto ids = v.encode(t);
    EXPECT_EQ(v.decode(ids), t);
    EXPECT_EQ(ids.size(), split_utf8(t).size()) << "one id per code point";
  }
  EXPECT_EQ(split_utf8("a\xF0\x9F\x98\x80").size(), 2u);
}

TEST_F(CharVocabTest, UnitsTxtIsWenetFormat) {
  CharVocab v = CharVocab::build({"b a"});
  const std::string path = dir_ + "/units.txt";
  v.save_units(path);
  EXPECT_EQ(fs::read_file(path), "<blank> 0\n<unk> 1\na 2\nb 3\n\xE2\x96\x81 4\n");
  CharVocab w = CharVocab::load_units(path);
  EXPECT_EQ(w.units(), v.units());
  EXPECT_EQ(w.encode("a b"), v.encode("a b"));
}

TEST_F(CharVocabTest, JsonRoundTripAndSaveWithRun) {
  VocabOptions o;
  o.add_sos_eos = true;
  CharVocab v = CharVocab::build({"the cat", "a dog"}, o);
  save_vocab(v, dir_ + "/run");
  EXPECT_TRUE(fs::exists(dir_ + "/run/chars.json"));
  EXPECT_TRUE(fs::exists(dir_ + "/run/chars_units.txt"));
  CharVocab w = load_char_vocab(dir_ + "/run");
  EXPECT_EQ(w.units(), v.units());
  EXPECT_EQ(w.sos_id(), v.sos_id());
  EXPECT_EQ(w.eos_id(), v.eos_id());
  EXPECT_EQ(w.decode(w.encode("a cat")), "a cat");
  CharVocab u = CharVocab::load_units(dir_ + "/run/chars_units.txt");
  EXPECT_EQ(u.units(), v.units());
}

TEST_F(CharVocabTest, BadFilesNameFileAndLine) {
  const std::string units = dir_ + "/bad_units.txt";
  fs::atomic_write(units, "<blank> 0\n<unk> 1\na 3\n");
  EXPECT_NE(error_of([&] { CharVocab::load_units(units); }).find("bad_units.txt:3: expected id 2"),
            std::string::npos)
      << error_of([&] { CharVocab::load_units(units); });
  fs::atomic_write(units, "<unk> 0\n<blank> 1\n");
  EXPECT_NE(error_of([&] { CharVocab::load_units(units); }).find("'<blank>' (id 0)"), std::string::npos);
  fs::atomic_write(units, "<blank> 0\n<unk> 1\na 2\na 3\n");
  EXPECT_NE(error_of([&] { CharVocab::load_units(units); }).find("appears twice"), std::string::npos);
  const std::string json = dir_ + "/bad.json";
  fs::atomic_write(json, "{\"units\": [1, 2]}");
  EXPECT_NE(error_of([&] { CharVocab::load_json(json); }).find("must hold strings"), std::string::npos);
  fs::atomic_write(json, "{not json");
  EXPECT_NE(error_of([&] { CharVocab::load_json(json); }).find("not a valid vocabulary JSON"),
            std::string::npos);
  fs::atomic_write(json, "{\"kind\": \"phoneme\", \"units\": [\"<blank>\", \"<unk>\"]}");
  EXPECT_NE(error_of([&] { CharVocab::load_json(json); }).find("expected 'char'"), std::string::npos);
}

TEST_F(CharVocabTest, RejectsInvalidUtf8) {
  EXPECT_NE(error_of([] { CharVocab::build({"ok", "bad\xC3"}); }).find("text #1"), std::string::npos);
  EXPECT_THROW(split_utf8("\xC0\x80"), Error);      // overlong
  EXPECT_THROW(split_utf8("\xED\xA0\x80"), Error);  // surrogate
  CharVocab v = CharVocab::build({"a"});
  EXPECT_THROW(v.encode("\xFF"), Error);
}

}  // namespace
}  // namespace mmref::data
