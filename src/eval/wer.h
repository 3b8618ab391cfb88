// Word and character error rates with jiwer 4.0.0 semantics: WER, MER, WIL, WIP (process_words) and CER
// (process_characters), the per-sentence alignment as equal/substitute/delete/insert chunks chosen exactly
// as rapidfuzz's Levenshtein.opcodes backtrace chooses them (the choice decides H/S/D/I, hence MER/WIL/WIP),
// jiwer's text transforms as a small data-driven pipeline, and jiwer's alignment printout.
//
//   auto out = eval::process_words("the cat sat on the mat", "the cat sat on mat");  // wer_default
//   out.wer;                                   // 1/6; out.deletions == 1, out.alignments[0] ...
//   eval::visualize_alignment(out);            // jiwer.visualize_alignment(out)
//   eval::process_characters("café", "cafe").cer;   // 0.25 (code points; spaces count as characters)
//   eval::WerNormalization n;                  // or parse(reader, n) from YAML
//   n.letter_case = eval::WerNormalization::Case::kLower;
//   const eval::TextTransform t = eval::make_word_transform(n);
//   eval::process_words(refs, hyps, t, t);
//
// Semantics (jiwer 4.0.0):
//   - A string input is one sentence ([str]); both sides go through their transform, which must end in
//     ReduceToListOfListOfWords or ReduceToListOfListOfChars; then the sentence counts must match, else
//     mmref::Error (jiwer's ValueError).
//   - Sentences are aligned pairwise; H/S/D/I are summed over sentences, then
//       wer = (S+D+I)/(H+S+D)    mer = (S+D+I)/(H+S+D+I)    wip = (H/N_ref)*(H/N_hyp), 0 if N_hyp = 0
//       wil = 1 - wip
//     With no reference tokens at all: wer = I (a count), mer = 0 and wip = 1 if there are no hypothesis
//     tokens, else mer = 1 and wip = 0. CER is the WER of process_characters.
//   - Tokens are compared as exact UTF-8 strings; words are interned to integer ids and aligned with
//     Hyyrö's bit-parallel Levenshtein matrix (64 reference tokens per machine word, any length), after
//     the common prefix and suffix are removed, exactly as rapidfuzz's Levenshtein_py.editops does. The
//     backtrace goes from the end: delete when the vertical delta is +1, else insert when the delta one
//     row up is -1, else diagonal (match or replace).
//   - Unicode follows Python 3.11 (Unicode 14.0): str.isspace() for Strip/RemoveMultipleSpaces, str.lower()
//     and str.upper() (full mappings, final sigma), \w (str.isalnum() or '_') for SubstituteWords'
//     word boundaries, category P* for RemovePunctuation. SubstituteRegexes uses std::regex (ECMAScript)
//     on UTF-8 bytes: the pattern syntax jiwer users write (\b, \w, groups, classes, alternation) works;
//     \w and \b are ASCII-only there, '.' matches one byte, and Python-only syntax ((?P<n>...), lookbehind,
//     inline flags, \A, \Z) throws ConfigError. Replacement templates are Python's (\1, \g<1>, \\, \n).
//
// Ref: jitsi/jiwer 4.0.0 (commit c1b0d5e) src/jiwer/process.py, transforms.py, transformations.py,
//      alignment.py; rapidfuzz/RapidFuzz 384c676 src/rapidfuzz/distance/Levenshtein_py.py (editops) and
//      _initialize_py.py (Editops.as_opcodes); H. Hyyrö, "A Note on Bit-Parallel Alignment Computation",
//      Stringology 2004. Written from the behaviour, not ported line by line.
// Tests: tests/eval/wer_test.cpp (hand-checked cases, the bit-parallel matrix against a plain DP),
// tests/eval/wer_golden_test.cpp (every record of $MMREF_GOLDEN_DIR/wer/cases.json).
// Benchmark: build/<dir>/bin/mmref_bench_eval --benchmark_filter=Wer
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "eval/result.h"

namespace mmref::config {
class Reader;
}

namespace mmref::eval {

// ---------------------------------------------------------------------------------------------------
// Transforms (jiwer.transforms): what flows through them is a string, a list of strings, or, after a
// ReduceTo* step, a list of token lists.

struct TextValue {
  enum class Kind { kString, kList, kTokens };
  Kind kind = Kind::kList;
  std::string string;                            // kString
  std::vector<std::string> list;                 // kList
  std::vector<std::vector<std::string>> tokens;  // kTokens

  static TextValue of_string(std::string s);
  static TextValue of_list(std::vector<std::string> l);
  static TextValue of_tokens(std::vector<std::vector<std::string>> t);
  bool operator==(const TextValue& o) const;
  bool operator!=(const TextValue& o) const { return !(*this == o); }
  // JSON-like rendering for messages: "abc", ["a", "b"], [["a"], []].
  std::string debug_string() const;
};

enum class TransformKind {
  kRemoveMultipleSpaces,             // re.sub(r"\s\s+", " ", s)
  kStrip,                            // s.strip()
  kRemoveEmptyStrings,               // drops list items that are empty after strip(); a string is stripped
  kReduceToListOfListOfWords,        // s.split(word_delimiter) without empty words; [] -> [[]]
  kReduceToListOfListOfChars,        // one token per code point; [] -> [[]]
  kReduceToSingleSentence,           // non-empty items joined with word_delimiter; none -> []
  kToLowerCase,                      // str.lower()
  kToUpperCase,                      // str.upper()
  kRemovePunctuation,                // every tokens_to_remove -> replace_token (default: all P* code points)
  kRemoveWhiteSpace,                 // every tokens_to_remove -> replace_token (default: string.whitespace)
  kRemoveSpecificWords,              // SubstituteWords with every word -> " "
  kSubstituteWords,                  // re.sub(r"\b" + re.escape(key) + r"\b", value, s), in order
  kSubstituteRegexes,                // re.sub(key, value, s), in order (std::regex, see the top of the file)
  kExpandCommonEnglishContractions,  // won't -> will not, can't -> can not, n't -> " not", 're -> " are", ...
  kRemoveKaldiNonWords,              // re.sub(r"[<\[][^>\]]*[>\]]", "", s)
  kExpandNumbers,                    // mmref extension (not in jiwer): numbers to English words, see below
};

// The jiwer class name ("RemoveMultipleSpaces", ...; "ExpandNumbers" for the extension).
std::string_view transform_name(TransformKind k);

// One transform with its parameters (the fields a kind does not use stay empty).
struct TransformStep {
  TransformKind kind = TransformKind::kStrip;
  std::string word_delimiter = " ";           // ReduceToListOfListOfWords, ...SingleSentence
  std::vector<std::string> tokens_to_remove;  // RemovePunctuation, RemoveWhiteSpace
  std::string replace_token;                  // RemovePunctuation, RemoveWhiteSpace
  std::vector<std::pair<std::string, std::string>> substitutions;  // Substitute*, RemoveSpecificWords

  // A step with jiwer's default parameters for `kind`.
  static TransformStep make(TransformKind kind);
  static TransformStep reduce_to_words(std::string word_delimiter = " ");
  static TransformStep reduce_to_single_sentence(std::string word_delimiter = " ");
  static TransformStep remove_white_space(bool replace_by_space = false);
  static TransformStep remove_specific_words(const std::vector<std::string>& words);
  static TransformStep substitute_words(std::vector<std::pair<std::string, std::string>> substitutions);
  static TransformStep substitute_regexes(std::vector<std::pair<std::string, std::string>> substitutions);

  bool operator==(const TransformStep& o) const;
  bool operator!=(const TransformStep& o) const { return !(*this == o); }
};

struct CompiledStep;  // wer.cpp: compiled regexes, parsed templates, removal sets

// jiwer.Compose: the steps applied in order. Cheap to copy (regexes, replacement templates and removal
// sets are built once by the constructor and shared).
class TextTransform {
 public:
  TextTransform() = default;                                 // identity
  explicit TextTransform(std::vector<TransformStep> steps);  // throws ConfigError on a bad regex

  // jiwer.transformations: "wer_default", "wer_contiguous", "wer_standardize", "cer_default",
  // "cer_contiguous". Unknown names throw ConfigError.
  static TextTransform named(std::string_view name);
  // {"Compose": [{"class": ..., "params": {...}}, ...]}, one {"class", "params"} object, or
  // {"named": name[, "expanded": {...}]} (the expansion is used when given). Params are jiwer's
  // constructor arguments or attributes: word_delimiter; tokens_to_remove and replace_token (or
  // replace_by_space); substitutions (or words_to_remove). Use ordered_json so that substitutions keep
  // their order (jiwer applies them in dict order). Unknown classes and keys throw ConfigError.
  static TextTransform from_json(const nlohmann::ordered_json& j);

  TextValue operator()(TextValue v) const;  // throws mmref::Error when a step gets the wrong kind
  const std::vector<TransformStep>& steps() const { return steps_; }

 private:
  std::vector<TransformStep> steps_;
  std::vector<std::shared_ptr<const CompiledStep>> compiled_;  // per step; null when nothing to precompute
};

// jiwer.transformations (immutable, built once).
const TextTransform& wer_default();      // RemoveMultipleSpaces, Strip, ReduceToListOfListOfWords
const TextTransform& wer_contiguous();   // ... with ReduceToSingleSentence before the split
const TextTransform& wer_standardize();  // lower, contractions, Kaldi non-words, whitespace, split
const TextTransform& cer_default();      // Strip, ReduceToListOfListOfChars
const TextTransform& cer_contiguous();   // Strip, ReduceToSingleSentence, ReduceToListOfListOfChars

// A simple normalisation recipe (YAML keys: case: keep|lower, remove_punctuation, normalize_whitespace,
// expand_numbers). make_word_transform builds, in this order:
//   [ExpandNumbers] [ToLowerCase] [RemovePunctuation] [RemoveWhiteSpace(replace_by_space=True)]
//   RemoveMultipleSpaces Strip ReduceToListOfListOfWords
// (the bracketed steps when enabled; RemoveWhiteSpace with normalize_whitespace). make_char_transform is
// the same ending in ReduceToListOfListOfChars, and keeps RemoveMultipleSpaces only with
// normalize_whitespace. With normalize_whitespace = false and the other defaults they are exactly
// wer_default and cer_default; the defaults add only the whitespace mapping (a tab or newline separates
// words, as a space does).
// expand_numbers uses data::normalize_text's number forms (digits only; the rest of the text is kept):
// "21" -> "twenty one", "1,000" -> "one thousand", "3.5" -> "three point five", "1st" -> "first",
// "1984" -> "nineteen eighty four", "$5" -> "five dollars", "50%" -> "fifty percent", "007" -> "zero zero
// seven"; see src/data/text/normalize.h for the exact rules.
struct WerNormalization {
  enum class Case { kKeep, kLower };
  Case letter_case = Case::kKeep;
  bool remove_punctuation = false;   // every Unicode P* code point removed (' too: "it's" -> "its")
  bool normalize_whitespace = true;  // tabs/newlines -> ' ', runs collapsed, ends stripped
  bool expand_numbers = false;
};
void parse(config::Reader& r, WerNormalization& c);
TextTransform make_word_transform(const WerNormalization& c);
TextTransform make_char_transform(const WerNormalization& c);

// Numbers to English words (the kExpandNumbers step on one string).
std::string expand_numbers(const std::string& s);

// ---------------------------------------------------------------------------------------------------
// Alignment.

struct AlignmentChunk {
  enum class Type : uint8_t { kEqual, kSubstitute, kDelete, kInsert };
  Type type = Type::kEqual;
  int64_t ref_start = 0, ref_end = 0;  // [ref_start, ref_end) in the reference tokens
  int64_t hyp_start = 0, hyp_end = 0;  // [hyp_start, hyp_end) in the hypothesis tokens
  bool operator==(const AlignmentChunk& o) const;
  bool operator!=(const AlignmentChunk& o) const { return !(*this == o); }
};
std::string_view to_string(AlignmentChunk::Type t);  // "equal", "substitute", "delete", "insert"

// Levenshtein opcodes between two token-id sequences as rapidfuzz.distance.Levenshtein.opcodes returns
// them (with "replace" called kSubstitute, as jiwer does). Keeps its buffers between calls: reuse one
// Aligner per thread in hot loops. Memory is about 16 bytes per (hyp token x 64 ref tokens) after the
// common prefix/suffix are removed; more than 2 GiB throws mmref::Error (split such inputs into sentences).
class Aligner {
 public:
  void align(const int32_t* ref, size_t ref_len, const int32_t* hyp, size_t hyp_len,
             std::vector<AlignmentChunk>& out);

 private:
  struct EditOp {
    AlignmentChunk::Type type;
    int64_t src, dest;
  };
  const uint64_t* pattern(int32_t symbol) const;
  std::vector<int32_t> bucket_key_;
  std::vector<int32_t> bucket_row_;
  std::vector<uint64_t> pm_;    // [distinct ref symbol][word]: where the symbol occurs in the ref
  std::vector<uint64_t> zero_;  // [word]: the pattern of a symbol absent from the ref
  std::vector<uint64_t> vp_, vn_, col_vp_, col_vn_;  // [hyp position][word], current column
  std::vector<EditOp> ops_;
  uint32_t bucket_shift_ = 0;
  size_t words_ = 0;
};
std::vector<AlignmentChunk> levenshtein_opcodes(const std::vector<int32_t>& ref,
                                                const std::vector<int32_t>& hyp);

// ---------------------------------------------------------------------------------------------------
// Measures.

struct ErrorCounts {
  int64_t hits = 0, substitutions = 0, deletions = 0, insertions = 0;
  int64_t reference_length() const { return hits + substitutions + deletions; }
  int64_t hypothesis_length() const { return hits + substitutions + insertions; }
  ErrorCounts& operator+=(const ErrorCounts& o);
  bool operator==(const ErrorCounts& o) const;
};
// equal -> hits += ref span, substitute -> substitutions += ref span, delete -> deletions += ref span,
// insert -> insertions += hyp span (as jiwer counts the opcodes).
ErrorCounts count_errors(const std::vector<AlignmentChunk>& chunks);

struct ErrorRates {
  double wer = 0, mer = 0, wil = 0, wip = 0;
};
// jiwer's formulas with the empty-reference rule (top of the file).
ErrorRates error_rates(const ErrorCounts& c);
// Corpus counts of a subset of utterances (indices may repeat): for bootstrap_ci over utterances,
//   bootstrap_ci(n, [&](const auto& idx) { return error_rates(sum_counts(out.utterances, idx)).wer; });
ErrorCounts sum_counts(const std::vector<ErrorCounts>& utterances, const std::vector<int64_t>& indices);

// ---------------------------------------------------------------------------------------------------
// process_words / process_characters.

// One sentence or several: "text", std::string, {"a", "b"} or a std::vector<std::string>.
struct Sentences {
  std::vector<std::string> items;
  Sentences(const char* s) : items{std::string(s)} {}             // NOLINT: implicit on purpose
  Sentences(std::string s) : items{std::move(s)} {}               // NOLINT
  Sentences(std::vector<std::string> v) : items(std::move(v)) {}  // NOLINT
  Sentences(std::initializer_list<std::string> l) : items(l) {}   // NOLINT
};

struct AlignmentOutput {
  std::vector<std::vector<std::string>> references;                    // after the reference transform
  std::vector<std::vector<std::string>> hypotheses;                    // after the hypothesis transform
  std::vector<std::vector<AlignmentChunk>> alignments;                 // per sentence
  std::vector<ErrorCounts> utterances;                                 // per sentence
  int64_t hits = 0, substitutions = 0, deletions = 0, insertions = 0;  // sums over sentences
  ErrorCounts counts() const { return {hits, substitutions, deletions, insertions}; }
  // One sentence's rates by the same formulas (its own empty-reference rule included).
  ErrorRates utterance_rates(size_t i) const { return error_rates(utterances.at(i)); }
};

struct WordOutput : AlignmentOutput {
  double wer = 0, mer = 0, wil = 0, wip = 0;
};

struct CharacterOutput : AlignmentOutput {
  double cer = 0;
};

// Throws mmref::Error when a transform does not end in a ReduceTo* step or the sentence counts differ
// after the transforms (jiwer's ValueError cases).
WordOutput process_words(const Sentences& reference, const Sentences& hypothesis,
                         const TextTransform& reference_transform = wer_default(),
                         const TextTransform& hypothesis_transform = wer_default());
CharacterOutput process_characters(const Sentences& reference, const Sentences& hypothesis,
                                   const TextTransform& reference_transform = cer_default(),
                                   const TextTransform& hypothesis_transform = cer_default());
double wer(const Sentences& reference, const Sentences& hypothesis,
           const TextTransform& reference_transform = wer_default(),
           const TextTransform& hypothesis_transform = wer_default());
double cer(const Sentences& reference, const Sentences& hypothesis,
           const TextTransform& reference_transform = cer_default(),
           const TextTransform& hypothesis_transform = cer_default());

// A MetricResult ("wer" / "cer", n = sentences, extra = hits/substitutions/deletions/insertions and
// mer/wil/wip) for result files; add a CI with bootstrap_ci and sum_counts.
MetricResult to_metric_result(const WordOutput& out);
MetricResult to_metric_result(const CharacterOutput& out);

// ---------------------------------------------------------------------------------------------------
// jiwer.visualize_alignment: the exact printout (REF/HYP/op lines padded by code points, line_width
// wrapping, the summary with rates as percentages with two decimals).
struct VisualizeOptions {
  bool show_measures = true;
  bool skip_correct = true;
  std::optional<int64_t> line_width;
};
std::string visualize_alignment(const WordOutput& out, const VisualizeOptions& opt = {});
std::string visualize_alignment(const CharacterOutput& out, const VisualizeOptions& opt = {});

}  // namespace mmref::eval
