// Unit vocabularies for CTC / seq2seq models: characters (CharVocab) and IPA phonemes (PhonemeVocab).
//
// Ids: <blank>=0 (CTC blank), <unk>=1, then the optional <pad>, <sos>, <eos>, then the units of the
// training texts sorted by code point (= UTF-8 byte order). Units are whole UTF-8 code points, never
// bytes. A space is stored as "▁" (U+2581, the SentencePiece/wenet convention) so that units.txt stays
// "unit id" per line; any ASCII whitespace encodes to it and it decodes back to ' '.
// PhonemeVocab groups a code point with the combining diacritics that follow it (U+0300..U+036F, e.g.
// the syllabic mark in "n̩"), and joins the two sides of a tie bar ("t͡ʃ") into one unit; stress marks
// ˈ ˌ and the length mark ː are units of their own.
//
// Files (saved with the run, see save_vocab):
//   <name>.json       {"kind": "char"|"phoneme", "units": [...], "blank": 0, "unk": 1, "pad": -1, ...}
//   <name>_units.txt  wenet style: "<blank> 0\n<unk> 1\na 2\n..."
//
// Ref: wenet tools/text2token.py and units.txt format; piper-phonemize (one IPA code point per id).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mmref::data {

// Splits UTF-8 text into code points (each as its bytes). Throws mmref::Error on invalid UTF-8, naming
// the byte offset.
std::vector<std::string> split_utf8(const std::string& s);

struct VocabOptions {
  bool add_pad = false;      // "<pad>"
  bool add_sos_eos = false;  // "<sos>", "<eos>"
};

class UnitVocab {
 public:
  enum class Kind { kChar, kPhoneme, kPiece };
  virtual ~UnitVocab() = default;
  UnitVocab(const UnitVocab&) = default;
  UnitVocab& operator=(const UnitVocab&) = default;
  UnitVocab(UnitVocab&&) = default;
  UnitVocab& operator=(UnitVocab&&) = default;
  static constexpr const char* kBlank = "<blank>";
  static constexpr const char* kUnk = "<unk>";
  static constexpr const char* kPad = "<pad>";
  static constexpr const char* kSos = "<sos>";
  static constexpr const char* kEos = "<eos>";
  static constexpr const char* kSpace = "\xE2\x96\x81";  // ▁

  Kind kind() const { return kind_; }
  int64_t size() const { return static_cast<int64_t>(units_.size()); }
  const std::vector<std::string>& units() const { return units_; }
  const std::string& unit(int64_t id) const;  // throws on out-of-range ids
  int64_t id(const std::string& unit) const;  // -1 when absent
  int64_t blank_id() const { return 0; }
  int64_t unk_id() const { return 1; }
  int64_t pad_id() const { return pad_; }  // -1 when absent
  int64_t sos_id() const { return sos_; }
  int64_t eos_id() const { return eos_; }

  // Text -> units (code points, or IPA groups for phonemes; subword pieces in PieceVocab). Whitespace
  // -> "▁".
  virtual std::vector<std::string> split(const std::string& text) const;
  // Unknown units -> unk_id().
  std::vector<int64_t> encode(const std::string& text) const;
  // Special units (<blank>, <pad>, <sos>, <eos>) are dropped when skip_special; <unk> decodes to "<unk>"
  // unless skip_special. Every "▁" inside a unit decodes to ' ' (subword pieces carry it as a word
  // start: "▁the" -> " the"). Throws on out-of-range ids.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = true) const;

  void save_json(const std::string& path) const;
  void save_units(const std::string& path) const;

 protected:
  explicit UnitVocab(Kind k) : kind_(k) {}
  void build_from(const std::vector<std::string>& texts, const VocabOptions& o);
  void load_json_into(const std::string& path);
  void load_units_into(const std::string& path);
  // Checks the reserved layout and fills the lookup table; `where` names the source in errors.
  void finalize(const std::string& where);
  void set_units(std::vector<std::string> units, const std::string& where) {
    units_ = std::move(units);
    finalize(where);
  }

 private:
  Kind kind_;
  std::vector<std::string> units_;
  std::unordered_map<std::string, int64_t> index_;
  int64_t pad_ = -1, sos_ = -1, eos_ = -1;
};

class CharVocab : public UnitVocab {
 public:
  CharVocab() : UnitVocab(Kind::kChar) {}
  static CharVocab build(const std::vector<std::string>& texts, const VocabOptions& o = {});
  static CharVocab load_json(const std::string& path);
  static CharVocab load_units(const std::string& path);
};

class PhonemeVocab : public UnitVocab {
 public:
  PhonemeVocab() : UnitVocab(Kind::kPhoneme) {}
  // `phoneme_texts` are IPA strings (phonemize() output).
  static PhonemeVocab build(const std::vector<std::string>& phoneme_texts, const VocabOptions& o = {});
  static PhonemeVocab load_json(const std::string& path);
  static PhonemeVocab load_units(const std::string& path);
};

// Saves `<dir>/<name>.json` and `<dir>/<name>_units.txt` atomically (creates dir). An empty name means
// "chars" for a CharVocab and "phonemes" for a PhonemeVocab.
void save_vocab(const UnitVocab& v, const std::string& dir, const std::string& name = "");
CharVocab load_char_vocab(const std::string& dir, const std::string& name = "chars");
PhonemeVocab load_phoneme_vocab(const std::string& dir, const std::string& name = "phonemes");

}  // namespace mmref::data
