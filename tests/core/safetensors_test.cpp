// safetensors reader/writer: round trips of every dtype, the byte layout, and corrupt files (every
// failure must be an mmref::Error with a message naming the problem, never a crash or an OOB read).
//   build/<dir>/tests/mmref_core_tests --gtest_filter='Safetensors*'
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"

namespace mmref {
namespace {

namespace stdfs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("mmref_safetensors_test_"); }
  void TearDown() override {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // A plain write: the loops below write hundreds of files and fs::atomic_write fsyncs each one.
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path(name);
  }
  std::string dir_;
};

// Bitwise equality (NaN, -0.0 and f16/bf16 patterns included) for tensors of the same dtype.
void expect_same_bits(const torch::Tensor& a, const torch::Tensor& b, const std::string& what) {
  ASSERT_EQ(a.scalar_type(), b.scalar_type()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const auto ac = a.contiguous();
  const auto bc = b.contiguous();
  const size_t n = static_cast<size_t>(ac.numel()) * ac.element_size();
  EXPECT_EQ(0, n == 0 ? 0 : std::memcmp(ac.data_ptr(), bc.data_ptr(), n)) << what;
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A file made by hand: length prefix, the header text as given (no padding), then `data`.
std::string raw_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

// Calls `f` and checks it throws mmref::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected a message with '" << *parts.begin() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

std::map<std::string, torch::Tensor> every_dtype() {
  auto ar = [](int64_t n) { return torch::arange(n, torch::kDouble); };
  std::map<std::string, torch::Tensor> m;
  m["f16"] = (ar(12).reshape({3, 4}) / 7 - 0.5).to(torch::kHalf);
  m["bf16"] = (ar(6).reshape({2, 3}) * 1.37 - 3).to(torch::kBFloat16);
  m["f32"] = torch::tensor({1.5f, -0.0f, std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 1e-40f /* denormal */, -3.25f});
  m["f64"] = (ar(24).reshape({2, 3, 4}) / 3).to(torch::kDouble);
  m["i64"] = (ar(5) * 1e12 - 2e12).to(torch::kLong);
  m["i32"] = (ar(7) * 1000003 - 3000000).to(torch::kInt);
  m["i16"] = (ar(4) * 10000 - 20000).to(torch::kShort);
  m["i8"] = (ar(5) * 60 - 128).to(torch::kChar);
  m["u8"] = (ar(9) * 31).to(torch::kByte);
  m["bool"] = torch::tensor({true, false, false, true});
  m["scalar"] = torch::tensor(2.5f);  // shape []
  m["scalar_i64"] = torch::tensor(int64_t{-7});
  m["empty"] = torch::zeros({0, 3});  // numel 0
  m["empty_mid"] = torch::zeros({3, 0, 2}, torch::kHalf);
  return m;
}

TEST_F(SafetensorsTest, RoundTripEveryDtype) {
  const auto in = every_dtype();
  const std::string p = path("all.safetensors");
  save_safetensors(p, in);
  auto f = SafetensorsFile::open(p);
  ASSERT_EQ(f.tensors().size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(f.contains(name)) << name;
    expect_same_bits(f.get(name), t, name);
  }
  const StTensorInfo& s = f.info("scalar");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.end - s.begin, 4u);
  EXPECT_EQ(f.info("empty").begin, f.info("empty").end);
  EXPECT_EQ(f.info("bool").dtype, StDType::BOOL);
  EXPECT_EQ(f.info("bool").end - f.info("bool").begin, 4u);  // one byte per bool
  EXPECT_EQ(f.info("f16").dtype, StDType::F16);
  EXPECT_EQ(f.info("bf16").dtype, StDType::BF16);
  EXPECT_EQ(f.get("f16").scalar_type(), torch::kHalf);
  EXPECT_EQ(f.get("bf16").scalar_type(), torch::kBFloat16);
  EXPECT_EQ(f.get("scalar").dim(), 0);
  EXPECT_EQ(f.get("scalar").item<float>(), 2.5f);
  EXPECT_EQ(f.get("empty_mid").sizes(), (std::vector<int64_t>{3, 0, 2}));
  EXPECT_TRUE(f.metadata().empty());

  // load_safetensors gives the same map; the file bytes equal safetensors_bytes.
  const auto all = load_safetensors(p);
  ASSERT_EQ(all.size(), in.size());
  for (const auto& [name, t] : in) expect_same_bits(all.at(name), t, name);
  EXPECT_EQ(fs::read_file(p), safetensors_bytes(in));
}

TEST_F(SafetensorsTest, TensorsOutliveTheFile) {
  const std::string p = write("a.safetensors", safetensors_bytes({{"w", torch::arange(6, torch::kFloat)}}));
  torch::Tensor t;
  {
    auto f = SafetensorsFile::open(p);
    auto moved = std::move(f);  // movable; the mapping moves with it
    t = moved.get("w");
  }
  stdfs::remove(p);
  EXPECT_TRUE(torch::equal(t, torch::arange(6, torch::kFloat)));
}

TEST_F(SafetensorsTest, NonContiguousAndStridedInputs) {
  const auto base = torch::arange(20, torch::kFloat).reshape({4, 5});
  std::map<std::string, torch::Tensor> in = {
      {"t", base.t()},                                           // strides (1, 5)
      {"row", base[2]},                                          // storage offset 10
      {"cols", base.slice(/*dim=*/1, 1, 5, /*step=*/2)},         // [4, 2], gaps
      {"bcast", torch::tensor({1.f, 2.f, 3.f}).expand({2, 3})},  // stride 0
  };
  const std::string p = path("strided.safetensors");
  save_safetensors(p, in);
  auto f = SafetensorsFile::open(p);
  for (const auto& [name, t] : in) {
    EXPECT_TRUE(torch::equal(f.get(name), t)) << name;
    EXPECT_TRUE(f.get(name).is_contiguous()) << name;
  }
  EXPECT_EQ(f.get("t").sizes(), (std::vector<int64_t>{5, 4}));
  EXPECT_EQ(f.get("row")[0].item<float>(), 10.f);
  EXPECT_EQ(f.info("bcast").end - f.info("bcast").begin, 24u);  // expanded data is written out
}

TEST_F(SafetensorsTest, MetadataRoundTrip) {
  const std::map<std::string, std::string> meta = {{"format", "pt"},
                                                   {"json", R"({"step": 3, "lr": [0.1]})"},
                                                   {"unicode", "\xc3\xa9t\xc3\xa9"},
                                                   {"empty", ""}};
  const std::string p = path("meta.safetensors");
  save_safetensors(p, {{"x", torch::ones({2})}}, meta);
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.metadata(), meta);
  EXPECT_EQ(f.path(), p);
  EXPECT_FALSE(f.contains("__metadata__"));
  EXPECT_EQ(f.tensors().size(), 1u);
}

TEST_F(SafetensorsTest, DtypeConversionOnLoad) {
  // k/4 for k = 0..7 is exact in fp16, so the float32 values are exact too.
  const auto q = torch::arange(8, torch::kFloat) / 4;
  const std::string p = path("half.safetensors");
  save_safetensors(p, {{"h", q.to(torch::kHalf)}, {"n", torch::arange(3, torch::kLong)}});
  auto f = SafetensorsFile::open(p);
  const auto h = f.get("h", torch::kFloat);
  EXPECT_EQ(h.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(h, q));
  EXPECT_EQ(f.get("h", torch::kHalf).scalar_type(), torch::kHalf);  // same dtype: no conversion
  const auto all = load_safetensors(p, torch::kDouble);
  EXPECT_EQ(all.at("h").scalar_type(), torch::kDouble);
  EXPECT_EQ(all.at("n").scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::equal(all.at("n"), torch::arange(3, torch::kDouble)));
}

// Byte layout, worked out by hand:
//   tensors {"b": F32 [2] = {1, 2}, "a": I64 [3] = {-1, 0, 7}, "c": U8 [5] = {1..5}}, metadata {k: v}
//   data block in sorted key order: a [0, 24), b [24, 32), c [32, 37)  -> 37 data bytes
//   header: {"__metadata__":{"k":"v"},"a":{...},"b":{...},"c":{...}} padded with spaces to 8k bytes
//   empty map: header "{}" + 6 spaces -> the file is exactly 16 bytes: 08 00 .. 00 '{' '}' ' ' x6
TEST_F(SafetensorsTest, ByteLayout) {
  const std::string bytes = safetensors_bytes({{"b", torch::tensor({1.f, 2.f})},
                                               {"a", torch::tensor({int64_t{-1}, int64_t{0}, int64_t{7}})},
                                               {"c", torch::arange(1, 6, torch::kByte)}},
                                              {{"k", "v"}});
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 37);
  const std::string header = bytes.substr(8, n);
  const auto close = header.rfind('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
  EXPECT_LT(header.size() - close - 1, 8u);
  EXPECT_EQ(header.front(), '{');
  // Keys in sorted order in the text itself.
  EXPECT_LT(header.find("\"a\""), header.find("\"b\""));
  EXPECT_LT(header.find("\"b\""), header.find("\"c\""));

  const auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j.at("__metadata__"), nlohmann::json({{"k", "v"}}));
  EXPECT_EQ(j.at("a").at("dtype"), "I64");
  EXPECT_EQ(j.at("a").at("shape"), nlohmann::json({3}));
  EXPECT_EQ(j.at("a").at("data_offsets"), nlohmann::json({0, 24}));
  EXPECT_EQ(j.at("b").at("dtype"), "F32");
  EXPECT_EQ(j.at("b").at("data_offsets"), nlohmann::json({24, 32}));
  EXPECT_EQ(j.at("c").at("dtype"), "U8");
  EXPECT_EQ(j.at("c").at("data_offsets"), nlohmann::json({32, 37}));

  const char* data = bytes.data() + 8 + n;
  int64_t a[3];
  std::memcpy(a, data, 24);
  EXPECT_EQ(a[0], -1);
  EXPECT_EQ(a[2], 7);
  float b[2];
  std::memcpy(b, data + 24, 8);
  EXPECT_EQ(b[1], 2.f);
  EXPECT_EQ(std::string(data + 32, 5), std::string("\x01\x02\x03\x04\x05", 5));

  EXPECT_EQ(safetensors_bytes({}), le64(8) + "{}      ");
}

TEST_F(SafetensorsTest, WriteRejectsUnsupportedDtypes) {
  const auto complex = [] { safetensors_bytes({{"z", torch::zeros({2}, torch::kComplexFloat)}}); };
  expect_error(complex, {"cannot save tensor 'z'", "cannot be stored in safetensors"});
  expect_error([] { safetensors_bytes({{std::string("bad\xff"), torch::zeros({2})}}); }, {"not valid UTF-8"});
  expect_error([] { safetensors_bytes({{"u", torch::Tensor()}}); }, {"'u'", "undefined"});
  const std::string p = path("never.safetensors");
  expect_error(
      [&] {
        save_safetensors(p, {{"z", torch::zeros({2}, torch::kComplexDouble)}});
      },
      {"cannot be stored"});
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(stdfs::is_empty(dir_)) << "no temp file left behind";
}

// ---- corrupt files -------------------------------------------------------------------------------

TEST_F(SafetensorsTest, CorruptShorterThanEightBytes) {
  const std::string p = write("short.safetensors", "abc");
  expect_error([&] { SafetensorsFile::open(p); }, {p, "3 bytes", "shorter than the 8-byte"});
  const std::string e = write("empty.safetensors", "");
  expect_error([&] { SafetensorsFile::open(e); }, {e, "0 bytes"});
}

TEST_F(SafetensorsTest, CorruptHeaderLengthPastEof) {
  const std::string p = write("past.safetensors", le64(9999999) + std::string(112, ' '));
  expect_error([&] { SafetensorsFile::open(p); },
               {p, "header length 9999999 runs past the end of the 120-byte file", "truncated"});
  const std::string q = write("absurd.safetensors", le64(uint64_t{1} << 40) + "{}");
  expect_error([&] { SafetensorsFile::open(q); }, {q, "absurd"});
}

TEST_F(SafetensorsTest, CorruptTruncatedHeader) {
  const std::string full = safetensors_bytes({{"weight", torch::ones({4})}});
  const std::string p = write("trunc.safetensors", full.substr(0, 8 + 10));
  expect_error([&] { SafetensorsFile::open(p); }, {p, "runs past the end of the 18-byte file"});
}

TEST_F(SafetensorsTest, CorruptDataOffsetsOutOfRange) {
  const std::string p =
      write("oob.safetensors",
            raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, '\0')));
  expect_error([&] { SafetensorsFile::open(p); },
               {p, "'w'", "[0, 8]", "run past the end of the 4-byte data block"});
  const std::string q =
      write("rev.safetensors",
            raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", std::string(8, '\0')));
  expect_error([&] { SafetensorsFile::open(q); }, {q, "begin after end"});
}

TEST_F(SafetensorsTest, CorruptBadDtype) {
  const std::string p =
      write("dtype.safetensors",
            raw_file(R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", std::string(4, '\0')));
  expect_error([&] { SafetensorsFile::open(p); }, {p, "bad dtype 'F7' for tensor 'w'"});
}

TEST_F(SafetensorsTest, CorruptByteSizeMismatch) {
  const std::string p =
      write("size.safetensors",
            raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')));
  expect_error([&] { SafetensorsFile::open(p); }, {p, "'w'", "F32 [3] = 12 bytes", "span 8 bytes"});
  // numel * itemsize overflowing 64 bits is a mismatch, not a wrap-around.
  const std::string q = write(
      "overflow.safetensors",
      raw_file(
          R"({"w":{"dtype":"F64","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})",
          ""));
  expect_error([&] { SafetensorsFile::open(q); }, {q, "too many bytes"});
}

TEST_F(SafetensorsTest, CorruptInvalidJsonAndWrongTypes) {
  struct Case {
    std::string header, expect;
  };
  const std::vector<Case> cases = {
      {"{not json", "header is not valid JSON"},
      {"[1, 2]", "header is a JSON array, not an object"},
      {R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "has no \"dtype\""},
      {R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "has no \"shape\""},
      {R"({"w":{"dtype":"F32","shape":[1]}})", "has no \"data_offsets\""},
      {R"({"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}})", "\"dtype\" that is a JSON number"},
      {R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", "\"shape\" that is a JSON string"},
      {R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "not a list of integers"},
      {R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "negative dimension -1"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "not an array [begin, end]"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", "not two non-negative integers"},
      {R"({"w":[1]})", "is a JSON array, not an object"},
      {R"({"__metadata__":{"a":1}})", "not a string"},
      {R"({"__metadata__":[1]})", "not an object of strings"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       "overlap"},
  };
  int k = 0;
  for (const auto& c : cases) {
    const std::string p =
        write(fmt::format("case{}.safetensors", k++), raw_file(c.header, std::string(16, '\0')));
    SCOPED_TRACE(c.header);
    expect_error([&] { SafetensorsFile::open(p); }, {p, c.expect});
  }
}

TEST_F(SafetensorsTest, GapsAndEmptyTensorsAreValid) {
  // A gap between tensors and a zero-size tensor inside another's range are not overlaps.
  const std::string p = write(
      "gap.safetensors",
      raw_file(
          R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},)"
          R"("b":{"dtype":"U8","shape":[],"data_offsets":[5,6]}})",
          "\x01\x02zzz\x09"));
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.get("b").item<uint8_t>(), 9);
  EXPECT_EQ(f.get("e").numel(), 0);
  EXPECT_EQ(f.get("a")[1].item<uint8_t>(), 2);
}

TEST_F(SafetensorsTest, CorruptTruncatedAtEveryByte) {
  const std::string full = safetensors_bytes({{"a", torch::arange(5, torch::kFloat)},
                                              {"b", torch::ones({2, 3}, torch::kHalf)},
                                              {"s", torch::tensor(1.0)}},
                                             {{"note", "x"}});
  ASSERT_GT(full.size(), 100u);
  for (size_t len = 0; len < full.size(); ++len) {
    const std::string p = write("cut.safetensors", full.substr(0, len));
    try {
      SafetensorsFile::open(p);
      ADD_FAILURE() << "a file cut to " << len << " of " << full.size() << " bytes opened";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
}

TEST_F(SafetensorsTest, CorruptRandomGarbageNeverCrashes) {
  const std::string valid = safetensors_bytes(every_dtype(), {{"k", "v"}});
  for (uint32_t seed = 0; seed < 40; ++seed) {
    std::mt19937 rng(seed);
    std::string bytes;
    if (seed % 2 == 0) {  // pure garbage, with a plausible length prefix half of the time
      bytes.resize(rng() % 600);
      for (auto& c : bytes) c = static_cast<char>(rng());
      if (seed % 4 == 0 && bytes.size() >= 8) bytes.replace(0, 8, le64(rng() % bytes.size()));
    } else {  // a valid file with a few bytes of its header overwritten
      bytes = valid;
      const uint64_t n = 8 + static_cast<uint8_t>(bytes[0]) + 256 * static_cast<uint8_t>(bytes[1]);
      for (int k = 0; k < 3; ++k) bytes[rng() % n] = static_cast<char>(rng());
    }
    const std::string p = write("garbage.safetensors", bytes);
    try {
      auto f = SafetensorsFile::open(p);  // a lucky mutation may stay valid: then every get must work
      for (const auto& t : f.tensors()) f.get(t.name);
    } catch (const Error&) {
      // expected
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed " << seed << ": not an mmref::Error: " << e.what();
    }
  }
}

TEST_F(SafetensorsTest, MissingFileAndKeyAreNamed) {
  const std::string p = path("does/not/exist.safetensors");
  expect_error([&] { SafetensorsFile::open(p); }, {"cannot open", p});
  expect_error([&] { SafetensorsFile::open(dir_); }, {"cannot open", dir_});
  const std::string q = write("k.safetensors", safetensors_bytes({{"alpha", torch::ones({1})}}));
  auto f = SafetensorsFile::open(q);
  expect_error([&] { f.info("beta"); }, {q, "no tensor 'beta'", "alpha"});
  expect_error([&] { f.get("beta"); }, {"'beta'"});
}

}  // namespace
}  // namespace mmref
