// .npy / .npz I/O: round trips of every dtype, byte equality with np.save, interop with real numpy both
// ways (np.save / np.savez / np.savez_compressed / format versions 2.0 and 3.0 / big-endian / Fortran
// order, and numpy reading what we write, zip64 included), and corrupt or truncated files (always an
// mmref::Error naming the file, never a crash).
// The interop cases run Debian's /usr/bin/python3 with numpy and skip when it is missing.
//   build/<dir>/tests/mmref_eval_tests --gtest_filter='Npy*:Npz*'
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "core/error.h"
#include "core/fs.h"
#include "eval/npy.h"

namespace mmref::eval {
namespace {

namespace stdfs = std::filesystem;

bool have_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  return ok;
}

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("mmref_npy_test_"); }
  void TearDown() override {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string read(const std::string& name) const { return fs::read_file(path(name)); }
  // Runs a Python script in dir_ (cwd); returns its exit status and leaves its output in py.log.
  int python(const std::string& script) const {
    write("script.py", "import numpy as np, sys\n" + script);
    const std::string cmd = "cd '" + dir_ + "' && /usr/bin/python3 script.py >py.log 2>&1";
    const int rc = std::system(cmd.c_str());
    if (rc != 0) ADD_FAILURE() << "python failed:\n" << read("py.log");
    return rc;
  }
  std::string dir_;
};

using NpzTest = NpyTest;

// Bitwise equality of two CPU tensors of the same dtype and shape.
void expect_same(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.scalar_type(), b.scalar_type()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const at::Tensor ac = a.contiguous(), bc = b.contiguous();
  EXPECT_EQ(std::memcmp(ac.data_ptr(), bc.data_ptr(), ac.numel() * ac.element_size()), 0) << what;
}

// A deterministic test array: arange(numel) * 0.5 - 3, cast (bools: odd elements).
at::Tensor sample(at::ScalarType t, at::IntArrayRef shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  at::Tensor x = at::arange(n, at::kDouble).mul(0.5).sub(3).reshape(shape);
  if (t == at::kBool) return at::arange(n, at::kLong).remainder(2).eq(1).reshape(shape);
  if (t == at::kByte) return at::arange(n, at::kLong).remainder(251).to(at::kByte).reshape(shape);
  if (at::isComplexType(t)) return at::complex(x, x.mul(-2).add(0.0)).to(t);  // +0.0 imag, as numpy
  return x.to(t);
}

const std::vector<at::ScalarType> kAllTypes = {at::kBool,   at::kByte,         at::kChar,         at::kShort,
                                               at::kInt,    at::kLong,         at::kHalf,         at::kFloat,
                                               at::kDouble, at::kComplexFloat, at::kComplexDouble};

TEST_F(NpyTest, RoundTripEveryDtypeAndShape) {
  for (at::ScalarType t : kAllTypes) {
    for (const std::vector<int64_t>& shape :
         std::vector<std::vector<int64_t>>{{}, {0}, {7}, {3, 4}, {2, 0, 3}, {2, 3, 4}}) {
      const at::Tensor x = sample(t, shape);
      const std::string what = std::string(c10::toString(t)) + " " + std::to_string(shape.size()) + "-d";
      save_npy(path("x.npy"), x);
      expect_same(load_npy(path("x.npy")), x, what);
      // Header is padded to 64 bytes as numpy pads it.
      const std::string b = npy_bytes(x);
      EXPECT_EQ((b.size() - x.numel() * x.element_size()) % 64, 0u) << what;
    }
  }
}

TEST_F(NpyTest, NonContiguousAndBfloat16) {
  const at::Tensor x = at::arange(12, at::kFloat).reshape({3, 4}).t();  // a transposed view
  save_npy(path("t.npy"), x);
  expect_same(load_npy(path("t.npy")), x.contiguous(), "transposed");
  try {
    save_npy(path("b.npy"), at::ones({2}, at::kBFloat16));
    FAIL() << "bfloat16 should be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BFloat16"), std::string::npos) << e.what();
  }
}

TEST_F(NpyTest, BytesEqualNumpySave) {
  if (!have_numpy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  ASSERT_EQ(python(R"(
arrs = {
  'f4': (np.arange(12, dtype=np.float64) * 0.5 - 3).astype('<f4').reshape(3, 4),
  'f8': (np.arange(7, dtype=np.float64) * 0.5 - 3).astype('<f8'),
  'i8': (np.arange(24, dtype=np.float64) * 0.5 - 3).astype('<i8').reshape(2, 3, 4),
  'b1': (np.arange(5) % 2 == 1),
  'scalar': np.array(-3.0, dtype='<f8'),
  'empty': np.zeros((0, 3), dtype='<f4'),
}
for k, a in arrs.items():
    np.save(k + '.npy', a)
)"),
            0);
  struct Case {
    const char* name;
    at::Tensor t;
  };
  const std::vector<Case> cases = {{"f4", sample(at::kFloat, {3, 4})},
                                   {"f8", sample(at::kDouble, {7})},
                                   {"i8", sample(at::kLong, {2, 3, 4})},
                                   {"b1", sample(at::kBool, {5})},
                                   {"scalar", at::scalar_tensor(-3.0, at::kDouble)},
                                   {"empty", at::zeros({0, 3}, at::kFloat)}};
  for (const auto& c : cases) EXPECT_EQ(npy_bytes(c.t), read(std::string(c.name) + ".npy")) << c.name;
}

TEST_F(NpyTest, ReadsWhatNumpyWrites) {
  if (!have_numpy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  // Every dtype, both byte orders, Fortran order, and the 2.0 / 3.0 header versions.
  ASSERT_EQ(python(R"(
from numpy.lib import format as fmt
def sample(code, shape):
    n = int(np.prod(shape))
    x = (np.arange(n, dtype=np.float64) * 0.5 - 3).reshape(shape)
    if code == 'b1': return (np.arange(n) % 2 == 1).reshape(shape)
    if code == 'u1': return (np.arange(n) % 251).astype('u1').reshape(shape)
    if code in ('c8', 'c16'): return (x + 1j * (x * -2)).astype(code)
    return x.astype(code)
for code in ['b1', 'u1', 'i1', 'i2', 'i4', 'i8', 'f2', 'f4', 'f8', 'c8', 'c16']:
    a = sample(code, (3, 4))
    np.save('le_' + code + '.npy', a.astype(a.dtype.newbyteorder('<')))
    np.save('be_' + code + '.npy', a.astype(a.dtype.newbyteorder('>')))
    np.save('fo_' + code + '.npy', np.asfortranarray(sample(code, (2, 3, 4))))
for v in [(2, 0), (3, 0)]:
    with open('v%d.npy' % v[0], 'wb') as f:
        fmt.write_array(f, sample('f8', (5, 2)), version=v)
np.save('u2.npy', np.array([0, 1, 65535], dtype='<u2'))
np.save('u4.npy', np.array([0, 1, 4294967295], dtype='>u4'))
np.save('u8.npy', np.array([0, 2**63 - 1], dtype='<u8'))
np.save('u8big.npy', np.array([2**63], dtype='<u8'))
np.save('str.npy', np.array(['ab', 'c']))
np.save('obj.npy', np.array([{}, 1], dtype=object), allow_pickle=True)
np.save('rec.npy', np.zeros(2, dtype=[('a', '<f4'), ('b', '<i4')]))
)"),
            0);
  const std::vector<std::pair<const char*, at::ScalarType>> types = {
      {"b1", at::kBool},   {"u1", at::kByte},         {"i1", at::kChar},          {"i2", at::kShort},
      {"i4", at::kInt},    {"i8", at::kLong},         {"f2", at::kHalf},          {"f4", at::kFloat},
      {"f8", at::kDouble}, {"c8", at::kComplexFloat}, {"c16", at::kComplexDouble}};
  for (const auto& [code, t] : types) {
    expect_same(load_npy(path(std::string("le_") + code + ".npy")), sample(t, {3, 4}),
                std::string("le ") + code);
    expect_same(load_npy(path(std::string("be_") + code + ".npy")), sample(t, {3, 4}),
                std::string("be ") + code);
    const at::Tensor fo = load_npy(path(std::string("fo_") + code + ".npy"));
    EXPECT_TRUE(fo.is_contiguous());
    expect_same(fo, sample(t, {2, 3, 4}), std::string("fortran ") + code);
  }
  expect_same(load_npy(path("v2.npy")), sample(at::kDouble, {5, 2}), "version 2.0");
  expect_same(load_npy(path("v3.npy")), sample(at::kDouble, {5, 2}), "version 3.0");
  // Wide unsigned types widen losslessly.
  const at::Tensor u2 = load_npy(path("u2.npy"));
  EXPECT_EQ(u2.scalar_type(), at::kInt);
  EXPECT_EQ(u2[2].item<int32_t>(), 65535);
  const at::Tensor u4 = load_npy(path("u4.npy"));
  EXPECT_EQ(u4.scalar_type(), at::kLong);
  EXPECT_EQ(u4[2].item<int64_t>(), 4294967295LL);
  EXPECT_EQ(load_npy(path("u8.npy"))[1].item<int64_t>(), INT64_MAX);
  for (const char* bad : {"u8big.npy", "str.npy", "obj.npy", "rec.npy"}) {
    try {
      load_npy(path(bad));
      ADD_FAILURE() << bad << " should be rejected";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path(bad)), std::string::npos) << e.what();
    }
  }
}

TEST_F(NpzTest, ReadsSavezAndSavezCompressed) {
  if (!have_numpy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  ASSERT_EQ(python(R"(
rng = np.random.default_rng(0)
a = rng.standard_normal((64, 33)).astype('<f4')
b = np.arange(1000, dtype='<i8')
c = rng.standard_normal((128, 128))     # compressible only a little
z = np.zeros((300, 300))                # compresses to almost nothing
np.savez('stored.npz', a=a, b=b, c=c, z=z, scalar=np.float64(2.5))
np.savez_compressed('deflated.npz', a=a, b=b, c=c, z=z, scalar=np.float64(2.5))
np.savez('positional.npz', a, b)        # keys arr_0, arr_1
np.save('a.npy', a); np.save('c.npy', c)
)"),
            0);
  const at::Tensor a = load_npy(path("a.npy")), c = load_npy(path("c.npy"));
  for (const char* file : {"stored.npz", "deflated.npz"}) {
    const auto m = load_npz(path(file));
    ASSERT_EQ(m.size(), 5u) << file;
    expect_same(m.at("a"), a, std::string(file) + " a");
    expect_same(m.at("b"), at::arange(1000, at::kLong), std::string(file) + " b");
    expect_same(m.at("c"), c, std::string(file) + " c");
    expect_same(m.at("z"), at::zeros({300, 300}, at::kDouble), std::string(file) + " z");
    EXPECT_EQ(m.at("scalar").dim(), 0);
    EXPECT_EQ(m.at("scalar").item<double>(), 2.5);
  }
  const auto p = load_npz(path("positional.npz"));
  EXPECT_TRUE(p.count("arr_0") && p.count("arr_1"));
}

TEST_F(NpzTest, NumpyReadsWhatWeWrite) {
  if (!have_numpy()) GTEST_SKIP() << "no /usr/bin/python3 with numpy";
  std::map<std::string, at::Tensor> m;
  for (at::ScalarType t : kAllTypes) m[std::string("k_") + c10::toString(t)] = sample(t, {3, 5});
  m["scalar"] = at::scalar_tensor(-1.25, at::kDouble);
  m["empty"] = at::zeros({0}, at::kFloat);
  m["big"] = at::arange(300000, at::kDouble);  // 2.4 MB member
  save_npz(path("ours.npz"), m);
  save_npz(path("ours64.npz"), m, NpzWriteOptions{/*force_zip64=*/true});
  for (const auto& [k, t] : m) save_npy(path(k + ".npy"), t);
  ASSERT_EQ(python(R"(
import zipfile
for name in ['ours.npz', 'ours64.npz']:
    with zipfile.ZipFile(name) as zf:
        assert zf.testzip() is None, name        # every CRC-32 checks out
    with np.load(name) as f:
        assert len(f.files) == 14, f.files
        for k in f.files:
            ref = np.load(k + '.npy')
            got = f[k]
            assert got.dtype == ref.dtype and got.shape == ref.shape, (name, k, got.dtype, got.shape)
            assert got.tobytes() == ref.tobytes(), (name, k)
        assert f['big'][-1] == 299999.0
print('ok')
)"),
            0);
  // And we read our own archives back.
  for (const char* file : {"ours.npz", "ours64.npz"}) {
    const auto back = load_npz(path(file));
    ASSERT_EQ(back.size(), m.size());
    for (const auto& [k, t] : m) expect_same(back.at(k), t, std::string(file) + " " + k);
  }
}

// Every way a file can be cut or damaged gives an mmref::Error that names the file.
void expect_error_naming(const std::function<void()>& f, const std::string& file, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << what << ": " << e.what();
  }
}

TEST_F(NpyTest, CorruptAndTruncatedFiles) {
  const std::string good = npy_bytes(sample(at::kFloat, {4, 5}));
  const std::string p = path("bad.npy");
  // Every truncation of the file.
  for (size_t len = 0; len < good.size(); ++len) {
    write("bad.npy", good.substr(0, len));
    expect_error_naming([&] { load_npy(p); }, p, "truncated at " + std::to_string(len));
  }
  auto patched = [&](size_t at, const std::string& with) {
    std::string b = good;
    b.replace(at, with.size(), with);
    return b;
  };
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"magic", patched(0, "\x93NUMPX")},
      {"version", patched(6, std::string("\x04\x00", 2))},
      {"header length", patched(8, std::string("\xff\xff", 2))},
      {"header text", patched(10, "[")},
      {"descr", patched(good.find("<f4"), "<q9")},
      {"fortran flag", patched(good.find("False"), "Maybe")},
      {"shape", patched(good.find("(4, 5)"), "(4,-5)")},
      {"structured", patched(good.find("'<f4'"), "[('a'")},
  };
  for (const auto& [what, bytes] : bad) {
    write("bad.npy", bytes);
    expect_error_naming([&] { load_npy(p); }, p, what);
  }
  expect_error_naming([&] { load_npy(path("missing.npy")); }, path("missing.npy"), "missing file");
}

TEST_F(NpzTest, CorruptAndTruncatedArchives) {
  std::map<std::string, at::Tensor> m{{"a", sample(at::kFloat, {8, 8})}, {"b", sample(at::kLong, {10})}};
  save_npz(path("good.npz"), m);
  const std::string good = read("good.npz");
  const std::string p = path("bad.npz");
  for (size_t len = 0; len < good.size(); len += 7) {
    write("bad.npz", good.substr(0, len));
    expect_error_naming([&] { load_npz(p); }, p, "truncated at " + std::to_string(len));
  }
  // A flipped data byte: the CRC-32 catches it.
  std::string flipped = good;
  flipped[200] = static_cast<char>(flipped[200] ^ 0x5a);
  write("bad.npz", flipped);
  expect_error_naming([&] { load_npz(p); }, p, "flipped byte");
  write("bad.npz", "PK\x05\x06 this is not an archive at all, just text that is long enough");
  expect_error_naming([&] { load_npz(p); }, p, "garbage");
  if (!have_numpy()) return;
  ASSERT_EQ(python(R"(
import zipfile
np.savez_compressed('deflated.npz', a=np.arange(5000.0))
with zipfile.ZipFile('other.npz', 'w') as z:
    z.writestr('readme.txt', 'not an array')
with zipfile.ZipFile('bzip.npz', 'w', compression=zipfile.ZIP_BZIP2) as z:
    z.writestr('a.npy', b'x' * 100)
)"),
            0);
  const std::string deflated = read("deflated.npz");
  // Damage the deflate stream in the middle (the directory stays intact).
  std::string broken = deflated;
  for (size_t i = 80; i < 120; ++i) broken[i] = static_cast<char>(0xff);
  write("bad.npz", broken);
  expect_error_naming([&] { load_npz(p); }, p, "corrupt deflate data");
  expect_error_naming([&] { load_npz(path("other.npz")); }, path("other.npz"), "non-npy member");
  expect_error_naming([&] { load_npz(path("bzip.npz")); }, path("bzip.npz"), "bzip2 member");
}

}  // namespace
}  // namespace mmref::eval
