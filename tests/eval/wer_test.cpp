// WER/CER unit tests: hand-checked cases (table below), the bit-parallel aligner against a plain
// dynamic-programming reference of the same backtrace on seeded random sequences (one to several 64-bit
// words per column), transforms, normalisation and the alignment printout.
//   build/<dir>/tests/mmref_eval_tests --gtest_filter='Wer*:-WerGolden*'
//
// Hand-checked (wer_default; H S D I; wer mer wip wil):
//   ref                        hyp                         H S D I  wer   mer   wip            wil
//   "the cat sat on the mat"   "the cat sat on mat"        5 0 1 0  1/6   1/6   5/6*5/5=5/6    1/6
//   "the cat sat"              "the bat sat down"          2 1 0 1  2/3   2/4   2/3*2/4=1/3    2/3
//   "a b"                      "b c"                       0 2 0 0  1     1     0              1
//        (a tie: D+I+... costs the same; rapidfuzz's backtrace takes two substitutions)
//   ""                         "a b"                       0 0 0 2  2     1     0              1
//        (jiwer 4.0's empty-reference rule: wer is the insertion count)
//   ""                         ""                          0 0 0 0  0     0     1              0
//   "hello"                    ""                          0 0 1 0  1     1     0              1
// rapidfuzz's own example: opcodes("qabxcd", "abycdf") = delete [0,1) [0,0), equal [1,3) [0,2),
//   replace [3,4) [2,3), equal [4,6) [3,5), insert [6,6) [5,6).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "eval/wer.h"

namespace mmref::eval {
namespace {

using Type = AlignmentChunk::Type;

// Reference: rapidfuzz's rule on the full DP matrix (D[i][j] = distance of ref[:i] and hyp[:j]) instead of
// bit vectors, after the common prefix/suffix are removed, then the editops -> opcodes grouping.
std::vector<AlignmentChunk> dp_opcodes(const std::vector<int32_t>& ref, const std::vector<int32_t>& hyp) {
  size_t pre = 0, suf = 0;
  while (pre < ref.size() && pre < hyp.size() && ref[pre] == hyp[pre]) ++pre;
  while (suf < ref.size() - pre && suf < hyp.size() - pre &&
         ref[ref.size() - 1 - suf] == hyp[hyp.size() - 1 - suf])
    ++suf;
  const std::vector<int32_t> a(ref.begin() + pre, ref.end() - suf), b(hyp.begin() + pre, hyp.end() - suf);
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
  struct Op {
    Type t;
    int64_t s, d;
  };
  std::vector<Op> ops;
  size_t col = n, row = m;
  const auto p = static_cast<int64_t>(pre);
  while (row && col) {
    if (d[col][row] - d[col - 1][row] == 1) {
      --col;
      ops.push_back({Type::kDelete, static_cast<int64_t>(col) + p, static_cast<int64_t>(row) + p});
    } else {
      --row;
      if (row && d[col][row] - d[col - 1][row] == -1) {
        ops.push_back({Type::kInsert, static_cast<int64_t>(col) + p, static_cast<int64_t>(row) + p});
      } else {
        --col;
        if (a[col] != b[row])
          ops.push_back({Type::kSubstitute, static_cast<int64_t>(col) + p, static_cast<int64_t>(row) + p});
      }
    }
  }
  while (col)
    --col, ops.push_back({Type::kDelete, static_cast<int64_t>(col) + p, static_cast<int64_t>(row) + p});
  while (row)
    --row, ops.push_back({Type::kInsert, static_cast<int64_t>(col) + p, static_cast<int64_t>(row) + p});
  std::reverse(ops.begin(), ops.end());
  std::vector<AlignmentChunk> out;
  int64_t s = 0, t = 0;
  for (size_t i = 0; i < ops.size();) {
    if (s < ops[i].s || t < ops[i].d)
      out.push_back({Type::kEqual, s, ops[i].s, t, ops[i].d}), s = ops[i].s, t = ops[i].d;
    const int64_t s0 = s, t0 = t;
    const Type ty = ops[i].t;
    for (; i < ops.size() && ops[i].t == ty && ops[i].s == s && ops[i].d == t; ++i) {
      if (ty != Type::kInsert) ++s;
      if (ty != Type::kDelete) ++t;
    }
    out.push_back({ty, s0, s, t0, t});
  }
  const auto nr = static_cast<int64_t>(ref.size()), nh = static_cast<int64_t>(hyp.size());
  if (s < nr || t < nh) out.push_back({Type::kEqual, s, nr, t, nh});
  return out;
}

std::string show(const std::vector<AlignmentChunk>& chunks) {
  std::string s;
  for (const auto& c : chunks)
    s += std::string(to_string(c.type)) + "[" + std::to_string(c.ref_start) + "," +
         std::to_string(c.ref_end) + ")[" + std::to_string(c.hyp_start) + "," + std::to_string(c.hyp_end) +
         ") ";
  return s;
}

std::vector<int32_t> ids(const std::string& s) { return std::vector<int32_t>(s.begin(), s.end()); }

TEST(WerAlign, RapidfuzzExample) {
  const std::vector<AlignmentChunk> want = {{Type::kDelete, 0, 1, 0, 0},
                                            {Type::kEqual, 1, 3, 0, 2},
                                            {Type::kSubstitute, 3, 4, 2, 3},
                                            {Type::kEqual, 4, 6, 3, 5},
                                            {Type::kInsert, 6, 6, 5, 6}};
  EXPECT_EQ(show(levenshtein_opcodes(ids("qabxcd"), ids("abycdf"))), show(want));
}

TEST(WerAlign, EmptySides) {
  EXPECT_TRUE(levenshtein_opcodes({}, {}).empty());
  EXPECT_EQ(show(levenshtein_opcodes({}, ids("ab"))), show({{Type::kInsert, 0, 0, 0, 2}}));
  EXPECT_EQ(show(levenshtein_opcodes(ids("ab"), {})), show({{Type::kDelete, 0, 2, 0, 0}}));
  EXPECT_EQ(show(levenshtein_opcodes(ids("ab"), ids("ab"))), show({{Type::kEqual, 0, 2, 0, 2}}));
}

// Seeded random sequences over small alphabets (many ties), lengths across the 64-token word boundaries.
TEST(WerAlign, BitParallelMatchesDpReference) {
  std::mt19937 rng(20240607);
  Aligner aligner;
  std::vector<AlignmentChunk> got;
  int cases = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const int alphabet = 1 + trial % 5;
    const size_t max_len = trial < 300 ? 12 : 300;
    std::uniform_int_distribution<size_t> len(0, max_len);
    std::uniform_int_distribution<int32_t> sym(0, alphabet - 1);
    std::vector<int32_t> a(len(rng)), b;
    for (auto& x : a) x = sym(rng);
    // The hypothesis: a mutated copy (realistic) or an unrelated sequence.
    if (trial % 3 != 0) {
      std::bernoulli_distribution edit(0.2);
      for (int32_t x : a) {
        if (!edit(rng)) {
          b.push_back(x);
          continue;
        }
        const int what = static_cast<int>(rng() % 3);
        if (what == 0) b.push_back(sym(rng));                  // substitute (maybe by itself)
        if (what == 2) b.push_back(x), b.push_back(sym(rng));  // insert
      }
    } else {
      b.resize(len(rng));
      for (auto& x : b) x = sym(rng);
    }
    aligner.align(a.data(), a.size(), b.data(), b.size(), got);
    const auto want = dp_opcodes(a, b);
    ASSERT_EQ(show(got), show(want)) << "trial " << trial << " lengths " << a.size() << " x " << b.size();
    ++cases;
  }
  // Exact word boundaries: 64, 65, 128 reference tokens after the affix is removed.
  for (size_t n : {63u, 64u, 65u, 127u, 128u, 129u}) {
    std::vector<int32_t> a(n), b(n);
    for (size_t i = 0; i < n; ++i)
      a[i] = static_cast<int32_t>(i % 3), b[i] = static_cast<int32_t>((i * 7 + 1) % 4);
    aligner.align(a.data(), a.size(), b.data(), b.size(), got);
    EXPECT_EQ(show(got), show(dp_opcodes(a, b))) << "n " << n;
  }
  EXPECT_EQ(cases, 600);
}

TEST(WerMeasures, HandCheckedTable) {
  struct Row {
    const char *ref, *hyp;
    ErrorCounts counts;
    double wer, mer, wip;
  };
  const Row rows[] = {
      {"the cat sat on the mat", "the cat sat on mat", {5, 0, 1, 0}, 1.0 / 6, 1.0 / 6, 5.0 / 6},
      {"the cat sat", "the bat sat down", {2, 1, 0, 1}, 2.0 / 3, 0.5, (2.0 / 3) * (2.0 / 4)},
      {"a b", "b c", {0, 2, 0, 0}, 1, 1, 0},
      {"", "a b", {0, 0, 0, 2}, 2, 1, 0},
      {"", "", {0, 0, 0, 0}, 0, 0, 1},
      {"hello", "", {0, 0, 1, 0}, 1, 1, 0},
  };
  for (const Row& r : rows) {
    const WordOutput out = process_words(r.ref, r.hyp);
    EXPECT_TRUE(out.counts() == r.counts)
        << r.ref << " | " << r.hyp << ": H" << out.hits << " S" << out.substitutions << " D" << out.deletions
        << " I" << out.insertions;
    EXPECT_DOUBLE_EQ(out.wer, r.wer) << r.ref;
    EXPECT_DOUBLE_EQ(out.mer, r.mer) << r.ref;
    EXPECT_DOUBLE_EQ(out.wip, r.wip) << r.ref;
    EXPECT_DOUBLE_EQ(out.wil, 1 - r.wip) << r.ref;
    EXPECT_DOUBLE_EQ(wer(r.ref, r.hyp), r.wer);
  }
  const WordOutput tie = process_words("a b", "b c");
  EXPECT_EQ(show(tie.alignments[0]), show({{Type::kSubstitute, 0, 2, 0, 2}}));
}

TEST(WerMeasures, CorpusSumsAndUtterances) {
  // Sentence 1: 2 hits 1 deletion; sentence 2: empty reference, 1 insertion. Corpus: H2 D1 I1 over 3 words.
  const WordOutput out = process_words({"hello big world", ""}, {"hello world", "done"});
  EXPECT_EQ(out.hits, 2);
  EXPECT_EQ(out.deletions, 1);
  EXPECT_EQ(out.insertions, 1);
  EXPECT_DOUBLE_EQ(out.wer, 2.0 / 3);
  EXPECT_DOUBLE_EQ(out.utterance_rates(0).wer, 1.0 / 3);
  EXPECT_DOUBLE_EQ(out.utterance_rates(1).wer, 1.0);  // empty reference: the insertion count
  EXPECT_TRUE(sum_counts(out.utterances, {0, 1}) == out.counts());
  EXPECT_TRUE(sum_counts(out.utterances, {1, 1}) == (ErrorCounts{0, 0, 0, 2}));
  const MetricResult m = to_metric_result(out);
  EXPECT_EQ(m.metric, "wer");
  EXPECT_EQ(m.n, 2);
  EXPECT_EQ(m.extra.at("insertions").get<int64_t>(), 1);
}

TEST(WerMeasures, CerCountsCodePointsAndSpaces) {
  const CharacterOutput out = process_characters("café crème", "cafe creme");
  EXPECT_EQ(out.references[0].size(), 10u);  // é and è are one character each
  EXPECT_EQ(out.substitutions, 2);
  EXPECT_DOUBLE_EQ(out.cer, 0.2);
  EXPECT_DOUBLE_EQ(cer("ab", "a b"), 0.5);  // the space is an inserted character
}

TEST(WerMeasures, JiwerValueErrorsThrow) {
  EXPECT_THROW(process_words({"a", "b"}, {"a b"}), mmref::Error);  // sentence counts differ
  EXPECT_NO_THROW(process_words({"a", "b"}, {"a b"}, wer_contiguous(), wer_contiguous()));
  const TextTransform no_split({TransformStep::make(TransformKind::kStrip)});
  EXPECT_THROW(process_words("a", "a", no_split, no_split), mmref::Error);  // no ReduceTo* step
  EXPECT_THROW(process_words("a\xff", "a"), mmref::Error);                  // invalid UTF-8
}

TEST(WerTransforms, PythonStringSemantics) {
  using K = TransformKind;
  const auto one = [](TransformStep st, const std::string& in) {
    return TextTransform({std::move(st)})(TextValue::of_string(in)).string;
  };
  EXPECT_EQ(one(TransformStep::make(K::kRemoveMultipleSpaces), "a \t\n b\tc"), "a b\tc");
  EXPECT_EQ(one(TransformStep::make(K::kStrip), "\xE3\x80\x80 x \xC2\xA0"), "x");  // U+3000, U+00A0
  // ΟΔΟΣ ΣΑ -> οδος σα (final sigma only at the end of a word)
  EXPECT_EQ(one(TransformStep::make(K::kToLowerCase), "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xCE\xA3\xCE\x91"),
            "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x82 \xCF\x83\xCE\xB1");
  EXPECT_EQ(one(TransformStep::make(K::kToUpperCase),
                "stra\xC3\x9F"
                "e"),
            "STRASSE");
  EXPECT_EQ(one(TransformStep::make(K::kToLowerCase), "\xC3\x89T\xC3\x89"), "\xC3\xA9t\xC3\xA9");  // ÉTÉ
  EXPECT_EQ(one(TransformStep::substitute_words({{"caf", "X"}}), "caf\xC3\xA9 caf"), "caf\xC3\xA9 X");
  EXPECT_EQ(one(TransformStep::substitute_words({{"'re", " are"}}), "you're 're"), "you are 're");
  EXPECT_EQ(one(TransformStep::substitute_regexes({{R"(\b(\w+)ed\b)", R"(\1)"}}), "loved it, edited"),
            "lov it, edit");
  EXPECT_EQ(one(TransformStep::make(K::kRemoveKaldiNonWords), "you <unk> like [laugh]"), "you  like ");
  EXPECT_EQ(one(TransformStep::make(K::kExpandCommonEnglishContractions), "won't they'll"),
            "will not they will");
  EXPECT_EQ(one(TransformStep::make(K::kRemovePunctuation), "\xE2\x80\x9Cyes\xE2\x80\x9D, no!"), "yes no");
  EXPECT_EQ(one(TransformStep::remove_white_space(/*replace_by_space=*/true), "a\tb\n"), "a b ");
  EXPECT_EQ(one(TransformStep::remove_specific_words({"uh", "um"}), "uh huh um"), "  huh  ");
}

// Removal steps run in one pass when that is the same as jiwer's str.replace per token, in order.
TEST(WerTransforms, RemovalMatchesSequentialReplace) {
  TransformStep st = TransformStep::make(TransformKind::kRemovePunctuation);
  st.tokens_to_remove = {"a", "b"};
  st.replace_token = "xb";  // brings back a later token: "a" -> "xb" -> "xxb"
  EXPECT_EQ(TextTransform({st})(TextValue::of_string("ab")).string, "xxbxb");
  st.tokens_to_remove = {"ab"};  // several code points
  st.replace_token = "-";
  EXPECT_EQ(TextTransform({st})(TextValue::of_string("cabab")).string, "c--");
  st.tokens_to_remove = {"\xC3\xA9", "!"};  // é and !, one pass
  st.replace_token = "";
  EXPECT_EQ(TextTransform({st})(TextValue::of_string("caf\xC3\xA9!")).string, "caf");
}

TEST(WerTransforms, ListsAndReductions) {
  using K = TransformKind;
  const TextTransform chars({TransformStep::make(K::kReduceToListOfListOfChars)});
  EXPECT_EQ(chars(TextValue::of_string("n\xC3\xA9")), TextValue::of_tokens({{"n", "\xC3\xA9"}}));
  EXPECT_EQ(chars(TextValue::of_list({})), TextValue::of_tokens({{}}));
  const TextTransform single({TransformStep::reduce_to_single_sentence("_")});
  EXPECT_EQ(single(TextValue::of_list({"a", "", "b"})), TextValue::of_list({"a_b"}));
  EXPECT_EQ(single(TextValue::of_list({""})), TextValue::of_list({}));
  const TextTransform empty({TransformStep::make(K::kRemoveEmptyStrings)});
  EXPECT_EQ(empty(TextValue::of_list({" ", "x", ""})), TextValue::of_list({"x"}));
  EXPECT_EQ(wer_default()(TextValue::of_list({"  a  b ", ""})), TextValue::of_tokens({{"a", "b"}, {}}));
  // A step after the reduction gets token lists: a clear error, not a crash.
  const TextTransform bad({TransformStep::reduce_to_words(), TransformStep::make(K::kStrip)});
  EXPECT_THROW(bad(TextValue::of_string("a")), mmref::Error);
}

TEST(WerTransforms, FromJson) {
  const auto j = nlohmann::ordered_json::parse(R"({"Compose": [
      {"class": "ToLowerCase", "params": {}},
      {"class": "SubstituteWords", "params": {"substitutions": {"gonna": "going to", "u": "you"}}},
      {"class": "RemoveSpecificWords", "params": {"words_to_remove": ["um"]}},
      {"class": "RemoveMultipleSpaces"}, {"class": "Strip"},
      {"class": "ReduceToListOfListOfWords", "params": {"word_delimiter": " "}}]})");
  const TextTransform t = TextTransform::from_json(j);
  ASSERT_EQ(t.steps().size(), 6u);
  EXPECT_EQ(t(TextValue::of_string("Um U gonna")), TextValue::of_tokens({{"you", "going", "to"}}));
  EXPECT_TRUE(
      TextTransform::from_json(nlohmann::ordered_json::parse(R"({"named": "wer_standardize"})")).steps() ==
      wer_standardize().steps());
  EXPECT_THROW(TextTransform::from_json(nlohmann::ordered_json::parse(R"({"class": "Stripp"})")),
               ConfigError);
  EXPECT_THROW(
      TextTransform::from_json(nlohmann::ordered_json::parse(R"({"class": "Strip", "params": {"x": 1}})")),
      ConfigError);
  EXPECT_THROW(TextTransform::named("wer_fancy"), ConfigError);
  EXPECT_THROW(TextTransform({TransformStep::substitute_regexes({{"(?P<x>a)", "b"}})}), ConfigError);
  EXPECT_THROW(TextTransform({TransformStep::substitute_regexes({{R"(\Aa)", "b"}})}), ConfigError);
  EXPECT_NO_THROW(
      TextTransform({TransformStep::substitute_regexes({{R"(\\A)", "b"}})}));  // an escaped backslash
}

TEST(WerNormalization, RecipeAndYaml) {
  WerNormalization c;
  c.letter_case = WerNormalization::Case::kLower;
  c.remove_punctuation = true;
  c.expand_numbers = true;
  const TextTransform t = make_word_transform(c);
  EXPECT_EQ(t(TextValue::of_list({"Hello,\tWorld!  I have 21 cats."})),
            TextValue::of_tokens({{"hello", "world", "i", "have", "twenty", "one", "cats"}}));
  EXPECT_EQ(expand_numbers("in 1984 we paid $5"), "in nineteen eighty four we paid five dollars");
  EXPECT_EQ(make_char_transform(c)(TextValue::of_string(" A 1 ")),
            TextValue::of_tokens({{"a", " ", "o", "n", "e"}}));
  WerNormalization plain;
  plain.normalize_whitespace = false;
  EXPECT_TRUE(make_word_transform(plain).steps() == wer_default().steps());
  EXPECT_TRUE(make_char_transform(plain).steps() == cer_default().steps());

  const config::Node n = config::parse_yaml("case: lower\nexpand_numbers: true\n", "wer.yaml");
  config::Reader r(&n, "", nullptr);
  WerNormalization y;
  parse(r, y);
  EXPECT_EQ(y.letter_case, WerNormalization::Case::kLower);
  EXPECT_TRUE(y.expand_numbers);
  EXPECT_FALSE(y.remove_punctuation);
  const config::Node bad = config::parse_yaml("case: upper\n", "wer.yaml");
  config::Reader rb(&bad, "", nullptr);
  EXPECT_THROW(parse(rb, y), ConfigError);
}

TEST(WerVisualize, HandCheckedPrintout) {
  VisualizeOptions no_measures;
  no_measures.show_measures = false;
  const WordOutput out = process_words("the cat sat", "the bat sat down");
  const std::string block =
      "=== SENTENCE 1 ===\n\n"
      "REF: the cat sat ****\n"
      "HYP: the bat sat down\n"
      "           S        I\n";
  EXPECT_EQ(visualize_alignment(out, no_measures), block);
  EXPECT_EQ(visualize_alignment(out),
            block +
                "\n=== SUMMARY ===\nnumber of sentences: 1\nsubstitutions=1 deletions=0 insertions=1 hits=2\n"
                "\nmer=50.00%\nwil=66.67%\nwip=33.33%\nwer=66.67%\n");
  // Correct sentences are skipped; nothing left means an empty string.
  EXPECT_EQ(visualize_alignment(process_words("a", "a"), no_measures), "");
  const CharacterOutput c = process_characters("ab", "axb");
  EXPECT_EQ(visualize_alignment(c, no_measures), "=== SENTENCE 1 ===\n\nREF: a*b\nHYP: axb\n      I \n");
}

}  // namespace
}  // namespace mmref::eval
