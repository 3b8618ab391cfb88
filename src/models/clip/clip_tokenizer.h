// CLIP's byte-level BPE tokenizer (openai/CLIP clip/simple_tokenizer.py + clip.tokenize), reading the
// vocabulary file bpe_simple_vocab_16e6.txt.gz given by path.
//
//   clean      ftfy.fix_text's parts that matter for captions (NFC; curly quotes -> straight; Latin
//              ligatures ﬁ ﬂ ... -> letters; full-width/half-width forms -> their normal-width
//              characters), html.unescape twice, strip, whitespace runs -> one space, lower-case
//   split      CLIP's regex: <|startoftext|> | <|endoftext|> | 's 't 're 've 'm 'll 'd | \p{L}+ | \p{N} |
//              [^\s\p{L}\p{N}]+ (case-insensitive), with ICU
//   bpe        utf-8 bytes -> printable unicode stand-ins (bytes_to_unicode), '</w>' on the last symbol,
//              merges by rank
//   tokenize   [49406] + ids + [49407], zero-padded to 77; truncate: cut to 77 with the last id 49407
//
// html.unescape covers numeric references and the named entities captions use (amp lt gt quot apos nbsp
// and about 40 common typographic ones); other named entities are left as written.
// Ref: openai/CLIP simple_tokenizer.py; rspeer/python-ftfy (fix_text defaults). Tests:
// tests/models/clip_golden_test.cpp (every case in ../shared/golden/clip/tokenizer.json).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::models {

class ClipTokenizer {
 public:
  // Throws mmref::Error naming the file when it is missing or not a CLIP merges file.
  explicit ClipTokenizer(const std::string& bpe_vocab_gz);

  static constexpr int64_t kSot = 49406, kEot = 49407, kContext = 77;

  static std::string clean(const std::string& text);  // the cleaned_text step
  std::vector<int64_t> encode(const std::string& text) const;  // BPE ids, no SOT/EOT, untruncated
  std::string decode(const std::vector<int64_t>& ids) const;
  // (N, context) int64: SOT + ids + EOT, zero padded. Without truncate, a text that does not fit throws.
  at::Tensor tokenize(const std::vector<std::string>& texts, int64_t context = kContext, bool truncate = true) const;
  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }

 private:
  std::vector<std::string> bpe(const std::string& token) const;  // token: byte-mapped utf-8
  std::unordered_map<std::string, int64_t> encoder_;
  std::vector<std::string> decoder_;
  std::map<std::pair<std::string, std::string>, int64_t> ranks_;
  std::vector<std::string> byte_encoder_;             // byte -> utf-8 of its stand-in code point
  std::unordered_map<std::string, uint8_t> byte_decoder_;
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
};

}  // namespace mmref::models
