// NISQA checkpoint reading and writing; see nisqa_checkpoint.h.
#include "models/mos/nisqa_checkpoint.h"

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <torch/types.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"

namespace mmref::models {
namespace {

using nlohmann::json;

// ---- a restricted unpickler -------------------------------------------------------------------------

// Values live in an arena (a deque: stable addresses) and refer to each other by pointer, so reference
// cycles and deep nesting cost nothing to free.
struct Py {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Opaque, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str, Bytes, Global "module.name", Opaque: the class it came from
  std::vector<Py*> items;
  std::vector<std::pair<Py*, Py*>> dict;
  at::Tensor tensor;
};
using K = Py::Kind;

class Unpickler {
 public:
  using LoadStorage = std::function<at::Tensor(const Py& pid)>;
  Unpickler(std::string where, const char* data, size_t size, LoadStorage load)
      : where_(std::move(where)), p_(data), n_(size), load_(std::move(load)) {}

  Py* run() {
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
        "{}: corrupt or unsupported pickle at byte {}: {} (re-save it with torch.save, or convert it "
        "to safetensors with the args as JSON)",
        where_, at, what);
  }
  Py* make(K k) {
    arena_.emplace_back();
    arena_.back().kind = k;
    return &arena_.back();
  }
  Py* make_int(int64_t v) {
    Py* p = make(K::Int);
    p->i = v;
    return p;
  }
  Py* make_str(K k, std::string s) {
    Py* p = make(k);
    p->s = std::move(s);
    return p;
  }
  const char* take(size_t k) {
    if (k > n_ - pos_) fail(pos_, fmt::format("needs {} more bytes but the data ends (truncated file?)", k));
    const char* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  uint64_t le(size_t k) {  // little-endian unsigned
    const auto* b = reinterpret_cast<const uint8_t*>(take(k));
    uint64_t v = 0;
    for (size_t j = k; j-- > 0;) v = (v << 8) | b[j];
    return v;
  }
  uint8_t u8() { return static_cast<uint8_t>(le(1)); }
  std::string line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (nl == nullptr) fail(pos_, "unterminated text line");
    const size_t len = static_cast<size_t>(static_cast<const char*>(nl) - (p_ + pos_));
    std::string s(take(len), len);
    take(1);
    return s;
  }
  Py* text(K k, uint64_t len) {
    if (len > n_ - pos_) fail(pos_, fmt::format("a string of {} bytes runs past the end", len));
    return make_str(k, std::string(take(len), len));
  }
  Py* long_int(uint64_t len, size_t at) {  // LONG1/LONG4: little-endian two's complement
    if (len > 8) {
      if (len > n_ - pos_) fail(at, "an integer runs past the end");
      take(len);
      return make_str(K::Opaque, "int");  // beyond 64 bits: never a size in a valid checkpoint
    }
    if (len == 0) return make_int(0);
    uint64_t v = le(len);
    if (len < 8 && ((v >> (8 * len - 1)) & 1)) v |= ~uint64_t{0} << (8 * len);
    return make_int(static_cast<int64_t>(v));
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Py* pop(size_t at) {
    if (stack_.size() <= floor()) fail(at, "stack underflow");
    Py* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Py* top(size_t at) {
    if (stack_.size() <= floor()) fail(at, "stack underflow");
    return stack_.back();
  }
  std::vector<Py*> pop_mark(size_t at) {
    if (marks_.empty()) fail(at, "no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Py*> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Py* tuple(std::vector<Py*> items) {
    Py* t = make(K::Tuple);
    t->items = std::move(items);
    return t;
  }
  Py* list(std::vector<Py*> items) {
    Py* l = make(K::List);
    l->items = std::move(items);
    return l;
  }
  void append(Py* to, const std::vector<Py*>& items, size_t at) {
    if (to->kind == K::Opaque) return;  // an object's own list state: dropped
    if (to->kind != K::List) fail(at, "APPEND to something that is not a list");
    to->items.insert(to->items.end(), items.begin(), items.end());
  }
  void set_items(Py* to, const std::vector<Py*>& kv, size_t at) {
    if (kv.size() % 2 != 0) fail(at, "SETITEMS with an odd number of items");
    if (to->kind == K::Opaque) return;
    if (to->kind != K::Dict) fail(at, "SETITEM on something that is not a dict");
    for (size_t j = 0; j < kv.size(); j += 2) to->dict.emplace_back(kv[j], kv[j + 1]);
  }
  void memo_put(uint64_t idx, size_t at) { memo_[idx] = top(at); }
  Py* memo_get(uint64_t idx, size_t at) {
    const auto it = memo_.find(idx);
    if (it == memo_.end()) fail(at, fmt::format("memo entry {} was never stored", idx));
    return it->second;
  }

  void step(uint8_t op, size_t at) {
    switch (op) {
      case 0x80:
        u8();
        break;  // PROTO
      case 0x95:
        le(8);
        break;  // FRAME
      case '(':
        marks_.push_back(stack_.size());
        break;  // MARK
      case '0':
        pop(at);
        break;  // POP
      case '1':
        pop_mark(at);
        break;  // POP_MARK
      case '2':
        stack_.push_back(top(at));
        break;  // DUP
      case 'N':
        stack_.push_back(make(K::None));
        break;      // NONE
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        Py* b = make(K::Bool);
        b->i = op == 0x88;
        stack_.push_back(b);
        break;
      }
      case 'J':
        stack_.push_back(make_int(static_cast<int32_t>(le(4))));
        break;  // BININT
      case 'K':
        stack_.push_back(make_int(u8()));
        break;  // BININT1
      case 'M':
        stack_.push_back(make_int(static_cast<int64_t>(le(2))));
        break;  // BININT2
      case 0x8a:
        stack_.push_back(long_int(u8(), at));
        break;  // LONG1
      case 0x8b:
        stack_.push_back(long_int(le(4), at));
        break;     // LONG4
      case 'G': {  // BINFLOAT, big-endian
        const auto* b = reinterpret_cast<const uint8_t*>(take(8));
        uint64_t bits = 0;
        for (int j = 0; j < 8; ++j) bits = (bits << 8) | b[j];
        Py* v = make(K::Float);
        std::memcpy(&v->f, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X':
        stack_.push_back(text(K::Str, le(4)));
        break;  // BINUNICODE
      case 0x8c:
        stack_.push_back(text(K::Str, u8()));
        break;  // SHORT_BINUNICODE
      case 0x8d:
        stack_.push_back(text(K::Str, le(8)));
        break;  // BINUNICODE8
      case 'T':
        stack_.push_back(text(K::Str, le(4)));
        break;  // BINSTRING
      case 'U':
        stack_.push_back(text(K::Str, u8()));
        break;  // SHORT_BINSTRING
      case 'B':
        stack_.push_back(text(K::Bytes, le(4)));
        break;  // BINBYTES
      case 'C':
        stack_.push_back(text(K::Bytes, u8()));
        break;    // SHORT_BINBYTES
      case 0x8e:  // BINBYTES8
      case 0x96:
        stack_.push_back(text(K::Bytes, le(8)));
        break;  // BYTEARRAY8
      case ')':
        stack_.push_back(tuple({}));
        break;  // EMPTY_TUPLE
      case 't':
        stack_.push_back(tuple(pop_mark(at)));
        break;      // TUPLE
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        std::vector<Py*> items(static_cast<size_t>(op - 0x84));
        for (size_t j = items.size(); j-- > 0;) items[j] = pop(at);
        stack_.push_back(tuple(std::move(items)));
        break;
      }
      case ']':  // EMPTY_LIST
      case 0x8f:
        stack_.push_back(list({}));
        break;   // EMPTY_SET (kept as a list)
      case 'l':  // LIST
      case 0x91:
        stack_.push_back(list(pop_mark(at)));
        break;     // FROZENSET
      case 'a': {  // APPEND
        Py* x = pop(at);
        append(top(at), {x}, at);
        break;
      }
      case 'e':     // APPENDS
      case 0x90: {  // ADDITEMS
        auto items = pop_mark(at);
        append(top(at), items, at);
        break;
      }
      case '}':
        stack_.push_back(make(K::Dict));
        break;     // EMPTY_DICT
      case 'd': {  // DICT
        Py* d = make(K::Dict);
        set_items(d, pop_mark(at), at);
        stack_.push_back(d);
        break;
      }
      case 's': {  // SETITEM
        Py* v = pop(at);
        Py* k = pop(at);
        set_items(top(at), {k, v}, at);
        break;
      }
      case 'u': {  // SETITEMS
        auto kv = pop_mark(at);
        set_items(top(at), kv, at);
        break;
      }
      case 'q':
        memo_put(u8(), at);
        break;  // BINPUT
      case 'r':
        memo_put(le(4), at);
        break;  // LONG_BINPUT
      case 0x94:
        memo_put(memo_.size(), at);
        break;  // MEMOIZE
      case 'h':
        stack_.push_back(memo_get(u8(), at));
        break;  // BINGET
      case 'j':
        stack_.push_back(memo_get(le(4), at));
        break;     // LONG_BINGET
      case 'c': {  // GLOBAL "module\nname\n"
        std::string mod = line();
        std::string name = line();
        stack_.push_back(make_str(K::Global, mod + "." + name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Py* name = pop(at);
        Py* mod = pop(at);
        if (mod->kind != K::Str || name->kind != K::Str) fail(at, "STACK_GLOBAL needs two strings");
        stack_.push_back(make_str(K::Global, mod->s + "." + name->s));
        break;
      }
      case 'R': {  // REDUCE: callable(*args)
        Py* args = pop(at);
        Py* fn = pop(at);
        stack_.push_back(call(*fn, *args, at, /*depth=*/0));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        pop(at);
        stack_.push_back(make_str(K::Opaque, pop(at)->s));
        break;
      }
      case 0x92: {  // NEWOBJ_EX
        pop(at);
        pop(at);
        stack_.push_back(make_str(K::Opaque, pop(at)->s));
        break;
      }
      case 'b':  // BUILD: an object's state (OrderedDict._metadata, pandas internals) is dropped
        pop(at);
        top(at);
        break;
      case 'Q': {  // BINPERSID: a tensor storage
        Py* pid = pop(at);
        Py* st = make(K::Storage);
        st->tensor = load_(*pid);
        stack_.push_back(st);
        break;
      }
      default:
        fail(at, fmt::format("opcode 0x{:02x} is not supported", op));
    }
  }

  // Whitelisted callables; anything else yields an opaque value and is never executed.
  Py* call(const Py& fn, const Py& args, size_t at, int depth) {
    if (depth > 8) fail(at, "tensor rebuild calls nested too deeply");
    if (fn.kind != K::Global) return make_str(K::Opaque, "object");
    if (args.kind != K::Tuple) return make_str(K::Opaque, fn.s);
    const auto& a = args.items;
    const std::string& f = fn.s;
    if (f == "collections.OrderedDict" || f == "builtins.dict" || f == "__builtin__.dict")
      return make(K::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor")
      return rebuild_tensor(a, at);
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
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
  Py* rebuild_tensor(const std::vector<Py*>& a, size_t at) {
    if (a.size() < 4 || a[0]->kind != K::Storage || a[1]->kind != K::Int || a[2]->kind != K::Tuple ||
        a[3]->kind != K::Tuple || a[2]->items.size() != a[3]->items.size()) {
      fail(at, "tensor rebuild arguments are not (storage, offset, size, stride, ...)");
    }
    std::vector<int64_t> size, stride;
    int64_t last = a[1]->i;  // highest element index the view touches
    bool empty = false;
    for (size_t j = 0; j < a[2]->items.size(); ++j) {
      const Py* d = a[2]->items[j];
      const Py* s = a[3]->items[j];
      if (d->kind != K::Int || s->kind != K::Int || d->i < 0 || s->i < 0)
        fail(at, "bad tensor size or stride");
      size.push_back(d->i);
      stride.push_back(s->i);
      empty = empty || d->i == 0;
    }
    for (size_t j = 0; j < size.size() && !empty; ++j) {
      int64_t span = 0;
      if (__builtin_mul_overflow(size[j] - 1, stride[j], &span) || __builtin_add_overflow(last, span, &last))
        fail(at, "tensor view overflows");
    }
    const int64_t numel = a[0]->tensor.numel();
    if (a[1]->i < 0 || (!empty && last >= numel) || (empty && a[1]->i > numel))
      fail(at, fmt::format("a tensor view lies outside its {}-element storage", numel));
    Py* t = make(K::Tensor);
    t->tensor = a[0]->tensor.as_strided(size, stride, a[1]->i);
    return t;
  }

  std::string where_;
  const char* p_;
  size_t n_;
  size_t pos_ = 0;
  LoadStorage load_;
  std::vector<Py*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Py*> memo_;
  std::deque<Py> arena_;
};

std::optional<at::ScalarType> storage_dtype(const std::string& global) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},   {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},   {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},   {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte}};
  std::string g = global;
  if (g.rfind("torch.cuda.", 0) == 0) g = "torch." + g.substr(11);
  const auto it = kTypes.find(g);
  if (it == kTypes.end()) return std::nullopt;
  return it->second;
}

// The args dict as JSON; other Python objects become "<class>" strings.
json to_json(const Py& v, int depth) {
  if (depth > 64) return "<nested too deeply>";
  switch (v.kind) {
    case K::None:
      return nullptr;
    case K::Bool:
      return v.i != 0;
    case K::Int:
      return v.i;
    case K::Float:
      return v.f;
    case K::Str:
      return v.s;
    case K::Tuple:
    case K::List: {
      json a = json::array();
      for (const Py* x : v.items) a.push_back(to_json(*x, depth + 1));
      return a;
    }
    case K::Dict: {
      json o = json::object();
      for (const auto& [k, x] : v.dict) {
        if (k->kind == K::Str) o[k->s] = to_json(*x, depth + 1);
      }
      return o;
    }
    case K::Bytes:
      return "<bytes>";
    case K::Tensor:
      return "<tensor>";
    case K::Storage:
      return "<storage>";
    case K::Global:
    case K::Opaque:
      return "<" + v.s + ">";
  }
  return nullptr;
}

const Py* dict_get(const Py& d, const std::string& key) {
  for (const auto& [k, v] : d.dict) {
    if (k->kind == K::Str && k->s == key) return v;
  }
  return nullptr;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

NisqaCheckpoint read_nisqa_pth(const std::string& path) {
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in)
      MMREF_FAIL("NISQA checkpoint '{}': cannot open it: {} (check the path)", path, std::strerror(errno));
    in.read(magic, 4);
  }
  if (std::memcmp(magic, "PK\x03\x04", 4) != 0) {
    if (static_cast<uint8_t>(magic[0]) == 0x80) {
      MMREF_FAIL(
          "NISQA checkpoint '{}' is a legacy (pre-1.6) torch.save file; re-save it with "
          "torch.save(torch.load(p), p2) under torch >= 1.6, or convert it to safetensors + args JSON",
          path);
    }
    MMREF_FAIL("NISQA checkpoint '{}' is not a torch.save zip archive (no 'PK' magic)", path);
  }
  NisqaCheckpoint out;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    if (reader.hasRecord("byteorder")) {
      auto [bo, n] = reader.getRecord("byteorder");
      if (std::string(static_cast<const char*>(bo.get()), n) != "little")
        MMREF_FAIL("NISQA checkpoint '{}' was saved on a big-endian machine, which is not supported", path);
    }
    if (!reader.hasRecord("data.pkl"))
      MMREF_FAIL("NISQA checkpoint '{}': a zip archive without data.pkl (not a torch.save file)", path);
    auto [pkl, pkl_size] = reader.getRecord("data.pkl");
    std::map<std::string, at::Tensor> storages;
    auto load_storage = [&](const Py& pid) -> at::Tensor {
      if (pid.kind != K::Tuple || pid.items.size() < 5 || pid.items[0]->kind != K::Str ||
          pid.items[0]->s != "storage" || pid.items[1]->kind != K::Global || pid.items[2]->kind != K::Str ||
          pid.items[4]->kind != K::Int) {
        MMREF_FAIL(
            "NISQA checkpoint '{}': corrupt pickle: a persistent id is not ('storage', type, key, "
            "location, numel)",
            path);
      }
      const std::string& key = pid.items[2]->s;
      if (const auto it = storages.find(key); it != storages.end()) return it->second;
      const auto dtype = storage_dtype(pid.items[1]->s);
      if (!dtype)
        MMREF_FAIL("NISQA checkpoint '{}': storage type {} is not supported", path, pid.items[1]->s);
      const std::string record = "data/" + key;
      if (!reader.hasRecord(record))
        MMREF_FAIL("NISQA checkpoint '{}': storage record '{}' is missing (corrupt archive)", path, record);
      auto [ptr, nbytes] = reader.getRecord(record);
      const int64_t numel = pid.items[4]->i;
      const auto item = static_cast<int64_t>(c10::elementSize(*dtype));
      if (numel < 0 || static_cast<uint64_t>(numel) > nbytes / static_cast<uint64_t>(item))
        MMREF_FAIL("NISQA checkpoint '{}': storage '{}' claims {} elements but holds {} bytes", path, key,
                   numel, nbytes);
      at::Tensor st = at::empty({numel}, at::TensorOptions().dtype(*dtype));
      if (numel > 0) std::memcpy(st.data_ptr(), ptr.get(), static_cast<size_t>(numel * item));
      storages[key] = st;
      return st;
    };
    Unpickler u(fmt::format("NISQA checkpoint '{}' data.pkl", path), static_cast<const char*>(pkl.get()),
                pkl_size, load_storage);
    const Py* root = u.run();
    if (root->kind != K::Dict)
      MMREF_FAIL(
          "NISQA checkpoint '{}' does not hold a dict (expected {{'args': ..., 'model_state_dict': ...}})",
          path);
    const Py* args = dict_get(*root, "args");
    const Py* sd = dict_get(*root, "model_state_dict");
    if (sd == nullptr || sd->kind != K::Dict) {
      MMREF_FAIL(
          "NISQA checkpoint '{}' has no 'model_state_dict' dict (expected NISQA's layout {{'args': ..., "
          "'model_state_dict': ...}}; for a bare state dict use safetensors plus an args JSON)",
          path);
    }
    if (args == nullptr || args->kind != K::Dict)
      MMREF_FAIL("NISQA checkpoint '{}' has no 'args' dict: the model options cannot be known", path);
    out.args = to_json(*args, 0);
    for (const auto& [k, v] : sd->dict) {
      if (k->kind != K::Str) continue;
      if (v->kind != K::Tensor)
        MMREF_FAIL("NISQA checkpoint '{}': model_state_dict['{}'] is not a dense tensor", path, k->s);
      out.state_dict[k->s] = v->tensor;
    }
  } catch (const c10::Error& e) {
    MMREF_FAIL("NISQA checkpoint '{}': cannot read the torch.save archive: {} (corrupt or truncated file)",
               path, first_line(e.what_without_backtrace()));
  }
  return out;
}

NisqaCheckpoint read_nisqa_safetensors(const std::string& path, const std::string& args_json_path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  NisqaCheckpoint out;
  std::string text;
  std::string where;
  if (!args_json_path.empty()) {
    text = fs::read_file(args_json_path);
    where = "'" + args_json_path + "'";
  } else {
    const auto it = f.metadata().find("args");
    if (it == f.metadata().end()) {
      MMREF_FAIL(
          "NISQA weights '{}': no args JSON given and no __metadata__[\"args\"] in the file (pass the "
          "args JSON path, or write the file with write_nisqa_safetensors)",
          path);
    }
    text = it->second;
    where = "'" + path + "' __metadata__[\"args\"]";
  }
  try {
    out.args = json::parse(text);
  } catch (const json::exception& e) {
    MMREF_FAIL("NISQA args {}: not valid JSON: {}", where, first_line(e.what()));
  }
  if (!out.args.is_object()) MMREF_FAIL("NISQA args {}: expected a JSON object of NISQA options", where);
  for (const auto& info : f.tensors()) out.state_dict[info.name] = f.get(info.name);
  return out;
}

void write_nisqa_safetensors(const std::string& path, const NisqaCheckpoint& ckpt) {
  save_safetensors(path, ckpt.state_dict, {{"args", ckpt.args.dump()}});
}

}  // namespace mmref::models
