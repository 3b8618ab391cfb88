// Subword units for CTC: a UnitVocab whose units are the pieces of a SentencePiece model (BPE or
// unigram), laid out like the other vocabularies -- <blank>=0, <unk>=1, then the model's pieces in the
// model's order, without its own control pieces (<unk>, <s>, </s>, <pad>). Texts split with the model
// (encode_pieces); ids decode through UnitVocab::decode ("▁the" -> " the"), so a run's units.txt alone
// decodes (eval's transcriber loads it as a plain unit list); encoding needs the .model file.
//
//   auto v = PieceVocab::train(texts, run_dir + "/spm", 128);   // writes spm.model / spm.vocab
//   auto v2 = PieceVocab::load(run_dir + "/spm.model");          // resume, fine-tune, evaluate
//
// Ref: wenet tools/spm_train + tools/text2token.py (bpe units.txt layout), google/sentencepiece.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/text/sentencepiece.h"
#include "data/text/vocab.h"

namespace mmref::data {

class PieceVocab : public UnitVocab {
 public:
  // Trains a SentencePiece model (`model_type` "bpe" or "unigram", identity normalisation, full
  // character coverage) on `texts` into `<model_prefix>.model`, then loads it. Throws mmref::Error with
  // SentencePiece's reason (e.g. vocab_size too large for so little text: lower it).
  static PieceVocab train(const std::vector<std::string>& texts, const std::string& model_prefix, int vocab_size,
                          const std::string& model_type = "bpe");
  // Missing or corrupt .model files: mmref::Error naming the file.
  static PieceVocab load(const std::string& model_path);

  std::vector<std::string> split(const std::string& text) const override;
  const std::string& model_path() const { return model_path_; }

 private:
  PieceVocab() : UnitVocab(Kind::kPiece) {}
  std::shared_ptr<const SentencePieceTokenizer> tok_;
  std::string model_path_;
};

}  // namespace mmref::data
