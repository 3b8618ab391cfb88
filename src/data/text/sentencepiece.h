// SentencePiece subword models (BPE or unigram) through libsentencepiece: training from in-memory
// texts or a text file, and a tokenizer wrapper for encode/decode. Ids and pieces match the
// `spm_encode --model=M.model [--output_format=id]` CLI on the same model.
//
//   train_sentencepiece(texts, run_dir + "/spm", /*vocab_size=*/200);   // spm.model + spm.vocab
//   SentencePieceTokenizer tok; tok.load(run_dir + "/spm.model");
//   std::vector<int> ids = tok.encode("hello world");  tok.decode(ids) == "hello world"
//
// Linking note: the library is opened at run time (dlopen, RTLD_DEEPBIND) because Debian's
// libsentencepiece bundles a protobuf that clashes with libtorch's; see sentencepiece.cpp. Not
// available in AddressSanitizer builds (throws mmref::Error).
//
// Defaults chosen for already-normalised transcripts: normalization_rule_name "identity" (no NFKC, so
// decode(encode(x)) == x for normalised text), character_coverage 1.0, one thread and a fixed order,
// so training is deterministic. Training logs are silenced (minloglevel) unless verbose.
//
// Ref: google/sentencepiece doc/options.md and src/spm_train_main.cc (option names).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mmref::data {

// Whether libsentencepiece could be opened (false in ASan builds or when the library is missing); `why`
// receives the reason.
bool sentencepiece_available(std::string* why = nullptr);

struct SentencePieceOptions {
  double character_coverage = 1.0;
  std::string normalization_rule_name = "identity";  // or "nmt_nfkc", "nfkc", ...
  int num_threads = 1;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;  // -1 disables a special piece
  bool hard_vocab_limit = true;
  std::vector<std::string> user_defined_symbols;
  std::map<std::string, std::string> extra;  // any other spm_train flag, e.g. {"max_sentence_length", "8192"}
  bool verbose = false;
};

// Trains on `texts` (one sentence each) and writes `<model_prefix>.model` and `<model_prefix>.vocab`
// (creates the folder). model_type: "bpe", "unigram", "char" or "word". Throws mmref::Error with
// SentencePiece's message (e.g. a vocab_size too large for the data).
void train_sentencepiece(const std::vector<std::string>& texts, const std::string& model_prefix,
                         int vocab_size, const std::string& model_type = "bpe",
                         const SentencePieceOptions& o = {});
// The same from a text file with one sentence per line.
void train_sentencepiece_file(const std::string& input_file, const std::string& model_prefix, int vocab_size,
                              const std::string& model_type = "bpe", const SentencePieceOptions& o = {});

class SentencePieceTokenizer {
 public:
  SentencePieceTokenizer();
  ~SentencePieceTokenizer();
  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;

  // Loads a .model file; throws mmref::Error naming it when missing or not a model.
  void load(const std::string& path);
  bool loaded() const;

  std::vector<int> encode(const std::string& text) const;
  std::vector<std::string> encode_pieces(const std::string& text) const;
  std::string decode(const std::vector<int>& ids) const;
  std::string decode_pieces(const std::vector<std::string>& pieces) const;
  int vocab_size() const;
  std::string id_to_piece(int id) const;
  int piece_to_id(const std::string& piece) const;  // unk id when absent
  int unk_id() const;
  int bos_id() const;  // -1 when disabled
  int eos_id() const;
  int pad_id() const;

  // Saves the loaded model with the run: `<dir>/<name>.model` (atomic, creates dir).
  void save(const std::string& dir, const std::string& name = "spm") const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;  // null until load() succeeds
  std::string path_;
};

}  // namespace mmref::data
