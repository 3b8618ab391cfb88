// Corpus generator tests, speech side (suites CorpusSentences*, CorpusSpeech*, CorpusKinds*): the
// sentence grammar, a 24-utterance `speech` corpus made with every synthesizer, `speech_real` from
// pocketsphinx-testdata, and the incremental check.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='Corpus*'
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/generators/corpus.h"
#include "data/generators/generators.h"
#include "data/media/audio_io.h"

namespace mmref::data {
namespace {

namespace sfs = std::filesystem;

int words(const std::string& s) {
  std::istringstream in(s);
  std::string w;
  int n = 0;
  while (in >> w) ++n;
  return n;
}

TEST(CorpusSentences, DeterministicPerSeedAndVaried) {
  auto a = gen::make_sentences(7, 300);
  auto b = gen::make_sentences(7, 300);
  auto c = gen::make_sentences(8, 300);
  ASSERT_EQ(a.size(), 300u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::set<std::string> distinct(a.begin(), a.end());
  EXPECT_EQ(distinct.size(), a.size());
  std::set<int> lengths;
  std::set<std::string> first_words;
  for (const auto& s : a) {
    const int n = words(s);
    EXPECT_GE(n, 3) << s;
    EXPECT_LE(n, 15) << s;
    lengths.insert(n);
    EXPECT_TRUE(std::isupper(static_cast<unsigned char>(s[0]))) << s;
    EXPECT_EQ(s.back(), '.') << s;
    EXPECT_EQ(s.find_first_of("0123456789|\""), std::string::npos) << s;
    first_words.insert(s.substr(0, s.find(' ')));
  }
  EXPECT_GE(lengths.size(), 10u);  // varied lengths over 3..15
  EXPECT_GE(first_words.size(), 5u);
  // The default corpus size is reachable with distinct sentences.
  EXPECT_EQ(gen::make_sentences(0, 2000).size(), 2000u);
}

TEST(CorpusKinds, UnknownKindListsKinds) {
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_kind");
  try {
    make_corpus("nope", o);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("nope"), std::string::npos) << m;
    for (const auto& [name, desc] : corpus_kinds()) {
      EXPECT_NE(m.find(name), std::string::npos) << m;
      EXPECT_FALSE(desc.empty());
    }
  }
  EXPECT_EQ(corpus_kinds().size(), 7u);
  sfs::remove_all(o.out);
}

bool have_synthesizers() {
  return !gen::find_program("espeak-ng").empty() && !gen::find_program("flite").empty() &&
         !gen::find_program("text2wave").empty() &&
         sfs::exists("/usr/share/festival/voices/english/kal_diphone") &&
         sfs::exists("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts");
}

TEST(CorpusSpeech, SmallCorpusWithEverySynthesizer) {
  if (!have_synthesizers()) GTEST_SKIP() << "espeak-ng, flite or festival (+ festvox voices) not installed";
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_speech");
  o.seed = 3;
  o.count = 24;
  o.sample_rate = 22050;
  o.quiet = true;
  const std::string summary = make_corpus("speech", o);
  EXPECT_EQ(summary.rfind("wrote", 0), 0u) << summary;

  std::map<std::string, std::vector<ManifestEntry>> splits;
  size_t total = 0;
  for (const std::string s : {"train", "dev", "test", "heldout"}) {
    splits[s] = read_manifest(o.out + "/" + s + ".jsonl");
    EXPECT_GE(splits[s].size(), 1u) << s;
    total += splits[s].size();
  }
  EXPECT_EQ(total, 24u);
  std::map<std::string, std::string> split_of_sentence;
  std::set<std::string> synths;
  for (const auto& [split, entries] : splits) {
    for (const auto& e : entries) {
      EXPECT_EQ(e.split, split);
      // Sentences are disjoint across splits.
      auto [it, fresh] = split_of_sentence.emplace(e.text, split);
      EXPECT_TRUE(fresh) << "'" << e.text << "' in " << split << " and " << it->second;
      // The held-out voice is only in heldout, and heldout has only it.
      EXPECT_EQ(e.speaker == "espeak-ng:en+f3", split == "heldout") << e.speaker << " in " << split;
      synths.insert(e.speaker.substr(0, e.speaker.find(':')));
      int sr = 0;
      at::Tensor wav = load_audio(e.path, {}, &sr);
      EXPECT_EQ(sr, 22050) << e.path;
      EXPECT_EQ(wav.size(0), 1) << e.path;
      const double dur = static_cast<double>(wav.size(1)) / sr;
      EXPECT_GT(dur, 0.3) << e.path;
      EXPECT_NEAR(e.duration, dur, 1e-3) << e.path;
      EXPECT_GT(wav.abs().max().item<float>(), 0.05f) << e.path << " is silent";
    }
  }
  EXPECT_EQ(synths, (std::set<std::string>{"espeak-ng", "flite", "festival"}));

  // LJSpeech metadata.csv: id|text|normalized text, id = wav file name without .wav.
  std::istringstream csv(fs::read_file(o.out + "/metadata.csv"));
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) {
    ++rows;
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string x;
    while (std::getline(ls, x, '|')) f.push_back(x);
    ASSERT_EQ(f.size(), 3u) << line;
    EXPECT_TRUE(fs::exists(o.out + "/wavs/" + f[0] + ".wav")) << line;
    EXPECT_TRUE(split_of_sentence.count(f[1])) << line;
  }
  EXPECT_EQ(rows, 24);

  // Incremental: the second call does nothing (files untouched).
  const std::string probe = splits["train"][0].path;
  const auto mtime = sfs::last_write_time(probe);
  const std::string again = make_corpus("speech", o);
  EXPECT_EQ(again.rfind("up to date", 0), 0u) << again;
  EXPECT_EQ(sfs::last_write_time(probe), mtime);
  sfs::remove_all(o.out);
}

TEST(CorpusSpeech, RealRecordingsFromPocketsphinx) {
  if (!sfs::exists("/usr/share/pocketsphinx/test/data/cards/cards.transcription")) {
    GTEST_SKIP() << "pocketsphinx-testdata not installed";
  }
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_speech_real");
  o.quiet = true;
  make_corpus("speech_real", o);
  auto entries = read_manifest(o.out + "/test.jsonl");
  ASSERT_EQ(entries.size(), 10u);  // 5 cards + 5 librivox utterances
  bool found = false;
  for (const auto& e : entries) {
    EXPECT_EQ(e.text.find('<'), std::string::npos) << e.text;
    int sr = 0;
    at::Tensor wav = load_audio(e.path, {}, &sr);
    EXPECT_EQ(sr, 16000);
    EXPECT_GT(e.duration, 0.5);
    if (e.text == "ten of clubs") found = true;
  }
  EXPECT_TRUE(found);
  sfs::remove_all(o.out);
}

}  // namespace
}  // namespace mmref::data

namespace mmref::data {
namespace {

// The default 2000-utterance corpus (minutes: label slow). Checks the split sizes and the synthesizer
// mix the header documents; prints the summary with the wall time.
TEST(CorpusSpeechSlow, DefaultCorpus) {
  if (!have_synthesizers()) GTEST_SKIP() << "espeak-ng, flite or festival (+ festvox voices) not installed";
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_speech_default");
  o.quiet = true;
  const std::string summary = make_corpus("speech", o);
  std::cout << summary << "\n";
  auto meta = nlohmann::json::parse(fs::read_file(o.out + "/corpus.json"));
  EXPECT_EQ(meta["stats"]["splits"]["train"], 1500);
  EXPECT_EQ(meta["stats"]["splits"]["dev"], 200);
  EXPECT_EQ(meta["stats"]["splits"]["test"], 200);
  EXPECT_EQ(meta["stats"]["splits"]["heldout"], 100);
  EXPECT_EQ(meta["stats"]["synthesizers"]["flite"], 475);     // 25% of the 1900 non-heldout
  EXPECT_EQ(meta["stats"]["synthesizers"]["festival"], 285);  // 15%
  EXPECT_EQ(meta["stats"]["synthesizers"]["espeak-ng"], 1140 + 100);
  EXPECT_EQ(read_manifest(o.out + "/all.jsonl").size(), 2000u);
  sfs::remove_all(o.out);
}

}  // namespace
}  // namespace mmref::data
