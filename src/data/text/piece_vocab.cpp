#include "data/text/piece_vocab.h"

#include <cctype>

#include "core/error.h"

namespace mmref::data {

PieceVocab PieceVocab::train(const std::vector<std::string>& texts, const std::string& model_prefix,
                             int vocab_size, const std::string& model_type) {
  if (model_type != "bpe" && model_type != "unigram")
    throw ConfigError("subword units: model type '" + model_type + "' (use bpe or unigram)");
  if (texts.empty()) MMREF_FAIL("subword units: no training texts for the SentencePiece model '{}'", model_prefix);
  SentencePieceOptions o;
  o.character_coverage = 1.0;
  o.normalization_rule_name = "identity";
  train_sentencepiece(texts, model_prefix, vocab_size, model_type, o);
  return load(model_prefix + ".model");
}

PieceVocab PieceVocab::load(const std::string& model_path) {
  auto tok = std::make_shared<SentencePieceTokenizer>();
  tok->load(model_path);
  std::vector<std::string> units = {kBlank, kUnk};
  for (int i = 0; i < tok->vocab_size(); ++i) {
    if (i == tok->unk_id() || i == tok->bos_id() || i == tok->eos_id() || i == tok->pad_id()) continue;
    units.push_back(tok->id_to_piece(i));
  }
  PieceVocab v;
  v.set_units(std::move(units), model_path);
  v.tok_ = std::move(tok);
  v.model_path_ = model_path;
  return v;
}

std::vector<std::string> PieceVocab::split(const std::string& text) const {
  // Whitespace runs fold to one space first: SentencePiece then marks each word start with "▁".
  std::string clean;
  bool space = false;
  for (unsigned char c : text) {
    if (c < 0x80 && std::isspace(c)) {
      space = !clean.empty();
      continue;
    }
    if (space) clean += ' ';
    space = false;
    clean += static_cast<char>(c);
  }
  return tok_->encode_pieces(clean);
}

}  // namespace mmref::data
