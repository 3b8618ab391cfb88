// WER/CER against jiwer 4.0.0: every record of <golden>/wer/cases.json is checked (see the "wer" section of
// the golden README): process_words / process_characters (counts, transformed sentences and alignment
// chunks exact, rates within 1e-12, ValueError records must throw mmref::Error), transform records
// (input -> output through one transform or a Compose) and visualize_alignment strings (exact). Named
// transformations are also checked against their expansion in the record.
// Golden root: $MMREF_GOLDEN_DIR, else <MMREF_SOURCE_DIR>/../shared/golden. Only key names and layout are
// assumed (twin fixtures with other values run in CI).
//   MMREF_GOLDEN_DIR=/path build/<dir>/tests/mmref_eval_tests --gtest_filter='WerGolden*'
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "eval/wer.h"

namespace mmref::eval {
namespace {

using ojson = nlohmann::ordered_json;
constexpr double kRateTol = 1e-12;

std::string golden_root() {
  const char* env = std::getenv("MMREF_GOLDEN_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(MMREF_SOURCE_DIR) + "/../shared/golden";
}

std::string cases_path() { return golden_root() + "/wer/cases.json"; }

// The fixture, parsed once (ordered: substitution dicts keep jiwer's order).
const ojson* cases() {
  static const ojson* c = []() -> const ojson* {
    if (!std::filesystem::exists(cases_path())) return nullptr;
    static const ojson j = ojson::parse(fs::read_file(cases_path()));
    return &j.at("cases");
  }();
  return c;
}

std::string where(size_t i, const ojson& rec) {
  return "record " + std::to_string(i) + " (" + rec.value("source", std::string("?")) + ", " +
         rec.value("fn", std::string("?")) + ")";
}

Sentences sentences(const ojson& v) {
  if (v.is_string()) return Sentences(v.get<std::string>());
  return Sentences(v.get<std::vector<std::string>>());
}

TextValue text_value(const ojson& v) {
  if (v.is_string()) return TextValue::of_string(v.get<std::string>());
  if (!v.empty() && v[0].is_array())
    return TextValue::of_tokens(v.get<std::vector<std::vector<std::string>>>());
  return TextValue::of_list(v.get<std::vector<std::string>>());
}

ojson to_json(const TextValue& v) {
  switch (v.kind) {
    case TextValue::Kind::kString:
      return v.string;
    case TextValue::Kind::kList:
      return v.list;
    case TextValue::Kind::kTokens:
      return v.tokens;
  }
  return nullptr;
}

ojson to_json(const std::vector<std::vector<AlignmentChunk>>& alignments) {
  ojson out = ojson::array();
  for (const auto& sentence : alignments) {
    ojson s = ojson::array();
    for (const auto& c : sentence)
      s.push_back({std::string(to_string(c.type)), c.ref_start, c.ref_end, c.hyp_start, c.hyp_end});
    out.push_back(s);
  }
  return out;
}

// The record's transform; a named one must also equal its expansion and the library's preset.
TextTransform record_transform(const ojson& t, const std::string& at) {
  if (t.contains("named")) {
    const TextTransform preset = TextTransform::named(t.at("named").get<std::string>());
    if (t.contains("expanded")) {
      const TextTransform expanded = TextTransform::from_json(t.at("expanded"));
      EXPECT_TRUE(preset.steps() == expanded.steps())
          << at << ": preset '" << t.at("named").get<std::string>()
          << "' differs from the record's expansion";
    }
  }
  return TextTransform::from_json(t);
}

// Runs a process_* record; fills the outputs (one of them) for visualize records.
void check_process(size_t i, const ojson& rec, WordOutput* word_out, CharacterOutput* char_out) {
  const std::string at = where(i, rec);
  const bool chars = rec.at("fn") == "process_characters";
  const TextTransform ref_tr = record_transform(rec.at("reference_transform"), at);
  const TextTransform hyp_tr = record_transform(rec.at("hypothesis_transform"), at);
  const Sentences ref = sentences(rec.at("input").at("reference"));
  const Sentences hyp = sentences(rec.at("input").at("hypothesis"));
  if (rec.contains("raises")) {
    if (chars)
      EXPECT_THROW(process_characters(ref, hyp, ref_tr, hyp_tr), mmref::Error)
          << at << " (jiwer raised " << rec.at("raises") << ")";
    else
      EXPECT_THROW(process_words(ref, hyp, ref_tr, hyp_tr), mmref::Error)
          << at << " (jiwer raised " << rec.at("raises") << ")";
    return;
  }
  const ojson& want = rec.at("output");
  const AlignmentOutput* out = nullptr;
  WordOutput w;
  CharacterOutput c;
  try {
    if (chars) {
      c = process_characters(ref, hyp, ref_tr, hyp_tr);
      EXPECT_NEAR(c.cer, want.at("cer").get<double>(), kRateTol) << at << ": cer";
      out = &c;
    } else {
      w = process_words(ref, hyp, ref_tr, hyp_tr);
      EXPECT_NEAR(w.wer, want.at("wer").get<double>(), kRateTol) << at << ": wer";
      EXPECT_NEAR(w.mer, want.at("mer").get<double>(), kRateTol) << at << ": mer";
      EXPECT_NEAR(w.wil, want.at("wil").get<double>(), kRateTol) << at << ": wil";
      EXPECT_NEAR(w.wip, want.at("wip").get<double>(), kRateTol) << at << ": wip";
      out = &w;
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << at << ": threw " << e.what();
    return;
  }
  EXPECT_EQ(out->hits, want.at("hits").get<int64_t>()) << at << ": hits";
  EXPECT_EQ(out->substitutions, want.at("substitutions").get<int64_t>()) << at << ": substitutions";
  EXPECT_EQ(out->deletions, want.at("deletions").get<int64_t>()) << at << ": deletions";
  EXPECT_EQ(out->insertions, want.at("insertions").get<int64_t>()) << at << ": insertions";
  EXPECT_EQ(ojson(out->references), want.at("references_transformed")) << at << ": references_transformed";
  EXPECT_EQ(ojson(out->hypotheses), want.at("hypotheses_transformed")) << at << ": hypotheses_transformed";
  EXPECT_EQ(to_json(out->alignments), want.at("alignments")) << at << ": alignments";
  // Per-utterance counts add up to the corpus counts and agree with each sentence's chunks.
  ErrorCounts sum;
  for (size_t s = 0; s < out->utterances.size(); ++s) {
    sum += out->utterances[s];
    EXPECT_TRUE(out->utterances[s] == count_errors(out->alignments[s])) << at << ": sentence " << s;
    EXPECT_EQ(out->utterances[s].reference_length(), static_cast<int64_t>(out->references[s].size())) << at;
    EXPECT_EQ(out->utterances[s].hypothesis_length(), static_cast<int64_t>(out->hypotheses[s].size())) << at;
  }
  EXPECT_TRUE(sum == out->counts()) << at << ": per-utterance counts";
  if (word_out != nullptr) *word_out = w;
  if (char_out != nullptr) *char_out = c;
}

void check_transform(size_t i, const ojson& rec) {
  const std::string at = where(i, rec);
  try {
    const TextTransform t = TextTransform::from_json(rec.at("transform"));
    const TextValue got = t(text_value(rec.at("input")));
    EXPECT_EQ(to_json(got), rec.at("output")) << at << ": input " << rec.at("input").dump();
  } catch (const std::exception& e) {
    ADD_FAILURE() << at << ": threw " << e.what();
  }
}

void check_visualize(size_t i, const ojson& rec, const ojson& all) {
  const std::string at = where(i, rec);
  const auto of = rec.at("of_record").get<size_t>();
  ASSERT_LT(of, all.size()) << at;
  const ojson& src = all.at(of);
  ASSERT_TRUE(src.at("fn") == "process_words" || src.at("fn") == "process_characters") << at;
  ASSERT_FALSE(src.contains("raises")) << at;
  VisualizeOptions opt;
  const ojson& kw = rec.at("kwargs");
  for (auto it = kw.begin(); it != kw.end(); ++it) {
    if (it.key() == "show_measures")
      opt.show_measures = it.value().get<bool>();
    else if (it.key() == "skip_correct")
      opt.skip_correct = it.value().get<bool>();
    else if (it.key() == "line_width")
      opt.line_width =
          it.value().is_null() ? std::nullopt : std::optional<int64_t>(it.value().get<int64_t>());
    else
      ADD_FAILURE() << at << ": unknown visualize_alignment kwarg '" << it.key() << "'";
  }
  const std::string want = rec.at("output").get<std::string>();
  if (src.at("fn") == "process_words") {
    WordOutput out;
    check_process(of, src, &out, nullptr);
    EXPECT_EQ(visualize_alignment(out, opt), want) << at << " of " << where(of, src);
  } else {
    CharacterOutput out;
    check_process(of, src, nullptr, &out);
    EXPECT_EQ(visualize_alignment(out, opt), want) << at << " of " << where(of, src);
  }
}

// Every record, by kind; returns how many records of `fn` were checked.
size_t check_all(const std::string& fn) {
  const ojson& all = *cases();
  size_t checked = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const ojson& rec = all[i];
    if (rec.at("fn") != fn) continue;
    if (fn == "transform")
      check_transform(i, rec);
    else if (fn == "visualize_alignment")
      check_visualize(i, rec, all);
    else
      check_process(i, rec, nullptr, nullptr);
    ++checked;
  }
  return checked;
}

#define MMREF_REQUIRE_CASES() \
  if (cases() == nullptr) GTEST_SKIP() << "no wer fixture at '" << cases_path() << "' (set MMREF_GOLDEN_DIR)"

TEST(WerGolden, ProcessWords) {
  MMREF_REQUIRE_CASES();
  EXPECT_GT(check_all("process_words"), 0u);
}

TEST(WerGolden, ProcessCharacters) {
  MMREF_REQUIRE_CASES();
  EXPECT_GT(check_all("process_characters"), 0u);
}

TEST(WerGolden, Transforms) {
  MMREF_REQUIRE_CASES();
  EXPECT_GT(check_all("transform"), 0u);
}

TEST(WerGolden, VisualizeAlignment) {
  MMREF_REQUIRE_CASES();
  EXPECT_GT(check_all("visualize_alignment"), 0u);
}

// No record is left out: every record has one of the four kinds the tests above check.
TEST(WerGolden, EveryRecordIsChecked) {
  MMREF_REQUIRE_CASES();
  const ojson& all = *cases();
  size_t known = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const std::string fn = all[i].value("fn", std::string());
    if (fn == "process_words" || fn == "process_characters" || fn == "transform" ||
        fn == "visualize_alignment")
      ++known;
    else
      ADD_FAILURE() << where(i, all[i]) << ": unknown fn, not checked";
  }
  EXPECT_EQ(known, all.size());
  EXPECT_GT(all.size(), 0u);
  std::cout << "[ wer golden ] " << known << " of " << all.size() << " records checked\n";
}

}  // namespace
}  // namespace mmref::eval
