// SentencePiece tests (suite SentencePiece*): train BPE/unigram models on a few hundred generated
// sentences, encode/decode round trips, agreement with the spm_encode program (pieces and ids), saving
// with the run, and errors.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='SentencePiece*'
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/text/normalize.h"
#include "data/text/piece_vocab.h"
#include "data/text/sentencepiece.h"
#include "data/text/vocab.h"

namespace mmref::data {
namespace {

// Seeded sentences from small word lists, normalised (numbers become words).
std::vector<std::string> make_sentences(int n) {
  const std::vector<std::string> subj = {"The cat",       "A small dog",   "My neighbour", "The old teacher",
                                         "Every student", "The red robot", "Our team"};
  const std::vector<std::string> verb = {"reads",   "paints", "finds",    "carries",
                                         "watches", "builds", "remembers"};
  const std::vector<std::string> obj = {"a yellow book",      "the morning news", "two green apples",
                                        "seven wooden boxes", "the quiet river",  "an electric guitar"};
  const std::vector<std::string> tail = {"today.",         "in 1984.",         "for $5.",          "slowly!",
                                         "at 3rd street.", "with 50% effort.", "again, and again."};
  std::mt19937 rng(1234);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s = subj[rng() % subj.size()] + " " + verb[rng() % verb.size()] + " " +
                    obj[rng() % obj.size()] + " " + tail[rng() % tail.size()];
    out.push_back(normalize_text(s));
  }
  return out;
}

std::string run_cmd(const std::string& cmd, int* rc) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  if (p == nullptr) {
    *rc = -1;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *rc = pclose(p);
  return out;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(fs::make_temp_dir("spm"));
    sentences_ = new std::vector<std::string>(make_sentences(400));
    std::string why;
    if (!sentencepiece_available(&why)) return;  // each test skips with the reason
    train_sentencepiece(*sentences_, *dir_ + "/bpe", /*vocab_size=*/120, "bpe");
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete sentences_;
  }
  void SetUp() override {
    std::string why;
    if (!sentencepiece_available(&why)) GTEST_SKIP() << "libsentencepiece unavailable: " << why;
  }
  static std::string* dir_;
  static std::vector<std::string>* sentences_;
};
std::string* SentencePieceTest::dir_ = nullptr;
std::vector<std::string>* SentencePieceTest::sentences_ = nullptr;

TEST_F(SentencePieceTest, TrainEncodeDecodeRoundTrip) {
  ASSERT_TRUE(fs::exists(*dir_ + "/bpe.model"));
  ASSERT_TRUE(fs::exists(*dir_ + "/bpe.vocab"));
  SentencePieceTokenizer tok;
  tok.load(*dir_ + "/bpe.model");
  EXPECT_EQ(tok.vocab_size(), 120);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), -1);
  for (const auto& s : *sentences_) {
    auto ids = tok.encode(s);
    ASSERT_FALSE(ids.empty());
    EXPECT_LT(ids.size(), s.size()) << "BPE must merge characters: " << s;
    for (int id : ids) EXPECT_NE(id, tok.unk_id()) << s;
    EXPECT_EQ(tok.decode(ids), s);
    auto pieces = tok.encode_pieces(s);
    ASSERT_EQ(pieces.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(tok.id_to_piece(ids[i]), pieces[i]);
      EXPECT_EQ(tok.piece_to_id(pieces[i]), ids[i]);
    }
    EXPECT_EQ(tok.decode_pieces(pieces), s);
  }
  // Unseen text still round-trips through known characters.
  EXPECT_EQ(tok.decode(tok.encode("the cat reads")), "the cat reads");
  EXPECT_THROW(tok.decode({9999}), Error);
}

TEST_F(SentencePieceTest, MatchesSpmEncodeProgram) {
  int rc = 0;
  run_cmd("spm_encode --help > /dev/null 2>&1", &rc);
  if (rc != 0) GTEST_SKIP() << "the spm_encode program (Debian package sentencepiece) is not installed";
  const std::string input = *dir_ + "/input.txt";
  std::string body;
  for (const auto& s : *sentences_) body += s + "\n";
  body += "an unseen quiet sentence about zebras\n";
  fs::atomic_write(input, body);
  const std::string model = *dir_ + "/bpe.model";
  const auto piece_lines =
      lines_of(run_cmd("spm_encode --model=" + model + " --output_format=piece < " + input, &rc));
  ASSERT_EQ(rc, 0);
  const auto id_lines =
      lines_of(run_cmd("spm_encode --model=" + model + " --output_format=id < " + input, &rc));
  ASSERT_EQ(rc, 0);
  const auto inputs = lines_of(body);
  ASSERT_EQ(piece_lines.size(), inputs.size());
  ASSERT_EQ(id_lines.size(), inputs.size());
  SentencePieceTokenizer tok;
  tok.load(model);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string pieces, ids;
    for (const auto& p : tok.encode_pieces(inputs[i])) pieces += (pieces.empty() ? "" : " ") + p;
    for (int id : tok.encode(inputs[i])) ids += (ids.empty() ? "" : " ") + std::to_string(id);
    EXPECT_EQ(pieces, piece_lines[i]) << inputs[i];
    EXPECT_EQ(ids, id_lines[i]) << inputs[i];
  }
}

TEST_F(SentencePieceTest, SaveWithRunAndReload) {
  SentencePieceTokenizer tok;
  tok.load(*dir_ + "/bpe.model");
  tok.save(*dir_ + "/run", "tokenizer");
  SentencePieceTokenizer again;
  again.load(*dir_ + "/run/tokenizer.model");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(again.encode((*sentences_)[i]), tok.encode((*sentences_)[i]));
  SentencePieceTokenizer moved = std::move(again);
  EXPECT_EQ(moved.vocab_size(), 120);
}

TEST_F(SentencePieceTest, TrainFromFileAndUnigram) {
  const std::string input = *dir_ + "/train.txt";
  std::string body;
  for (const auto& s : *sentences_) body += s + "\n";
  fs::atomic_write(input, body);
  train_sentencepiece_file(input, *dir_ + "/uni/model", /*vocab_size=*/80, "unigram");
  SentencePieceTokenizer tok;
  tok.load(*dir_ + "/uni/model.model");
  EXPECT_EQ(tok.vocab_size(), 80);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(tok.decode(tok.encode((*sentences_)[i])), (*sentences_)[i]);
}

TEST_F(SentencePieceTest, Errors) {
  SentencePieceTokenizer tok;
  EXPECT_FALSE(tok.loaded());
  EXPECT_THROW(tok.encode("x"), Error);
  try {
    tok.load(*dir_ + "/missing.model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.model"), std::string::npos);
  }
  const std::string junk = *dir_ + "/junk.model";
  fs::atomic_write(junk, "not a model");
  EXPECT_THROW(tok.load(junk), Error);
  // Far more pieces than the data can make with a hard limit.
  EXPECT_THROW(train_sentencepiece({"ab ab", "ba"}, *dir_ + "/tiny", 5000), Error);
  EXPECT_THROW(train_sentencepiece({}, *dir_ + "/empty", 10), Error);
  EXPECT_THROW(train_sentencepiece_file(*dir_ + "/nope.txt", *dir_ + "/nope", 10), Error);
}

// PieceVocab: CTC units from the model -- <blank> 0, <unk> 1, then the 117 non-control pieces; texts
// split into the model's pieces, ids decode back to the text, and the saved units.txt alone decodes.
TEST_F(SentencePieceTest, PieceVocabForCtcUnits) {
  const PieceVocab v = PieceVocab::load(*dir_ + "/bpe.model");
  SentencePieceTokenizer tok;
  tok.load(*dir_ + "/bpe.model");
  EXPECT_EQ(v.kind(), UnitVocab::Kind::kPiece);
  EXPECT_EQ(v.size(), 2 + 120 - 3);
  EXPECT_EQ(v.unit(0), "<blank>");
  EXPECT_EQ(v.unit(1), "<unk>");
  EXPECT_EQ(v.unit(2), tok.id_to_piece(3));
  v.save_units(*dir_ + "/pieces_units.txt");
  const CharVocab plain = CharVocab::load_units(*dir_ + "/pieces_units.txt");
  size_t multi = 0;
  for (const auto& s : *sentences_) {
    const auto pieces = v.split(s);
    EXPECT_EQ(pieces, tok.encode_pieces(s));
    const auto ids = v.encode(s);
    ASSERT_EQ(ids.size(), pieces.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(v.unit(ids[i]), pieces[i]);
      multi += split_utf8(pieces[i]).size() > 1;
    }
    // Pieces carry "▁" at word starts: decoding gives the text with one leading space.
    EXPECT_EQ(v.decode(ids), " " + s);
    EXPECT_EQ(plain.decode(ids), " " + s);
  }
  EXPECT_GT(multi, sentences_->size());  // real subwords, not characters
  // Extra whitespace folds; an unseen character is <unk>, never an exception.
  EXPECT_EQ(v.split("  the   cat "), tok.encode_pieces("the cat"));
  const auto unk = v.encode("the q\xc3\xa9 cat");
  EXPECT_NE(std::find(unk.begin(), unk.end(), v.unk_id()), unk.end());
  // Training through PieceVocab::train; errors name the file or the setting.
  const PieceVocab u = PieceVocab::train(*sentences_, *dir_ + "/uni", 80, "unigram");
  EXPECT_TRUE(fs::exists(*dir_ + "/uni.model"));
  EXPECT_EQ(u.decode(u.encode(sentences_->front())), " " + sentences_->front());
  EXPECT_THROW(PieceVocab::train(*sentences_, *dir_ + "/x", 80, "wordpiece"), ConfigError);
  try {
    PieceVocab::load(*dir_ + "/missing.model");
    ADD_FAILURE() << "missing model accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mmref::data
