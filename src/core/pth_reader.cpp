// The .pth reader: torch.save() zip archives, read without running Python; see pth_reader.h.
//
// Why our own unpickler: torch::pickle_load (libtorch 1.13) maps the global `collections.OrderedDict`
// to None ("OrderedDicts only appear in tensor deserialization"), so a Python `model.state_dict()` saved
// with torch.save fails with "Expected GenericDict but got None" at its first SETITEMS; it also cannot
// BUILD the `_metadata` attribute that follows. The zip container is still read with libtorch's
// caffe2::serialize::PyTorchStreamReader (stable from 1.13 to 2.x). The unpickler below implements the
// binary opcodes of pickle protocols 2-5 and a whitelist of callables (OrderedDict, tensor rebuilds);
// any other class becomes an opaque placeholder and is never called, so a checkpoint's extra entries
// (argparse.Namespace, numpy scalars, ...) do not stop us from reading its tensors.
// Ref: CPython Lib/pickle.py and Lib/pickletools.py (opcodes); torch/serialization.py (_save, _load).
#include "core/pth_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <unordered_map>
#include <utility>

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/types.h>

#include "core/error.h"

namespace mmref {
namespace {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
std::string shape_str(c10::IntArrayRef s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// ---- restricted unpickler ----------------------------------------------------------------------------

// Values live in the unpickler's arena and point at each other with plain pointers: freeing is flat (a
// pickle of a million nested tuples cannot overflow the stack in recursive destructors) and reference
// cycles (a list appended to itself) cannot leak.
struct PyVal;
using PyPtr = PyVal*;

struct PyVal {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Opaque, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;                              // Str, Bytes, Global "module.name", Opaque's origin
  std::vector<PyPtr> items;                   // Tuple, List
  std::vector<std::pair<PyPtr, PyPtr>> dict;  // Dict, in insertion order
  torch::Tensor tensor;                       // Storage (1-D, the whole storage) or Tensor
};

const char* kind_name(PyVal::Kind k) {
  static const char* names[] = {"None",      "a bool",    "an int",  "a float", "a str",
                                "bytes",     "a tuple",   "a list",  "a dict",  "a global",
                                "an object", "a storage", "a tensor"};
  return names[static_cast<int>(k)];
}

// Names from a corrupt file may hold control bytes; messages stay one readable line.
std::string printable(const std::string& s) {
  constexpr size_t kMax = 80;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += c < 0x20 || c == 0x7f ? fmt::format("\\x{:02x}", c) : std::string(1, s[i]);
  }
  return s.size() > kMax ? out + "..." : out;
}

// Storage class name (torch.FloatStorage, torch.cuda.HalfStorage, ...) -> dtype.
std::optional<torch::Dtype> storage_dtype(const std::string& global) {
  static const std::map<std::string, torch::Dtype> kStorages = {
      {"FloatStorage", torch::kFloat},
      {"DoubleStorage", torch::kDouble},
      {"HalfStorage", torch::kHalf},
      {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kLong},
      {"IntStorage", torch::kInt},
      {"ShortStorage", torch::kShort},
      {"CharStorage", torch::kChar},
      {"ByteStorage", torch::kByte},
      {"BoolStorage", torch::kBool},
      {"ComplexFloatStorage", torch::kComplexFloat},
      {"ComplexDoubleStorage", torch::kComplexDouble},
      {"UntypedStorage", torch::kByte}};
  const auto dot = global.rfind('.');
  const std::string mod = dot == std::string::npos ? "" : global.substr(0, dot);
  if (mod != "torch" && mod != "torch.cuda") return std::nullopt;
  auto it = kStorages.find(global.substr(dot + 1));
  if (it == kStorages.end()) return std::nullopt;
  return it->second;
}

class Unpickler {
 public:
  // Returns the storage (a 1-D tensor) that a persistent id names.
  using PersistentLoad = std::function<torch::Tensor(const PyVal& pid)>;

  Unpickler(std::string where, const char* data, size_t size, PersistentLoad load)
      : where_(std::move(where)), p_(data), size_(size), load_(std::move(load)) {}

  // The unpickled object; it lives as long as this unpickler.
  PyPtr run() {
    while (true) {
      const size_t at = pos_;
      const uint8_t op = u8();
      if (op == '.') {  // STOP
        if (stack_.empty()) fail(at, "STOP with an empty stack");
        return stack_.back();
      }
      step(op, at);
    }
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) const {
    MMREF_FAIL(
        "{}: corrupt or unsupported pickle at byte {}: {} (re-save with torch.save, or convert the "
        "weights to safetensors)",
        where_, at, what);
  }

  PyPtr make(PyVal::Kind k) {
    arena_.emplace_back();
    arena_.back().kind = k;
    return &arena_.back();
  }
  PyPtr make_int(int64_t i) {
    PyPtr v = make(PyVal::Kind::Int);
    v->i = i;
    return v;
  }
  PyPtr make_str(PyVal::Kind k, std::string s) {
    PyPtr v = make(k);
    v->s = std::move(s);
    return v;
  }

  const char* take(size_t n) {
    if (n > size_ - pos_) fail(pos_, fmt::format("needs {} more bytes but the data ends (truncated?)", n));
    const char* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  uint64_t le(size_t n) {
    const auto* b = reinterpret_cast<const uint8_t*>(take(n));
    uint64_t v = 0;
    for (size_t k = n; k-- > 0;) v = (v << 8) | b[k];
    return v;
  }
  uint8_t u8() { return static_cast<uint8_t>(le(1)); }
  std::string line() {
    const void* nl = std::memchr(p_ + pos_, '\n', size_ - pos_);
    if (nl == nullptr) fail(pos_, "unterminated line");
    const size_t n = static_cast<const char*>(nl) - (p_ + pos_);
    std::string s(take(n), n);
    take(1);
    return s;
  }
  PyPtr text(PyVal::Kind k, uint64_t n) {
    if (n > size_ - pos_) fail(pos_, fmt::format("string of {} bytes runs past the end", n));
    return make_str(k, std::string(take(n), n));
  }
  // LONG1/LONG4: little-endian two's complement.
  PyPtr long_int(uint64_t n, size_t at) {
    if (n > 8) {  // does not fit in 64 bits: a placeholder (never a tensor size in a valid file)
      if (n > size_ - pos_) fail(at, fmt::format("integer of {} bytes runs past the end", n));
      take(n);
      return make_str(PyVal::Kind::Opaque, "int");
    }
    if (n == 0) return make_int(0);
    uint64_t v = le(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return make_int(static_cast<int64_t>(v));
  }

  PyPtr pop(size_t at) {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail(at, "stack underflow");
    PyPtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyPtr& top(size_t at) {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail(at, "stack underflow");
    return stack_.back();
  }
  std::vector<PyPtr> pop_mark(size_t at) {
    if (marks_.empty()) fail(at, "no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyPtr> items(std::make_move_iterator(stack_.begin() + m),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t idx, size_t at) { memo_[idx] = top(at); }
  PyPtr memo_get(uint64_t idx, size_t at) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail(at, fmt::format("memo entry {} was never stored", idx));
    return it->second;
  }
  PyPtr tuple(std::vector<PyPtr> items) {
    auto t = make(PyVal::Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  void append(PyPtr& list, std::vector<PyPtr> items, size_t at) {
    if (list->kind == PyVal::Kind::Opaque) return;
    if (list->kind != PyVal::Kind::List) fail(at, fmt::format("APPEND to {}", kind_name(list->kind)));
    for (auto& x : items) list->items.push_back(std::move(x));
  }
  void set_items(PyPtr& dict, std::vector<PyPtr> kv, size_t at) {
    if (kv.size() % 2 != 0) fail(at, "SETITEMS with an odd number of items");
    if (dict->kind == PyVal::Kind::Opaque) return;
    if (dict->kind != PyVal::Kind::Dict) fail(at, fmt::format("SETITEM on {}", kind_name(dict->kind)));
    for (size_t k = 0; k < kv.size(); k += 2) dict->dict.emplace_back(std::move(kv[k]), std::move(kv[k + 1]));
  }

  void step(uint8_t op, size_t at) {
    using K = PyVal::Kind;
    switch (op) {
      case 0x80: u8(); break;   // PROTO
      case 0x95: le(8); break;  // FRAME (length only; we read the whole buffer anyway)
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(at); break;                          // POP
      case '1': pop_mark(at); break;                     // POP_MARK
      case '2': {                                        // DUP
        PyPtr x = top(at);
        stack_.push_back(x);
        break;
      }
      case 'N': stack_.push_back(make(K::None)); break;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        auto b = make(K::Bool);
        b->i = op == 0x88;
        stack_.push_back(b);
        break;
      }
      case 'J': stack_.push_back(make_int(static_cast<int32_t>(le(4)))); break;  // BININT
      case 'K': stack_.push_back(make_int(u8())); break;                         // BININT1
      case 'M': stack_.push_back(make_int(static_cast<int64_t>(le(2)))); break;  // BININT2
      case 0x8a: stack_.push_back(long_int(u8(), at)); break;                    // LONG1
      case 0x8b: stack_.push_back(long_int(le(4), at)); break;                   // LONG4
      case 'G': {                                                                // BINFLOAT (big-endian)
        const auto* b = reinterpret_cast<const uint8_t*>(take(8));
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
        auto v = make(K::Float);
        std::memcpy(&v->f, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X': stack_.push_back(text(K::Str, le(4))); break;    // BINUNICODE
      case 0x8c: stack_.push_back(text(K::Str, u8())); break;    // SHORT_BINUNICODE
      case 0x8d: stack_.push_back(text(K::Str, le(8))); break;   // BINUNICODE8
      case 'T': stack_.push_back(text(K::Str, le(4))); break;    // BINSTRING (Python 2 str)
      case 'U': stack_.push_back(text(K::Str, u8())); break;     // SHORT_BINSTRING
      case 'B': stack_.push_back(text(K::Bytes, le(4))); break;  // BINBYTES
      case 'C': stack_.push_back(text(K::Bytes, u8())); break;   // SHORT_BINBYTES
      case 0x8e:
      case 0x96: stack_.push_back(text(K::Bytes, le(8))); break;  // BINBYTES8, BYTEARRAY8
      case ')': stack_.push_back(tuple({})); break;               // EMPTY_TUPLE
      case 't': stack_.push_back(tuple(pop_mark(at))); break;     // TUPLE
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<PyPtr> items(op - 0x84);
        for (size_t k = items.size(); k-- > 0;) items[k] = pop(at);
        stack_.push_back(tuple(std::move(items)));
        break;
      }
      case ']':
      case 0x8f: stack_.push_back(make(K::List)); break;  // EMPTY_LIST, EMPTY_SET (as a list)
      case 'l': {                                         // LIST
        auto l = make(K::List);
        l->items = pop_mark(at);
        stack_.push_back(l);
        break;
      }
      case 'a': {  // APPEND
        auto x = pop(at);
        append(top(at), {x}, at);
        break;
      }
      case 'e':
      case 0x90: {  // APPENDS, ADDITEMS
        auto items = pop_mark(at);
        append(top(at), std::move(items), at);
        break;
      }
      case 0x91: {  // FROZENSET
        auto l = make(K::List);
        l->items = pop_mark(at);
        stack_.push_back(l);
        break;
      }
      case '}': stack_.push_back(make(K::Dict)); break;  // EMPTY_DICT
      case 'd': {                                        // DICT
        auto d = make(K::Dict);
        set_items(d, pop_mark(at), at);
        stack_.push_back(d);
        break;
      }
      case 's': {  // SETITEM
        auto v = pop(at);
        auto k = pop(at);
        set_items(top(at), {k, v}, at);
        break;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark(at);
        set_items(top(at), std::move(kv), at);
        break;
      }
      case 'q': memo_put(u8(), at); break;                     // BINPUT
      case 'r': memo_put(le(4), at); break;                    // LONG_BINPUT
      case 0x94: memo_put(memo_.size(), at); break;            // MEMOIZE
      case 'h': stack_.push_back(memo_get(u8(), at)); break;   // BINGET
      case 'j': stack_.push_back(memo_get(le(4), at)); break;  // LONG_BINGET
      case 'c': {                                              // GLOBAL "module\nname\n"
        std::string mod = line();
        std::string name = line();
        stack_.push_back(make_str(K::Global, mod + "." + name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(at);
        auto mod = pop(at);
        if (mod->kind != K::Str || name->kind != K::Str) fail(at, "STACK_GLOBAL needs two strings");
        stack_.push_back(make_str(K::Global, mod->s + "." + name->s));
        break;
      }
      case 'R': {  // REDUCE: func(*args)
        auto args = pop(at);
        auto func = pop(at);
        stack_.push_back(call(*func, *args, at, /*depth=*/0));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        pop(at);
        auto cls = pop(at);
        stack_.push_back(make_str(K::Opaque, cls->s));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        pop(at);
        pop(at);
        auto cls = pop(at);
        stack_.push_back(make_str(K::Opaque, cls->s));
        break;
      }
      case 'b':
        pop(at);
        top(at);
        break;     // BUILD: attribute state (OrderedDict._metadata, objects): dropped
      case 'Q': {  // BINPERSID
        auto pid = pop(at);
        PyPtr st = make(K::Storage);
        st->tensor = load_(*pid);
        stack_.push_back(st);
        break;
      }
      default: fail(at, fmt::format("opcode 0x{:02x} is not supported", op));
    }
  }

  // The whitelisted callables; anything else yields an opaque object that is never executed.
  PyPtr call(const PyVal& func, const PyVal& args, size_t at, int depth) {
    using K = PyVal::Kind;
    if (depth > 8) fail(at, "tensor rebuild calls nested too deeply");
    if (func.kind != K::Global) return make_str(K::Opaque, func.s);
    if (args.kind != K::Tuple)
      fail(at, fmt::format("arguments of {} are {}, not a tuple", printable(func.s), kind_name(args.kind)));
    const auto& a = args.items;
    const std::string& f = func.s;
    if (f == "collections.OrderedDict" || f == "builtins.dict") return make(K::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      return rebuild_tensor(a, at);
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state" ||
        f == "torch.jit._pickle.restore_type_tag" || f == "torch.jit._pickle.build_tensorlist" ||
        f == "torch.jit._pickle.build_intlist" || f == "torch.jit._pickle.build_doublelist" ||
        f == "torch.jit._pickle.build_boollist") {
      if (a.empty()) fail(at, f + " without arguments");
      return a[0];
    }
    if (f == "torch._tensor._rebuild_from_type_v2") {  // (func, type, args, state): tensor subclasses
      if (a.size() < 3) fail(at, f + " needs (func, type, args, state)");
      return call(*a[0], *a[2], at, depth + 1);
    }
    return make_str(K::Opaque, f);
  }

  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  PyPtr rebuild_tensor(const std::vector<PyPtr>& a, size_t at) {
    using K = PyVal::Kind;
    if (a.size() < 4 || a[0]->kind != K::Storage || a[1]->kind != K::Int || a[2]->kind != K::Tuple ||
        a[3]->kind != K::Tuple || a[2]->items.size() != a[3]->items.size()) {
      fail(at, "_rebuild_tensor arguments are not (storage, offset, size, stride, ...)");
    }
    std::vector<int64_t> size, stride;
    for (size_t k = 0; k < a[2]->items.size(); ++k) {
      const auto& d = a[2]->items[k];
      const auto& s = a[3]->items[k];
      if (d->kind != K::Int || s->kind != K::Int || d->i < 0 || s->i < 0)
        fail(at, "bad tensor size or stride");
      size.push_back(d->i);
      stride.push_back(s->i);
    }
    // The highest element index the view touches must lie inside the storage.
    const int64_t offset = a[1]->i;
    const int64_t numel = a[0]->tensor.numel();
    bool empty = std::find(size.begin(), size.end(), 0) != size.end();
    int64_t last = offset;
    bool overflow = offset < 0;
    for (size_t k = 0; k < size.size() && !empty && !overflow; ++k) {
      int64_t span = 0;
      overflow =
          __builtin_mul_overflow(size[k] - 1, stride[k], &span) || __builtin_add_overflow(last, span, &last);
    }
    if (overflow || (!empty && last >= numel) || (empty && offset > numel)) {
      fail(at, fmt::format("tensor view {} / stride {} at offset {} lies outside its {}-element storage",
                           shape_str(size), shape_str(stride), offset, numel));
    }
    auto t = make(K::Tensor);
    t->tensor = a[0]->tensor.as_strided(size, stride, offset);
    return t;
  }

  std::string where_;
  const char* p_;
  size_t size_;
  size_t pos_ = 0;
  PersistentLoad load_;
  std::vector<PyPtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyPtr> memo_;
  std::deque<PyVal> arena_;  // owns every value; stable addresses
};

// The tensors of an unpickled torch.save() payload (see load_pth in the header).
std::map<std::string, torch::Tensor> tensors_of(const std::string& path, const PyVal& root) {
  using K = PyVal::Kind;
  if (root.kind != K::Dict) {
    MMREF_FAIL("'{}' holds {}, not a dict of tensors (save model.state_dict())", path,
               root.kind == K::Opaque ? "an object of class " + printable(root.s) : kind_name(root.kind));
  }
  const PyVal* d = &root;
  for (const char* nested : {"state_dict", "model", "module"}) {
    auto it = std::find_if(root.dict.begin(), root.dict.end(), [&](const auto& kv) {
      return kv.first->kind == K::Str && kv.first->s == nested && kv.second->kind == K::Dict;
    });
    if (it != root.dict.end()) {
      d = it->second;
      break;
    }
  }
  std::map<std::string, torch::Tensor> out;
  std::vector<std::string> keys;
  for (const auto& [k, v] : d->dict) {
    if (k->kind != K::Str) continue;
    keys.push_back(printable(k->s));
    if (v->kind == K::Tensor) {
      out[k->s] = v->tensor;
    } else if (v->kind == K::Opaque && v->s.rfind("torch.", 0) == 0 &&
               v->s.find("._rebuild_") != std::string::npos) {
      MMREF_FAIL(
          "'{}': tensor '{}' is stored with {}, which is not supported (quantized, sparse, meta or "
          "uint16/32/64 and float8 tensors; save dense tensors of standard dtypes)",
          path, printable(k->s), printable(v->s));
    }
  }
  if (out.empty()) {
    if (keys.size() > 8) {
      keys.resize(8);
      keys.emplace_back("...");
    }
    MMREF_FAIL(
        "'{}': no tensors in the saved dict (keys: {}); expected a state_dict, or one under a "
        "'state_dict', 'model' or 'module' key",
        path, fmt::join(keys, ", "));
  }
  return out;
}


// The unpickled object as JSON (see PthContents); tensors go to `tensors` under their '/'-joined path.
nlohmann::json to_json(const PyVal& v, const std::string& at, std::map<std::string, torch::Tensor>& tensors,
                       int depth) {
  using K = PyVal::Kind;
  if (depth > 64) return "<nested too deeply>";
  switch (v.kind) {
    case K::None: return nullptr;
    case K::Bool: return v.i != 0;
    case K::Int: return v.i;
    case K::Float: return v.f;
    case K::Str: return v.s;
    case K::Tuple:
    case K::List: {
      nlohmann::json a = nlohmann::json::array();
      for (size_t k = 0; k < v.items.size(); ++k)
        a.push_back(to_json(*v.items[k], at + (at.empty() ? "" : "/") + std::to_string(k), tensors, depth + 1));
      return a;
    }
    case K::Dict: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, x] : v.dict) {
        std::string key;
        if (k->kind == K::Str) key = k->s;
        else if (k->kind == K::Int) key = std::to_string(k->i);
        else continue;
        o[key] = to_json(*x, at + (at.empty() ? "" : "/") + key, tensors, depth + 1);
      }
      return o;
    }
    case K::Tensor:
      tensors[at] = v.tensor;
      return nlohmann::json{{"__tensor__", at}};
    case K::Bytes: return "<bytes>";
    case K::Storage: return "<storage>";
    case K::Global:
    case K::Opaque: return "<" + v.s + ">";
  }
  return nullptr;
}

// Opens a torch.save() zip archive, unpickles data.pkl and hands the root object to `use` while the
// unpickler's arena (which owns every value) is alive.
void with_pth_root(const std::string& path, const std::function<void(const PyVal&)>& use) {
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) MMREF_FAIL("cannot open '{}': {} (check the path)", path, std::strerror(errno));
    in.read(magic, 4);
  }
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0) {
    if (static_cast<uint8_t>(magic[0]) == 0x80) {
      MMREF_FAIL(
          "'{}' is a legacy (pre-1.6, non-zip) torch.save file, which is not supported; re-save it "
          "with a current torch.save or convert it to safetensors",
          path);
    }
    MMREF_FAIL("'{}' is not a torch.save zip archive (no 'PK' magic; corrupt or another format)", path);
  }
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("byteorder")) {
      auto [bo, n] = reader.getRecord("byteorder");
      if (std::string(static_cast<const char*>(bo.get()), n) != "little") {
        MMREF_FAIL("'{}' was saved on a big-endian machine, which is not supported", path);
      }
    }
    if (!reader.hasRecord("data.pkl"))
      MMREF_FAIL("'{}' is a zip archive without data.pkl (not a torch.save file)", path);
    auto [pkl, pkl_size] = reader.getRecord("data.pkl");
    std::map<std::string, torch::Tensor> storages;  // key -> storage: views share memory as in Python
    auto load_storage = [&](const PyVal& pid) -> torch::Tensor {
      using K = PyVal::Kind;
      if (pid.kind != K::Tuple || pid.items.size() < 5 || pid.items[0]->kind != K::Str ||
          pid.items[0]->s != "storage" || pid.items[1]->kind != K::Global || pid.items[2]->kind != K::Str ||
          pid.items[4]->kind != K::Int) {
        MMREF_FAIL("'{}': corrupt pickle: a persistent id is not ('storage', type, key, location, numel)",
                   path);
      }
      const std::string& key = pid.items[2]->s;
      if (auto it = storages.find(key); it != storages.end()) return it->second;
      const auto dtype = storage_dtype(pid.items[1]->s);
      if (!dtype) MMREF_FAIL("'{}': storage type {} is not supported", path, printable(pid.items[1]->s));
      const int64_t numel = pid.items[4]->i;
      const std::string record = "data/" + key;
      if (!reader.hasRecord(record))
        MMREF_FAIL("'{}': storage record '{}' is missing (corrupt archive)", path, printable(record));
      auto [ptr, nbytes] = reader.getRecord(record);
      const int64_t item = static_cast<int64_t>(c10::elementSize(*dtype));
      if (numel < 0 || static_cast<uint64_t>(numel) > nbytes / item) {
        MMREF_FAIL("'{}': storage '{}' claims {} elements but its record holds {} bytes (corrupt archive)",
                   path, printable(key), numel, nbytes);
      }
      // The storage tensor takes over the record's buffer (no second copy: 4x faster on 64 MB).
      auto owner = std::make_shared<at::DataPtr>(std::move(ptr));
      const auto opts = torch::TensorOptions().dtype(*dtype);
      torch::Tensor storage = numel == 0 ? torch::empty({0}, opts)
                                         : torch::from_blob(
                                               owner->get(), {numel}, [owner](void*) {}, opts);
      storages[key] = storage;
      return storage;
    };
    Unpickler u(fmt::format("'{}' data.pkl", path), static_cast<const char*>(pkl.get()), pkl_size,
                load_storage);
    use(*u.run());
  } catch (const c10::Error& e) {
    MMREF_FAIL("'{}': cannot read the torch.save archive: {} (corrupt or truncated file)", path,
               first_line(e.what_without_backtrace()));
  }
}

}  // namespace

std::map<std::string, torch::Tensor> load_pth(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  with_pth_root(path, [&](const PyVal& root) { out = tensors_of(path, root); });
  return out;
}

PthContents load_pth_contents(const std::string& path) {
  PthContents out;
  with_pth_root(path, [&](const PyVal& root) { out.tree = to_json(root, "", out.tensors, 0); });
  return out;
}

}  // namespace mmref
