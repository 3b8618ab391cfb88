// safetensors reader (mmap + full header validation) and streaming writer; see safetensors.h.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ostream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace mmref {
namespace {

using nlohmann::json;

// A header larger than this is garbage, not a real file (the reference reader uses the same limit).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr const char* kMetadataKey = "__metadata__";

struct DTypeRow {
  StDType st;
  const char* name;
  int64_t size;
  torch::Dtype torch;
};
constexpr DTypeRow kDTypes[] = {
    {StDType::F16, "F16", 2, torch::kHalf},  {StDType::BF16, "BF16", 2, torch::kBFloat16},
    {StDType::F32, "F32", 4, torch::kFloat}, {StDType::F64, "F64", 8, torch::kDouble},
    {StDType::I64, "I64", 8, torch::kLong},  {StDType::I32, "I32", 4, torch::kInt},
    {StDType::I16, "I16", 2, torch::kShort}, {StDType::I8, "I8", 1, torch::kChar},
    {StDType::U8, "U8", 1, torch::kByte},    {StDType::BOOL, "BOOL", 1, torch::kBool},
};

const DTypeRow& row(StDType d) {
  for (const auto& r : kDTypes) {
    if (r.st == d) return r;
  }
  throw Error(fmt::format("internal error: unknown StDType {}", static_cast<int>(d)));
}

bool host_is_little_endian() {
  const uint16_t one = 1;
  uint8_t first = 0;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
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

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Parses one header entry; every failure names the file and the tensor.
StTensorInfo parse_entry(const std::string& path, const std::string& name, const json& e,
                         uint64_t data_size) {
  auto fail = [&](const std::string& what) {
    MMREF_FAIL("'{}': tensor '{}' in the header {} (corrupt or not a safetensors file)", path,
               printable(name), what);
  };
  if (!e.is_object()) fail(fmt::format("is a JSON {}, not an object", e.type_name()));
  const auto dt = e.find("dtype");
  const auto sh = e.find("shape");
  const auto off = e.find("data_offsets");
  if (dt == e.end()) fail("has no \"dtype\"");
  if (sh == e.end()) fail("has no \"shape\"");
  if (off == e.end()) fail("has no \"data_offsets\"");
  if (!dt->is_string()) fail(fmt::format("has a \"dtype\" that is a JSON {}, not a string", dt->type_name()));
  if (!sh->is_array()) fail(fmt::format("has a \"shape\" that is a JSON {}, not an array", sh->type_name()));
  if (!off->is_array() || off->size() != 2) fail("has \"data_offsets\" that are not an array [begin, end]");

  StTensorInfo info;
  info.name = name;
  const std::string& dname = dt->get_ref<const std::string&>();
  const DTypeRow* r = nullptr;
  for (const auto& c : kDTypes) {
    if (dname == c.name) r = &c;
  }
  if (r == nullptr) {
    MMREF_FAIL(
        "'{}': bad dtype '{}' for tensor '{}' (supported: F16, BF16, F32, F64, I64, I32, I16, I8, "
        "U8, BOOL)",
        path, printable(dname), printable(name));
  }
  info.dtype = r->st;

  for (const auto& d : *sh) {
    if (d.is_number_unsigned()) {
      info.shape.push_back(static_cast<int64_t>(std::min<uint64_t>(d.get<uint64_t>(), INT64_MAX)));
    } else if (d.is_number_integer()) {
      fail(fmt::format("has a negative dimension {} in its shape", d.get<int64_t>()));
    } else {  // (never dump() untrusted JSON into a message: it recurses on deep nesting)
      fail(
          fmt::format("has a shape that is not a list of integers (an element is a JSON {})", d.type_name()));
    }
  }
  for (const auto& o : *off) {
    if (!o.is_number_unsigned())
      fail(fmt::format("has data_offsets that are not two non-negative integers (one is a JSON {}{})",
                       o.type_name(), o.is_number_integer() ? " " + std::to_string(o.get<int64_t>()) : ""));
  }
  info.begin = (*off)[0].get<uint64_t>();
  info.end = (*off)[1].get<uint64_t>();
  if (info.begin > info.end) {
    fail(fmt::format("has data_offsets [{}, {}] with begin after end", info.begin, info.end));
  }
  if (info.end > data_size) {
    fail(
        fmt::format("has data_offsets [{}, {}] that run past the end of the {}-byte data block (truncated "
                    "file?)",
                    info.begin, info.end, data_size));
  }
  // numel * itemsize without overflow (any zero dimension makes it 0); beyond 64 bits it can never
  // match the offsets.
  uint64_t bytes = static_cast<uint64_t>(r->size);
  bool too_big = false;
  if (std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end()) {
    bytes = 0;
  } else {
    for (int64_t d : info.shape) {
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes)) {
        too_big = true;
        break;
      }
    }
  }
  if (too_big || bytes != info.end - info.begin) {
    fail(fmt::format("is {} {} = {} bytes but its data_offsets [{}, {}] span {} bytes", r->name,
                     shape_str(info.shape), too_big ? std::string("too many") : std::to_string(bytes),
                     info.begin, info.end, info.end - info.begin));
  }
  return info;
}

// The header JSON (without the length prefix and padding) and the contiguous CPU tensors to write.
struct WritePlan {
  std::string header;  // padded
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
};

WritePlan plan_write(const std::map<std::string, torch::Tensor>& tensors,
                     const std::map<std::string, std::string>& metadata) {
  WritePlan plan;
  std::string h = "{";
  // dump() throws on invalid UTF-8; report it as our error.
  auto quoted = [](const auto& v, const std::string& what) {
    try {
      return json(v).dump();
    } catch (const json::exception&) {
      MMREF_FAIL("cannot save {} to safetensors: not valid UTF-8", what);
    }
  };
  if (!metadata.empty()) h += fmt::format("\"{}\":{}", kMetadataKey, quoted(metadata, "the metadata"));
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {  // std::map: sorted keys
    if (name == kMetadataKey)
      MMREF_FAIL("cannot save a tensor named '{}' to safetensors (reserved key)", name);
    if (!t0.defined()) MMREF_FAIL("cannot save tensor '{}' to safetensors: it is undefined", name);
    if (t0.is_sparse())
      MMREF_FAIL("cannot save tensor '{}' to safetensors: it is sparse (call to_dense)", name);
    StDType st{};
    try {
      st = st_from_torch(t0.scalar_type());
    } catch (const Error& e) {
      MMREF_FAIL("cannot save tensor '{}': {}", name, e.what());
    }
    torch::Tensor t = t0.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * st_dtype_size(st);
    nlohmann::ordered_json e;
    e["dtype"] = st_dtype_name(st);
    e["shape"] = t.sizes().vec();
    e["data_offsets"] = {offset, offset + nbytes};
    if (h.size() > 1) h += ',';
    h += quoted(name, fmt::format("tensor name '{}'", printable(name)));
    h += ':';
    h += e.dump();
    offset += nbytes;
    plan.tensors.emplace_back(name, std::move(t));
  }
  h += '}';
  h.append((8 - h.size() % 8) % 8, ' ');
  plan.header = std::move(h);
  return plan;
}

template <typename Sink>
void emit(const WritePlan& plan, Sink&& sink) {
  uint8_t len[8];
  uint64_t n = plan.header.size();
  for (int i = 0; i < 8; ++i, n >>= 8) len[i] = static_cast<uint8_t>(n & 0xff);
  sink(reinterpret_cast<const char*>(len), 8);
  sink(plan.header.data(), plan.header.size());
  for (const auto& [name, t] : plan.tensors) {
    const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (nbytes > 0) sink(static_cast<const char*>(t.data_ptr()), nbytes);
  }
}

}  // namespace

const char* st_dtype_name(StDType d) { return row(d).name; }
int64_t st_dtype_size(StDType d) { return row(d).size; }
torch::Dtype st_to_torch(StDType d) { return row(d).torch; }

StDType st_from_torch(torch::Dtype d) {
  for (const auto& r : kDTypes) {
    if (r.torch == d) return r.st;
  }
  MMREF_FAIL(
      "dtype {} cannot be stored in safetensors here (supported: float16, bfloat16, float32, float64, "
      "int64, int32, int16, int8, uint8, bool)",
      c10::toString(d));
}

// ---- reader ----------------------------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  if (!host_is_little_endian()) MMREF_FAIL("'{}': safetensors needs a little-endian host", path);
  SafetensorsFile f;
  f.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) MMREF_FAIL("cannot open '{}': {} (check the path)", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    MMREF_FAIL("cannot open '{}': {}", path, S_ISDIR(st.st_mode) ? "it is a folder" : std::strerror(err));
  }
  f.size_ = static_cast<uint64_t>(st.st_size);
  if (f.size_ < 8) {
    ::close(fd);
    MMREF_FAIL(
        "'{}': file is {} bytes, shorter than the 8-byte header length of a safetensors file "
        "(truncated or not a safetensors file)",
        path, f.size_);
  }
  void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) MMREF_FAIL("cannot map '{}' ({} bytes): {}", path, f.size_, std::strerror(err));
  f.base_ = static_cast<const uint8_t*>(p);
  // From here on `f`'s destructor unmaps when a check throws.

  const uint64_t n = read_le_u64(f.base_);
  if (n > kMaxHeaderBytes) {
    MMREF_FAIL("'{}': header length {} is absurd (limit {} bytes; corrupt or not a safetensors file)", path,
               n, kMaxHeaderBytes);
  }
  if (n > f.size_ - 8) {
    MMREF_FAIL(
        "'{}': header length {} runs past the end of the {}-byte file (truncated or not a safetensors "
        "file)",
        path, n, f.size_);
  }
  f.data_start_ = 8 + n;
  const uint64_t data_size = f.size_ - f.data_start_;
  const char* hb = reinterpret_cast<const char*>(f.base_ + 8);

  json header;
  try {
    header = json::parse(hb, hb + n);
  } catch (const json::exception& e) {
    MMREF_FAIL("'{}': header is not valid JSON ({}; corrupt or not a safetensors file)", path, e.what());
  }
  if (!header.is_object()) {
    MMREF_FAIL("'{}': header is a JSON {}, not an object (corrupt or not a safetensors file)", path,
               header.type_name());
  }
  for (const auto& [key, e] : header.items()) {
    if (key == kMetadataKey) {
      if (!e.is_object())
        MMREF_FAIL("'{}': \"__metadata__\" is a JSON {}, not an object of strings", path, e.type_name());
      for (const auto& [mk, mv] : e.items()) {
        if (!mv.is_string()) {
          MMREF_FAIL("'{}': \"__metadata__\" value for '{}' is a JSON {}, not a string", path, printable(mk),
                     mv.type_name());
        }
        f.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    f.tensors_.push_back(parse_entry(path, key, e, data_size));
  }
  std::sort(f.tensors_.begin(), f.tensors_.end(),
            [](const StTensorInfo& a, const StTensorInfo& b) { return a.name < b.name; });

  // Overlapping byte ranges (empty tensors occupy nothing). Gaps are tolerated.
  std::vector<const StTensorInfo*> by_offset;
  for (const auto& t : f.tensors_) {
    if (t.end > t.begin) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const StTensorInfo* a, const StTensorInfo* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      MMREF_FAIL("'{}': tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data block (corrupt file)",
                 path, printable(by_offset[i - 1]->name), by_offset[i - 1]->begin, by_offset[i - 1]->end,
                 printable(by_offset[i]->name), by_offset[i]->begin, by_offset[i]->end);
    }
  }
  return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      data_start_(std::exchange(o.data_start_, 0)),
      tensors_(std::move(o.tensors_)),
      metadata_(std::move(o.metadata_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    unmap();
    path_ = std::move(o.path_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    data_start_ = std::exchange(o.data_start_, 0);
    tensors_ = std::move(o.tensors_);
    metadata_ = std::move(o.metadata_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() noexcept {
  if (base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
  base_ = nullptr;
}

bool SafetensorsFile::contains(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const StTensorInfo& t, const std::string& n) { return t.name < n; });
  return it != tensors_.end() && it->name == name;
}

const StTensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const StTensorInfo& t, const std::string& n) { return t.name < n; });
  if (it == tensors_.end() || it->name != name) {
    std::vector<std::string> some;
    for (size_t i = 0; i < tensors_.size() && i < 5; ++i) some.push_back(printable(tensors_[i].name));
    MMREF_FAIL("'{}': no tensor '{}' (the file has {} tensors: {}{})", path_, name, tensors_.size(),
               fmt::join(some, ", "), tensors_.size() > some.size() ? ", ..." : "");
  }
  return *it;
}

torch::Tensor SafetensorsFile::get(const std::string& name, std::optional<torch::Dtype> as) const {
  MMREF_CHECK(base_ != nullptr, "get('{}') on a moved-from SafetensorsFile", name);
  const StTensorInfo& ti = info(name);
  torch::Tensor t = torch::empty(ti.shape, torch::TensorOptions().dtype(st_to_torch(ti.dtype)));
  const uint64_t nbytes = ti.end - ti.begin;  // == numel * itemsize, checked on open
  if (nbytes > 0) std::memcpy(t.data_ptr(), base_ + data_start_ + ti.begin, nbytes);
  if (as && *as != t.scalar_type()) t = t.to(*as);
  return t;
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path,
                                                      std::optional<torch::Dtype> as) {
  auto f = SafetensorsFile::open(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& t : f.tensors()) out.emplace(t.name, f.get(t.name, as));
  return out;
}

// ---- writer ----------------------------------------------------------------------------------------

std::string safetensors_bytes(const std::map<std::string, torch::Tensor>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  const WritePlan plan = plan_write(tensors, metadata);
  size_t total = 8 + plan.header.size();
  for (const auto& [name, t] : plan.tensors) total += static_cast<size_t>(t.numel()) * t.element_size();
  std::string out;
  out.reserve(total);
  emit(plan, [&](const char* p, size_t n) { out.append(p, n); });
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Made contiguous up front (one tensor at a time would save memory for strided inputs, but the
  // header needs every tensor's validated dtype before the first byte is written).
  const WritePlan plan = plan_write(tensors, metadata);
  fs::atomic_write(path, [&](std::ostream& out) {
    emit(plan, [&](const char* p, size_t n) { out.write(p, static_cast<std::streamsize>(n)); });
  });
}

}  // namespace mmref
