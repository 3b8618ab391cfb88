// .npy / .npz reading and writing; see npy.h for the formats and what is supported.
#include "eval/npy.h"

#include <ATen/Functions.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "core/fs.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.cpp assumes a little-endian host");

namespace mmref::eval {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kArrayAlign = 64;    // numpy/lib/format.py ARRAY_ALIGN
constexpr size_t kGrowthDigits = 21;  // numpy/lib/format.py GROWTH_AXIS_MAX_DIGITS

// ---------------------------------------------------------------------------------------------------
// Header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      const std::string key = parse_string();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() != '\'' && peek() != '"')
          fail("'descr' is not a simple dtype string (structured dtypes are not supported)");
        h.descr = parse_string();
        have_descr = true;
      } else if (key == "fortran_order") {
        h.fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        h.shape = parse_tuple();
        have_shape = true;
      } else {
        fail(fmt::format("unexpected key '{}'", key));
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    skip_ws();
    if (pos_ != s_.size()) fail("trailing characters after the dict");
    if (!have_descr || !have_order || !have_shape)
      fail("missing one of the keys 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    MMREF_FAIL("{}: bad .npy header ({} at character {}): {}", what_, why, pos_, s_);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void expect(char c) {
    skip_ws();
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  std::string parse_string() {
    skip_ws();
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    const size_t end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<int64_t> parse_tuple() {
    std::vector<int64_t> out;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++pos_;
        return out;
      }
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a non-negative integer");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) fail("dimension too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      if (peek() == 'L') ++pos_;  // Python 2 long literal
      out.push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != ')') {
        fail("expected ',' or ')'");
      }
    }
  }

  const std::string& s_;
  const std::string& what_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------------
// dtypes

struct DtypeInfo {
  at::ScalarType stored;  // how the file's bytes are read (unsigned wider than 8 bits: see `unsigned_`)
  at::ScalarType out;     // the tensor we return
  int64_t itemsize = 0;
  int64_t swap_unit = 0;  // byte-swap granularity for big-endian data (complex: each half)
  bool big_endian = false;
  bool unsigned_wide = false;  // u2/u4/u8, widened to int32/int64
};

DtypeInfo parse_descr(const std::string& descr, const std::string& what) {
  auto bad = [&](const std::string& why) -> DtypeInfo {
    MMREF_FAIL("{}: unsupported .npy dtype '{}' ({}); supported: b1 u1 i1 i2 i4 i8 u2 u4 u8 f2 f4 f8 c8 c16",
               what, descr, why);
  };
  if (descr.size() >= 2 && descr[1] == 'O') return bad("object arrays need pickle");
  if (descr.size() < 3) return bad("too short");
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') return bad("no byte-order character");
  const char kind = descr[1];
  int64_t size = 0;
  for (size_t i = 2; i < descr.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(descr[i]))) return bad("not a plain numeric dtype");
    size = size * 10 + (descr[i] - '0');
    if (size > 64) return bad("item size");
  }
  DtypeInfo d;
  d.itemsize = size;
  d.swap_unit = size;
  d.big_endian = order == '>';
  switch (kind) {
    case 'b':
      if (size != 1) return bad("bool of size != 1");
      d.stored = d.out = at::kBool;
      break;
    case 'u':
      if (size == 1) {
        d.stored = d.out = at::kByte;
      } else if (size == 2) {
        d.stored = at::kShort, d.out = at::kInt, d.unsigned_wide = true;
      } else if (size == 4) {
        d.stored = at::kInt, d.out = at::kLong, d.unsigned_wide = true;
      } else if (size == 8) {
        d.stored = at::kLong, d.out = at::kLong, d.unsigned_wide = true;
      } else {
        return bad("unsigned size");
      }
      break;
    case 'i':
      if (size == 1)
        d.stored = at::kChar;
      else if (size == 2)
        d.stored = at::kShort;
      else if (size == 4)
        d.stored = at::kInt;
      else if (size == 8)
        d.stored = at::kLong;
      else
        return bad("integer size");
      d.out = d.stored;
      break;
    case 'f':
      if (size == 2)
        d.stored = at::kHalf;
      else if (size == 4)
        d.stored = at::kFloat;
      else if (size == 8)
        d.stored = at::kDouble;
      else
        return bad("float size (float128 is not supported)");
      d.out = d.stored;
      break;
    case 'c':
      if (size == 8)
        d.stored = at::kComplexFloat;
      else if (size == 16)
        d.stored = at::kComplexDouble;
      else
        return bad("complex size");
      d.out = d.stored;
      d.swap_unit = size / 2;
      break;
    default:
      return bad("kind");
  }
  return d;
}

const char* descr_for(at::ScalarType t) {
  switch (t) {
    case at::kBool:
      return "|b1";
    case at::kByte:
      return "|u1";
    case at::kChar:
      return "|i1";
    case at::kShort:
      return "<i2";
    case at::kInt:
      return "<i4";
    case at::kLong:
      return "<i8";
    case at::kHalf:
      return "<f2";
    case at::kFloat:
      return "<f4";
    case at::kDouble:
      return "<f8";
    case at::kComplexFloat:
      return "<c8";
    case at::kComplexDouble:
      return "<c16";
    default:
      return nullptr;
  }
}

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) { return rd32(p) | (static_cast<uint64_t>(rd32(p + 4)) << 32); }

// The header text np.save writes (numpy/lib/format.py _write_array_header, _wrap_header).
std::string npy_header(const at::Tensor& t) {
  const char* descr = descr_for(t.scalar_type());
  if (descr == nullptr)
    MMREF_FAIL(
        "cannot write a {} tensor as .npy: numpy has no such dtype; convert it first (e.g. .to(kFloat))",
        c10::toString(t.scalar_type()));
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) shape += ", ";
    shape += std::to_string(t.size(i));
  }
  shape += t.dim() == 1 ? ",)" : ")";
  std::string h = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
  if (t.dim() > 0) {
    const size_t digits = std::to_string(t.size(0)).size();
    if (digits < kGrowthDigits) h.append(kGrowthDigits - digits, ' ');
  }
  // Version 1.0 unless the padded header exceeds its uint16 length field.
  for (int version : {1, 2}) {
    const size_t prefix = kMagicLen + 2 + (version == 1 ? 2 : 4);
    const size_t hlen = h.size() + 1;
    const size_t padlen = kArrayAlign - ((prefix + hlen) % kArrayAlign);
    const uint64_t total = hlen + padlen;
    if (version == 1 && total > 0xFFFF) continue;
    std::string out(kMagic, kMagicLen);
    out.push_back(static_cast<char>(version));
    out.push_back(0);
    for (size_t b = 0; b < (version == 1 ? 2u : 4u); ++b)
      out.push_back(static_cast<char>((total >> (8 * b)) & 0xFF));
    out += h;
    out.append(padlen, ' ');
    out.push_back('\n');
    return out;
  }
  MMREF_FAIL("npy header of {} bytes is too long", h.size());
}

at::Tensor cpu_contiguous(const at::Tensor& t) {
  if (!t.defined()) MMREF_FAIL("cannot write an undefined tensor as .npy");
  return t.detach().to(at::kCPU).contiguous();
}

// ---------------------------------------------------------------------------------------------------
// zip

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t k32Max = 0xFFFFFFFFu;

uint32_t crc32_of(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

class ZipFileReader {
 public:
  explicit ZipFileReader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) MMREF_FAIL("cannot open npz '{}': {}", path, std::strerror(errno));
    in_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(in_.tellg());
  }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  std::string read(uint64_t offset, uint64_t n, const std::string& what) {
    if (offset > size_ || n > size_ - offset)
      MMREF_FAIL("npz '{}' is truncated or corrupt: {} needs {} bytes at offset {}, the file has {}", path_,
                 what, n, offset, size_);
    std::string buf(n, '\0');
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(buf.data(), static_cast<std::streamsize>(n));
    if (!in_) MMREF_FAIL("npz '{}': read error in {}", path_, what);
    return buf;
  }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

struct ZipEntry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t comp_size = 0, size = 0, offset = 0;
};

std::vector<ZipEntry> read_central_directory(ZipFileReader& f) {
  const std::string& path = f.path();
  if (f.size() < 22) MMREF_FAIL("npz '{}' is not a zip archive (only {} bytes)", path, f.size());
  const uint64_t tail_len = std::min<uint64_t>(f.size(), 22 + 0xFFFF);
  const std::string tail = f.read(f.size() - tail_len, tail_len, "the end-of-central-directory search");
  const auto* t = reinterpret_cast<const uint8_t*>(tail.data());
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i) {
    if (rd32(t + i) == kEocdSig) {
      at = i;
      break;
    }
  }
  if (at < 0)
    MMREF_FAIL("npz '{}' is not a zip archive or is truncated (no end-of-central-directory record)", path);
  const uint64_t eocd_pos = f.size() - tail_len + static_cast<uint64_t>(at);
  const uint8_t* e = t + at;
  uint64_t entries = rd16(e + 10);
  uint64_t cd_size = rd32(e + 12);
  uint64_t cd_offset = rd32(e + 16);
  if (eocd_pos >= 20) {
    const std::string loc = f.read(eocd_pos - 20, 20, "the zip64 locator");
    const auto* l = reinterpret_cast<const uint8_t*>(loc.data());
    if (rd32(l) == kZip64LocatorSig) {
      const std::string z = f.read(rd64(l + 8), 56, "the zip64 end-of-central-directory record");
      const auto* zp = reinterpret_cast<const uint8_t*>(z.data());
      if (rd32(zp) != kZip64EocdSig)
        MMREF_FAIL("npz '{}': corrupt zip64 end-of-central-directory record", path);
      entries = rd64(zp + 32);
      cd_size = rd64(zp + 40);
      cd_offset = rd64(zp + 48);
    }
  }
  const std::string cd = f.read(cd_offset, cd_size, "the central directory");
  const auto* p = reinterpret_cast<const uint8_t*>(cd.data());
  std::vector<ZipEntry> out;
  uint64_t pos = 0;
  for (uint64_t k = 0; k < entries; ++k) {
    if (pos + 46 > cd.size() || rd32(p + pos) != kCentralSig)
      MMREF_FAIL("npz '{}': corrupt central directory at entry {} of {}", path, k, entries);
    const uint8_t* c = p + pos;
    ZipEntry z;
    z.flags = rd16(c + 8);
    z.method = rd16(c + 10);
    z.crc = rd32(c + 16);
    z.comp_size = rd32(c + 20);
    z.size = rd32(c + 24);
    const uint16_t name_len = rd16(c + 28), extra_len = rd16(c + 30), comment_len = rd16(c + 32);
    z.offset = rd32(c + 42);
    if (pos + 46 + name_len + extra_len + comment_len > cd.size())
      MMREF_FAIL("npz '{}': corrupt central directory at entry {} of {}", path, k, entries);
    z.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
    // zip64 extended information: present fields are those whose 32-bit value is 0xFFFFFFFF, in order.
    const uint8_t* x = c + 46 + name_len;
    for (uint32_t xp = 0; xp + 4 <= extra_len;) {
      const uint16_t id = rd16(x + xp), len = rd16(x + xp + 2);
      if (xp + 4 + len > extra_len) break;
      if (id == 0x0001) {
        const uint8_t* v = x + xp + 4;
        uint32_t used = 0;
        for (uint64_t* field : {&z.size, &z.comp_size, &z.offset}) {
          if (*field != k32Max) continue;
          if (used + 8 > len) MMREF_FAIL("npz '{}': member '{}': truncated zip64 extra field", path, z.name);
          *field = rd64(v + used);
          used += 8;
        }
      }
      xp += 4 + len;
    }
    out.push_back(std::move(z));
    pos += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

std::string inflate_raw(const std::string& in, uint64_t size, const std::string& what) {
  std::string out(size, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) MMREF_FAIL("{}: zlib inflateInit2 failed", what);
  uint64_t in_left = in.size(), out_left = size;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.avail_in == 0) {
      zs.avail_in = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
      in_left -= zs.avail_in;
    }
    if (zs.avail_out == 0) {
      zs.avail_out = static_cast<uInt>(std::min<uint64_t>(out_left, 1u << 30));
      out_left -= zs.avail_out;
    }
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && zs.avail_out == 0 && out_left == 0) break;  // more output than declared
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) break;    // input ended early
  }
  const uint64_t produced = zs.total_out;
  const char* msg = zs.msg;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END)
    MMREF_FAIL("{}: corrupt or truncated deflate data ({})", what,
               msg != nullptr
                   ? msg
                   : (rc == Z_BUF_ERROR ? "stream does not end where the sizes say" : "zlib error"));
  if (produced != size)
    MMREF_FAIL("{}: deflate data holds {} bytes, the zip directory says {}", what, produced, size);
  return out;
}

void put16(std::string& s, uint64_t v) {
  for (int b = 0; b < 2; ++b) s.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
}
void put32(std::string& s, uint64_t v) {
  for (int b = 0; b < 4; ++b) s.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
}
void put64(std::string& s, uint64_t v) {
  for (int b = 0; b < 8; ++b) s.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

at::Tensor npy_from_bytes(const void* data, size_t size, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (size < kMagicLen + 4 || std::memcmp(p, kMagic, kMagicLen) != 0)
    MMREF_FAIL("{}: not a .npy file (no \\x93NUMPY magic{})", what, size < 10 ? ", file too short" : "");
  const int major = p[6], minor = p[7];
  size_t prefix = 0;
  uint64_t hlen = 0;
  if (major == 1) {
    prefix = 10;
    hlen = rd16(p + 8);
  } else if (major == 2 || major == 3) {
    if (size < 12) MMREF_FAIL("{}: truncated .npy header", what);
    prefix = 12;
    hlen = rd32(p + 8);
  } else {
    MMREF_FAIL("{}: unsupported .npy format version {}.{} (known: 1.0, 2.0, 3.0)", what, major, minor);
  }
  if (hlen > size - prefix)
    MMREF_FAIL("{}: truncated .npy header ({} header bytes declared, {} present)", what, hlen, size - prefix);
  std::string text(reinterpret_cast<const char*>(p + prefix), hlen);
  const NpyHeader h = HeaderParser(text, what).parse();
  const DtypeInfo d = parse_descr(h.descr, what);

  int64_t numel = 1;
  for (int64_t s : h.shape) {
    if (s != 0 && numel > std::numeric_limits<int64_t>::max() / s / std::max<int64_t>(d.itemsize, 1))
      MMREF_FAIL("{}: .npy shape is too large", what);
    numel *= s;
  }
  const uint64_t nbytes = static_cast<uint64_t>(numel) * static_cast<uint64_t>(d.itemsize);
  const uint64_t data_at = prefix + hlen;
  if (nbytes > size - data_at)
    MMREF_FAIL("{}: truncated .npy data: shape needs {} bytes, {} present", what, nbytes, size - data_at);

  // Fortran order: the bytes are the C-order array of the reversed shape, transposed.
  std::vector<int64_t> file_shape = h.shape;
  if (h.fortran_order) std::reverse(file_shape.begin(), file_shape.end());
  at::Tensor t = at::empty(file_shape, at::TensorOptions().dtype(d.stored));
  if (nbytes > 0) std::memcpy(t.data_ptr(), p + data_at, nbytes);
  if (d.big_endian && d.swap_unit > 1) {
    auto* b = static_cast<uint8_t*>(t.data_ptr());
    for (uint64_t i = 0; i < nbytes; i += static_cast<uint64_t>(d.swap_unit))
      std::reverse(b + i, b + i + d.swap_unit);
  }
  if (d.stored == at::kBool && nbytes > 0) {
    // numpy bools are 0/1 bytes; anything else would be an invalid libtorch bool.
    auto* b = static_cast<uint8_t*>(t.data_ptr());
    for (uint64_t i = 0; i < nbytes; ++i) b[i] = b[i] != 0;
  }
  if (d.unsigned_wide) {
    at::Tensor w = at::empty(file_shape, at::TensorOptions().dtype(d.out));
    const int64_t n = t.numel();
    if (d.itemsize == 2) {
      const auto* src = static_cast<const uint16_t*>(t.data_ptr());
      auto* dst = w.data_ptr<int32_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    } else if (d.itemsize == 4) {
      const auto* src = static_cast<const uint32_t*>(t.data_ptr());
      auto* dst = w.data_ptr<int64_t>();
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    } else {
      const auto* src = static_cast<const uint64_t*>(t.data_ptr());
      auto* dst = w.data_ptr<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        if (src[i] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          MMREF_FAIL("{}: uint64 value {} at index {} does not fit int64", what, src[i], i);
        dst[i] = static_cast<int64_t>(src[i]);
      }
    }
    t = w;
  }
  if (h.fortran_order && t.dim() > 1) {
    std::vector<int64_t> perm(static_cast<size_t>(t.dim()));
    for (int64_t i = 0; i < t.dim(); ++i) perm[static_cast<size_t>(i)] = t.dim() - 1 - i;
    t = t.permute(perm).contiguous();
  }
  return t;
}

std::string npy_bytes(const at::Tensor& tensor) {
  const at::Tensor t = cpu_contiguous(tensor);
  std::string out = npy_header(t);
  const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  out.append(static_cast<const char*>(t.data_ptr()), nbytes);
  return out;
}

at::Tensor load_npy(const std::string& path) {
  const std::string bytes = fs::read_file(path);
  return npy_from_bytes(bytes.data(), bytes.size(), fmt::format("npy '{}'", path));
}

void save_npy(const std::string& path, const at::Tensor& tensor) {
  const at::Tensor t = cpu_contiguous(tensor);
  const std::string header = npy_header(t);
  fs::atomic_write(path, [&](std::ostream& os) {
    os.write(header.data(), static_cast<std::streamsize>(header.size()));
    os.write(static_cast<const char*>(t.data_ptr()),
             static_cast<std::streamsize>(t.numel() * t.element_size()));
  });
}

std::map<std::string, at::Tensor> load_npz(const std::string& path) {
  ZipFileReader f(path);
  std::map<std::string, at::Tensor> out;
  for (const ZipEntry& z : read_central_directory(f)) {
    if (!z.name.empty() && z.name.back() == '/') continue;  // a directory entry
    const std::string what = fmt::format("npz '{}': member '{}'", path, z.name);
    if (z.name.size() < 5 || z.name.compare(z.name.size() - 4, 4, ".npy") != 0)
      MMREF_FAIL("{} is not a .npy array (an .npz holds only <key>.npy members)", what);
    if (z.flags & 0x1) MMREF_FAIL("{} is encrypted", what);
    if (z.method != 0 && z.method != 8)
      MMREF_FAIL("{} uses zip compression method {} (only stored and deflate are supported)", what, z.method);
    const std::string local = f.read(z.offset, 30, what + " local header");
    const auto* l = reinterpret_cast<const uint8_t*>(local.data());
    if (rd32(l) != kLocalSig) MMREF_FAIL("{}: bad local header signature at offset {}", what, z.offset);
    const uint64_t data_at = z.offset + 30 + rd16(l + 26) + rd16(l + 28);
    std::string raw = f.read(data_at, z.comp_size, what + " data");
    if (z.method == 8) {
      raw = inflate_raw(raw, z.size, what);
    } else if (z.comp_size != z.size) {
      MMREF_FAIL("{}: stored member with compressed size {} != size {}", what, z.comp_size, z.size);
    }
    const uint32_t crc = crc32_of(0, raw.data(), raw.size());
    if (crc != z.crc)
      MMREF_FAIL("{}: CRC-32 mismatch (stored {:08x}, computed {:08x}); the file is corrupt", what, z.crc,
                 crc);
    const std::string key = z.name.substr(0, z.name.size() - 4);
    if (out.count(key)) MMREF_FAIL("{}: duplicate key '{}'", what, key);
    out.emplace(key, npy_from_bytes(raw.data(), raw.size(), what));
  }
  return out;
}

void save_npz(const std::string& path, const std::map<std::string, at::Tensor>& arrays,
              const NpzWriteOptions& options) {
  struct Member {
    std::string name, header;
    at::Tensor t;
    uint64_t data_bytes = 0, size = 0, offset = 0;
    uint32_t crc = 0;
    bool zip64 = false;
  };
  std::vector<Member> members;
  for (const auto& [key, tensor] : arrays) {
    if (key.empty()) MMREF_FAIL("save_npz '{}': empty key", path);
    if (key.size() + 4 > 0xFFFF) MMREF_FAIL("save_npz '{}': key of {} bytes is too long", path, key.size());
    Member m;
    m.name = key + ".npy";
    m.t = cpu_contiguous(tensor);
    try {
      m.header = npy_header(m.t);
    } catch (const Error& e) {
      MMREF_FAIL("save_npz '{}': key '{}': {}", path, key, e.what());
    }
    m.data_bytes = static_cast<uint64_t>(m.t.numel()) * m.t.element_size();
    m.size = m.header.size() + m.data_bytes;
    m.crc = crc32_of(crc32_of(0, m.header.data(), m.header.size()), m.t.data_ptr(), m.data_bytes);
    members.push_back(std::move(m));
  }
  const uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: reproducible bytes
  auto utf8_flag = [](const std::string& s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })
               ? uint16_t{0x800}
               : uint16_t{0};
  };
  fs::atomic_write(path, [&](std::ostream& os) {
    uint64_t pos = 0;
    for (Member& m : members) {
      m.offset = pos;
      m.zip64 = options.force_zip64 || m.size >= k32Max || m.offset >= k32Max;
      std::string h;
      put32(h, kLocalSig);
      put16(h, m.zip64 ? 45 : 20);
      put16(h, utf8_flag(m.name));
      put16(h, 0);  // stored
      put16(h, 0);  // time
      put16(h, kDosDate);
      put32(h, m.crc);
      put32(h, m.zip64 ? k32Max : m.size);
      put32(h, m.zip64 ? k32Max : m.size);
      put16(h, m.name.size());
      put16(h, m.zip64 ? 20 : 0);
      h += m.name;
      if (m.zip64) {
        put16(h, 0x0001);
        put16(h, 16);
        put64(h, m.size);
        put64(h, m.size);
      }
      os.write(h.data(), static_cast<std::streamsize>(h.size()));
      os.write(m.header.data(), static_cast<std::streamsize>(m.header.size()));
      os.write(static_cast<const char*>(m.t.data_ptr()), static_cast<std::streamsize>(m.data_bytes));
      pos += h.size() + m.size;
    }
    const uint64_t cd_offset = pos;
    std::string cd;
    for (const Member& m : members) {
      const bool big_size = m.zip64 && (options.force_zip64 || m.size >= k32Max);
      const bool big_off = m.zip64 && (options.force_zip64 || m.offset >= k32Max);
      const uint16_t extra = static_cast<uint16_t>((big_size ? 16 : 0) + (big_off ? 8 : 0));
      put32(cd, kCentralSig);
      put16(cd, (3 << 8) | 45);  // made by: unix, 4.5
      put16(cd, m.zip64 ? 45 : 20);
      put16(cd, utf8_flag(m.name));
      put16(cd, 0);
      put16(cd, 0);
      put16(cd, kDosDate);
      put32(cd, m.crc);
      put32(cd, big_size ? k32Max : m.size);
      put32(cd, big_size ? k32Max : m.size);
      put16(cd, m.name.size());
      put16(cd, extra > 0 ? extra + 4 : 0);
      put16(cd, 0);                 // comment
      put16(cd, 0);                 // disk
      put16(cd, 0);                 // internal attributes
      put32(cd, (0100644u) << 16);  // external: regular file, rw-r--r--
      put32(cd, big_off ? k32Max : m.offset);
      cd += m.name;
      if (extra > 0) {
        put16(cd, 0x0001);
        put16(cd, extra);
        if (big_size) {
          put64(cd, m.size);
          put64(cd, m.size);
        }
        if (big_off) put64(cd, m.offset);
      }
    }
    const uint64_t n = members.size();
    const bool zip64_end = options.force_zip64 || n >= 0xFFFF || cd_offset >= k32Max || cd.size() >= k32Max;
    std::string end;
    if (zip64_end) {
      const uint64_t z64_at = cd_offset + cd.size();
      put32(end, kZip64EocdSig);
      put64(end, 44);
      put16(end, (3 << 8) | 45);
      put16(end, 45);
      put32(end, 0);
      put32(end, 0);
      put64(end, n);
      put64(end, n);
      put64(end, cd.size());
      put64(end, cd_offset);
      put32(end, kZip64LocatorSig);
      put32(end, 0);
      put64(end, z64_at);
      put32(end, 1);
    }
    put32(end, kEocdSig);
    put16(end, 0);
    put16(end, 0);
    put16(end, zip64_end ? 0xFFFF : n);
    put16(end, zip64_end ? 0xFFFF : n);
    put32(end, zip64_end ? k32Max : cd.size());
    put32(end, zip64_end ? k32Max : cd_offset);
    put16(end, 0);
    os.write(cd.data(), static_cast<std::streamsize>(cd.size()));
    os.write(end.data(), static_cast<std::streamsize>(end.size()));
  });
}

}  // namespace mmref::eval
