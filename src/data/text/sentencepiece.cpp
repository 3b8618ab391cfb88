// SentencePiece training and tokenizer wrapper: see sentencepiece.h.
//
// Why the library is reached through dlopen/dlsym and not linked: Debian's libsentencepiece.so.0
// bundles its own protobuf-lite 3.14 and exports those symbols, while Debian's libtorch loads the
// system libprotobuf 3.21. Linked normally, libsentencepiece precedes libprotobuf in the global symbol
// scope, and libprotobuf's static initialisers bind to the 3.14 copies and crash (SIGSEGV in
// ReflectionOps::FindInitializationErrors before main(); measured on Debian 12). Preloading libprotobuf
// instead makes sentencepiece's generated code fail its version check (3.14 vs 3.21). So the library is
// opened once with RTLD_LOCAL | RTLD_DEEPBIND: its own references bind to its bundled protobuf and
// nothing of it enters the global scope. The few entry points we need are looked up by their mangled
// names and called through function pointers with the same Itanium C++ ABI (the object pointer is the
// first argument; util::Status is mirrored by SpmStatus, a non-trivial one-pointer class returned
// through the hidden result pointer, like the original). A cleaner fix for the build owner: a small
// shared shim (C API) linked with sentencepiece and dlopen'ed the same way.
// RTLD_DEEPBIND is refused by AddressSanitizer: in ASan builds these functions throw mmref::Error.
//
// Ref: google/sentencepiece src/sentencepiece_trainer.h, src/sentencepiece_processor.h (API used).
#include "data/text/sentencepiece.h"

#include <dlfcn.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <unordered_map>

// Headers only for sizeof/layout checks: no symbol of them is referenced (see above).
#include <sentencepiece_processor.h>

#include "core/error.h"
#include "core/fs.h"

#if defined(__SANITIZE_ADDRESS__)
#define MMREF_SPM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MMREF_SPM_ASAN 1
#endif
#endif

namespace mmref::data {

namespace {

// sentencepiece::util::Status is one std::unique_ptr<Rep>; null = OK.
struct SpmStatus {
  void* rep = nullptr;
  SpmStatus() = default;
  SpmStatus(const SpmStatus&) = delete;
  SpmStatus& operator=(const SpmStatus&) = delete;
  ~SpmStatus();
  bool ok() const { return rep == nullptr; }
  std::string str() const;
};
static_assert(sizeof(SpmStatus) == sizeof(sentencepiece::util::Status), "util::Status layout changed");

using StrMap = std::unordered_map<std::string, std::string>;

// The entry points, resolved once.
struct SpmApi {
  void (*ctor)(void*);
  void (*deleting_dtor)(void*);
  SpmStatus (*load)(void*, std::string_view);
  SpmStatus (*encode_pieces)(const void*, std::string_view, std::vector<std::string>*);
  SpmStatus (*encode_ids)(const void*, std::string_view, std::vector<int>*);
  SpmStatus (*decode_pieces)(const void*, const std::vector<std::string>&, std::string*);
  SpmStatus (*decode_ids)(const void*, const std::vector<int>&, std::string*);
  int (*piece_size)(const void*);
  int (*piece_to_id)(const void*, std::string_view);
  const std::string& (*id_to_piece)(const void*, int);
  int (*unk_id)(const void*);
  int (*bos_id)(const void*);
  int (*eos_id)(const void*);
  int (*pad_id)(const void*);
  std::string (*serialized)(const void*);
  void (*status_dtor)(void*);
  std::string (*status_to_string)(const void*);
  SpmStatus (*train)(const StrMap&, void* sentence_iterator, std::string* serialized_model);
};

std::once_flag g_spm_once;
SpmApi g_spm{};           // written once under g_spm_once, read-only afterwards
std::string g_spm_error;  // non-empty when loading failed

template <typename F>
void resolve(void* handle, const char* name, F& fn) {
  void* p = dlsym(handle, name);
  if (p == nullptr) MMREF_FAIL("libsentencepiece: symbol '{}' not found ({})", name, dlerror());
  fn = reinterpret_cast<F>(p);
}

void load_spm() {
#ifdef MMREF_SPM_ASAN
  g_spm_error = "SentencePiece is unavailable in AddressSanitizer builds (it needs RTLD_DEEPBIND)";
  return;
#else
  // libsentencepiece_train depends on libsentencepiece: one handle reaches both.
  void* h = dlopen("libsentencepiece_train.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (h == nullptr) {
    g_spm_error =
        fmt::format("cannot load libsentencepiece_train.so.0 ({}); install libsentencepiece0", dlerror());
    return;
  }
  try {
    SpmApi a{};
    resolve(h, "_ZN13sentencepiece22SentencePieceProcessorC1Ev", a.ctor);
    resolve(h, "_ZN13sentencepiece22SentencePieceProcessorD0Ev", a.deleting_dtor);
    resolve(h, "_ZN13sentencepiece22SentencePieceProcessor4LoadESt17basic_string_viewIcSt11char_traitsIcEE",
            a.load);
    resolve(h,
            "_ZNK13sentencepiece22SentencePieceProcessor6EncodeESt17basic_string_viewIcSt11char_traitsIcEE"
            "PSt6vectorINSt7__cxx1112basic_stringIcS3_SaIcEEESaIS9_EE",
            a.encode_pieces);
    resolve(h,
            "_ZNK13sentencepiece22SentencePieceProcessor6EncodeESt17basic_string_viewIcSt11char_traitsIcEE"
            "PSt6vectorIiSaIiEE",
            a.encode_ids);
    resolve(h,
            "_ZNK13sentencepiece22SentencePieceProcessor6DecodeERKSt6vectorINSt7__cxx1112basic_stringIcSt11"
            "char_traitsIcESaIcEEESaIS7_EEPS7_",
            a.decode_pieces);
    resolve(h,
            "_ZNK13sentencepiece22SentencePieceProcessor6DecodeERKSt6vectorIiSaIiEEPNSt7__cxx1112basic_"
            "stringIcSt11char_traitsIcESaIcEEE",
            a.decode_ids);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor12GetPieceSizeEv", a.piece_size);
    resolve(
        h, "_ZNK13sentencepiece22SentencePieceProcessor9PieceToIdESt17basic_string_viewIcSt11char_traitsIcEE",
        a.piece_to_id);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor9IdToPieceB5cxx11Ei", a.id_to_piece);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor6unk_idEv", a.unk_id);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor6bos_idEv", a.bos_id);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor6eos_idEv", a.eos_id);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor6pad_idEv", a.pad_id);
    resolve(h, "_ZNK13sentencepiece22SentencePieceProcessor22serialized_model_protoB5cxx11Ev", a.serialized);
    resolve(h, "_ZN13sentencepiece4util6StatusD1Ev", a.status_dtor);
    resolve(h, "_ZNK13sentencepiece4util6Status8ToStringB5cxx11Ev", a.status_to_string);
    resolve(h,
            "_ZN13sentencepiece20SentencePieceTrainer5TrainERKSt13unordered_mapINSt7__cxx1112basic_stringIcSt"
            "11char_traitsIcESaIcEEES7_St4hashIS7_ESt8equal_toIS7_ESaISt4pairIKS7_S7_EEEPNS_"
            "16SentenceIteratorEPS7_",
            a.train);
    g_spm = a;
  } catch (const Error& e) {
    g_spm_error = e.what();
  }
#endif
}

const SpmApi& spm() {
  std::call_once(g_spm_once, load_spm);
  if (!g_spm_error.empty()) throw Error(g_spm_error);
  return g_spm;
}

SpmStatus::~SpmStatus() {
  if (rep != nullptr) g_spm.status_dtor(this);
}
std::string SpmStatus::str() const { return ok() ? "OK" : g_spm.status_to_string(this); }

StrMap make_args(const std::string& model_prefix, int vocab_size, const std::string& model_type,
                 const SentencePieceOptions& o) {
  if (vocab_size <= 0) MMREF_FAIL("train_sentencepiece: vocab_size must be positive, got {}", vocab_size);
  StrMap a;
  a["model_prefix"] = model_prefix;
  a["vocab_size"] = std::to_string(vocab_size);
  a["model_type"] = model_type;
  a["character_coverage"] = std::to_string(o.character_coverage);
  a["normalization_rule_name"] = o.normalization_rule_name;
  a["num_threads"] = std::to_string(o.num_threads);
  a["unk_id"] = std::to_string(o.unk_id);
  a["bos_id"] = std::to_string(o.bos_id);
  a["eos_id"] = std::to_string(o.eos_id);
  a["pad_id"] = std::to_string(o.pad_id);
  a["hard_vocab_limit"] = o.hard_vocab_limit ? "true" : "false";
  if (!o.user_defined_symbols.empty()) {
    std::string joined;
    for (const auto& s : o.user_defined_symbols) joined += (joined.empty() ? "" : ",") + s;
    a["user_defined_symbols"] = joined;
  }
  a["minloglevel"] = o.verbose ? "0" : "2";
  for (const auto& [k, v] : o.extra) a[k] = v;
  std::filesystem::path parent = std::filesystem::path(model_prefix).parent_path();
  if (!parent.empty()) fs::make_dirs(parent.string());
  return a;
}

void run_train(const StrMap& args, const std::string& model_prefix) {
  const SpmApi& api = spm();
  SpmStatus s = api.train(args, nullptr, nullptr);
  if (!s.ok()) {
    MMREF_FAIL("train_sentencepiece({}): {}; check vocab_size against the amount of text", model_prefix,
               s.str());
  }
}

}  // namespace

bool sentencepiece_available(std::string* why) {
  std::call_once(g_spm_once, load_spm);
  if (why != nullptr) *why = g_spm_error;
  return g_spm_error.empty();
}

void train_sentencepiece(const std::vector<std::string>& texts, const std::string& model_prefix,
                         int vocab_size, const std::string& model_type, const SentencePieceOptions& o) {
  if (texts.empty()) MMREF_FAIL("train_sentencepiece({}): no training texts", model_prefix);
  auto args = make_args(model_prefix, vocab_size, model_type, o);
  // The texts go through a temporary file beside the model (the trainer's file input; a newline inside
  // a text splits it into two sentences).
  const std::string tmp = model_prefix + ".train_input.tmp";
  std::string body;
  for (const auto& t : texts) body += t + "\n";
  fs::atomic_write(tmp, body);
  args["input"] = tmp;
  try {
    run_train(args, model_prefix);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  std::remove(tmp.c_str());
}

void train_sentencepiece_file(const std::string& input_file, const std::string& model_prefix, int vocab_size,
                              const std::string& model_type, const SentencePieceOptions& o) {
  if (!fs::exists(input_file)) {
    MMREF_FAIL("train_sentencepiece: input file '{}' does not exist", input_file);
  }
  auto args = make_args(model_prefix, vocab_size, model_type, o);
  args["input"] = input_file;
  run_train(args, model_prefix);
}

// Owns one library-made SentencePieceProcessor (opaque storage of the right size and alignment).
struct SentencePieceTokenizer::Impl {
  void* sp = nullptr;
  Impl() {
    const SpmApi& api = spm();
    void* mem = ::operator new(sizeof(sentencepiece::SentencePieceProcessor));
    try {
      api.ctor(mem);
    } catch (...) {
      ::operator delete(mem);
      throw;
    }
    sp = mem;
  }
  ~Impl() {
    if (sp != nullptr) g_spm.deleting_dtor(sp);  // virtual deleting destructor frees the storage
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
};

SentencePieceTokenizer::SentencePieceTokenizer() = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;
SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept = default;

void SentencePieceTokenizer::load(const std::string& path) {
  if (!fs::exists(path)) MMREF_FAIL("SentencePiece model '{}' does not exist; train or copy it first", path);
  auto impl = std::make_unique<Impl>();
  SpmStatus s = g_spm.load(impl->sp, path);
  if (!s.ok()) MMREF_FAIL("SentencePiece model '{}' cannot be loaded: {}", path, s.str());
  impl_ = std::move(impl);
  path_ = path;
}

bool SentencePieceTokenizer::loaded() const { return impl_ != nullptr; }

#define MMREF_SPM_LOADED() \
  if (impl_ == nullptr) MMREF_FAIL("SentencePieceTokenizer: no model loaded; call load(path) first")

std::vector<int> SentencePieceTokenizer::encode(const std::string& text) const {
  MMREF_SPM_LOADED();
  std::vector<int> ids;
  SpmStatus s = g_spm.encode_ids(impl_->sp, text, &ids);
  if (!s.ok()) MMREF_FAIL("SentencePiece ({}): cannot encode text: {}", path_, s.str());
  return ids;
}

std::vector<std::string> SentencePieceTokenizer::encode_pieces(const std::string& text) const {
  MMREF_SPM_LOADED();
  std::vector<std::string> pieces;
  SpmStatus s = g_spm.encode_pieces(impl_->sp, text, &pieces);
  if (!s.ok()) MMREF_FAIL("SentencePiece ({}): cannot encode text: {}", path_, s.str());
  return pieces;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
  MMREF_SPM_LOADED();
  const int n = g_spm.piece_size(impl_->sp);
  for (int id : ids) {
    if (id < 0 || id >= n) MMREF_FAIL("SentencePiece ({}): id {} is out of range [0, {})", path_, id, n);
  }
  std::string text;
  SpmStatus s = g_spm.decode_ids(impl_->sp, ids, &text);
  if (!s.ok()) MMREF_FAIL("SentencePiece ({}): cannot decode ids: {}", path_, s.str());
  return text;
}

std::string SentencePieceTokenizer::decode_pieces(const std::vector<std::string>& pieces) const {
  MMREF_SPM_LOADED();
  std::string text;
  SpmStatus s = g_spm.decode_pieces(impl_->sp, pieces, &text);
  if (!s.ok()) MMREF_FAIL("SentencePiece ({}): cannot decode pieces: {}", path_, s.str());
  return text;
}

int SentencePieceTokenizer::vocab_size() const {
  MMREF_SPM_LOADED();
  return g_spm.piece_size(impl_->sp);
}

std::string SentencePieceTokenizer::id_to_piece(int id) const {
  MMREF_SPM_LOADED();
  const int n = g_spm.piece_size(impl_->sp);
  if (id < 0 || id >= n) MMREF_FAIL("SentencePiece ({}): id {} is out of range [0, {})", path_, id, n);
  return g_spm.id_to_piece(impl_->sp, id);
}

int SentencePieceTokenizer::piece_to_id(const std::string& piece) const {
  MMREF_SPM_LOADED();
  return g_spm.piece_to_id(impl_->sp, piece);
}

int SentencePieceTokenizer::unk_id() const {
  MMREF_SPM_LOADED();
  return g_spm.unk_id(impl_->sp);
}
int SentencePieceTokenizer::bos_id() const {
  MMREF_SPM_LOADED();
  return g_spm.bos_id(impl_->sp);
}
int SentencePieceTokenizer::eos_id() const {
  MMREF_SPM_LOADED();
  return g_spm.eos_id(impl_->sp);
}
int SentencePieceTokenizer::pad_id() const {
  MMREF_SPM_LOADED();
  return g_spm.pad_id(impl_->sp);
}

#undef MMREF_SPM_LOADED

void SentencePieceTokenizer::save(const std::string& dir, const std::string& name) const {
  if (impl_ == nullptr) MMREF_FAIL("SentencePieceTokenizer: no model loaded; call load(path) first");
  fs::make_dirs(dir);
  fs::atomic_write(dir + "/" + name + ".model", g_spm.serialized(impl_->sp));
}

}  // namespace mmref::data
