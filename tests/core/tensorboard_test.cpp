// CRC-32C and the TensorBoard event writer: known CRC vectors, the exact bytes of one scalar record
// (derived by hand below), a read-back of every summary kind through a small protobuf scanner,
// corruption and truncation reports, concurrent writers, and a cross-check with the stdlib-only
// Python reader tests/core/read_tfevents.py (skipped when python3 is missing).
//
//   build/<dir>/tests/mmref_core_tests --gtest_filter='Crc32c*:TensorBoard*'
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/tensorboard.h"

namespace {

namespace stdfs = std::filesystem;

// ---- CRC-32C --------------------------------------------------------------------------------------

// Bit-at-a-time CRC-32C: the definition, independent of the slicing-by-8 tables under test.
uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char c : s) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  return ~crc;
}

uint32_t crc(const std::string& s) { return mmref::crc32c(s.data(), s.size()); }
uint32_t masked(const std::string& s) { return mmref::masked_crc32c(s.data(), s.size()); }

std::string ascending(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// Check values: "123456789" is the standard CRC catalogue check; the 32-byte vectors are RFC 3720
// appendix B.4 (iSCSI); "a" is the value in most CRC-32C test suites.
TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc("123456789"), 0xE3069283u);
  EXPECT_EQ(crc(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(crc(ascending(32)), 0x46DD794Eu);
  EXPECT_EQ(crc("a"), 0xC1D04330u);
  EXPECT_EQ(crc(""), 0u);
}

// Masked values computed independently with a bit-at-a-time CRC-32C in Python 3 (stdlib only):
//   mask(c) = (((c >> 15) | (c << 17)) & 0xffffffff) + 0xa282ead8  (mod 2^32)
//   input          crc32c       masked
//   ""             0x00000000   0xa282ead8   (mask of 0 is the delta itself)
//   "a"            0xc1d04330   0x28e46e78
//   "123456789"    0xe3069283   0xc78ab0e5
//   32 x 0x00      0x8a9136aa   0x0fd7fffa
//   32 x 0xff      0x62a8ab43   0xf909b029
//   0, 1, ..., 31  0x46dd794e   0x951f7892
TEST(Crc32c, MaskedValues) {
  EXPECT_EQ(masked(""), 0xa282ead8u);
  EXPECT_EQ(masked("a"), 0x28e46e78u);
  EXPECT_EQ(masked("123456789"), 0xc78ab0e5u);
  EXPECT_EQ(masked(std::string(32, '\0')), 0x0fd7fffau);
  EXPECT_EQ(masked(std::string(32, '\xff')), 0xf909b029u);
  EXPECT_EQ(masked(ascending(32)), 0x951f7892u);
  EXPECT_EQ(mmref::mask_crc32c(0xe3069283u), 0xc78ab0e5u);
}

// Every length 0..300 at every start alignment 0..7 (covers the 8-byte loop and its byte tail), plus
// chaining through `init`.
TEST(Crc32c, MatchesBitwiseReferenceOnRandomData) {
  std::mt19937 rng(42);
  std::string buf(310, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t off = 0; off < 8; ++off) {
    for (size_t n = 0; n + off <= 300; ++n) {
      const std::string s = buf.substr(off, n);
      ASSERT_EQ(crc(s), crc32c_bitwise(s)) << "offset " << off << " length " << n;
    }
  }
  for (size_t split = 0; split <= 100; split += 7) {
    const std::string a = buf.substr(0, split), b = buf.substr(split, 100 - split);
    EXPECT_EQ(mmref::crc32c(b.data(), b.size(), crc(a)), crc(buf.substr(0, 100))) << split;
  }
}

// ---- A minimal protobuf reader for the checks -----------------------------------------------------

struct Field {
  uint32_t number = 0;
  uint32_t wire = 0;
  uint64_t varint = 0;  // wire 0
  std::string bytes;    // wire 1, 2, 5: the raw payload (8 / length / 4 bytes)
};

uint64_t read_varint(const std::string& s, size_t& pos) {
  uint64_t v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= s.size()) throw std::runtime_error("varint runs past the end");
    const auto b = static_cast<uint8_t>(s[pos++]);
    v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80u) == 0) return v;
  }
  throw std::runtime_error("varint longer than 10 bytes");
}

// Splits a message into its top-level fields; throws on malformed input.
std::vector<Field> scan(const std::string& msg) {
  std::vector<Field> fields;
  size_t pos = 0;
  while (pos < msg.size()) {
    Field f;
    const uint64_t key = read_varint(msg, pos);
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<uint32_t>(key & 7);
    size_t n = 0;
    switch (f.wire) {
      case 0: f.varint = read_varint(msg, pos); break;
      case 1: n = 8; break;
      case 2: n = read_varint(msg, pos); break;
      case 5: n = 4; break;
      default: throw std::runtime_error("unexpected wire type " + std::to_string(f.wire));
    }
    if (n > msg.size() - pos) throw std::runtime_error("field runs past the end");
    f.bytes = msg.substr(pos, n);
    pos += n;
    fields.push_back(std::move(f));
  }
  return fields;
}

// The single field `number` of `msg` (fails the test if absent or repeated).
Field get(const std::string& msg, uint32_t number) {
  std::vector<Field> hits;
  for (auto& f : scan(msg)) {
    if (f.number == number) hits.push_back(f);
  }
  if (hits.size() != 1) {
    ADD_FAILURE() << "field " << number << " found " << hits.size() << " times";
    return {};
  }
  return hits[0];
}

bool has(const std::string& msg, uint32_t number) {
  for (auto& f : scan(msg)) {
    if (f.number == number) return true;
  }
  return false;
}

double as_double(const Field& f) {
  EXPECT_EQ(f.wire, 1u);
  double d = 0;
  if (f.bytes.size() == 8) std::memcpy(&d, f.bytes.data(), 8);  // little-endian host
  return d;
}

float as_float(const Field& f) {
  EXPECT_EQ(f.wire, 5u);
  float x = 0;
  if (f.bytes.size() == 4) std::memcpy(&x, f.bytes.data(), 4);
  return x;
}

// One decoded Event with its single Summary.Value (field numbers from the .proto files, see
// src/core/tensorboard.cpp).
struct DecodedEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string value;  // serialized Summary.Value
  std::string tag;
};

DecodedEvent decode_summary_event(const std::string& ev) {
  DecodedEvent d;
  d.wall_time = as_double(get(ev, 1));
  d.step = has(ev, 2) ? static_cast<int64_t>(get(ev, 2).varint) : 0;
  const std::string summary = get(ev, 5).bytes;
  d.value = get(summary, 1).bytes;
  d.tag = get(d.value, 1).bytes;
  return d;
}

// ---- Writer ---------------------------------------------------------------------------------------

class TensorBoardTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = mmref::fs::make_temp_dir("mmref_tb_"); }
  void TearDown() override {
    std::error_code ec;
    stdfs::remove_all(dir_, ec);
  }
  static void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  }
  std::string dir_;
};

// One scalar Event, Event{wall_time: 1.5, step: 3, summary {value {tag: "loss", simple_value: 0.25}}},
// encoded by hand:
//   Summary.Value (11 bytes)
//     0a 04 6c 6f 73 73         field 1 (tag), wire 2, length 4, "loss"
//     15 00 00 80 3e            field 2 (simple_value), wire 5, float 0.25 = 0x3e800000 LE
//   Summary (13 bytes)
//     0a 0b <Value>             field 1 (value), wire 2, length 11
//   Event (26 bytes)
//     09 00 00 00 00 00 00 f8 3f  field 1 (wall_time), wire 1, double 1.5 = 0x3ff8000000000000 LE
//     10 03                       field 2 (step), wire 0, varint 3
//     2a 0d <Summary>             field 5 (summary), wire 2, length 13
//   TFRecord framing
//     1a 00 00 00 00 00 00 00   length 26, uint64 LE
//     12 9b d8 2d               masked_crc32c(length bytes) = 0x2dd89b12 LE
//     <Event>
//     d0 54 b2 55               masked_crc32c(Event bytes) = 0x55b254d0 LE
// The two masked CRCs come from the Python bit-at-a-time CRC-32C of the MaskedValues comment.
TEST_F(TensorBoardTest, ScalarRecordBytesMatchHandEncoding) {
  const std::string expected_hex =
      "1a00000000000000"
      "129bd82d"
      "09000000000000f83f"
      "1003"
      "2a0d"
      "0a0b"
      "0a046c6f7373"
      "150000803e"
      "d054b255";
  std::string expected;
  for (size_t i = 0; i < expected_hex.size(); i += 2) {
    expected.push_back(static_cast<char>(std::stoi(expected_hex.substr(i, 2), nullptr, 16)));
  }
  std::string path;
  {
    mmref::TensorBoardWriter tb(dir_);
    tb.add_scalar("loss", 0.25, /*step=*/3, /*wall_time=*/1.5);
    path = tb.path();
  }
  const std::string file = mmref::fs::read_file(path);
  const auto records = mmref::read_tfrecords(path);
  ASSERT_EQ(records.size(), 2u);
  const size_t first = 8 + 4 + records[0].size() + 4;  // the file_version record
  ASSERT_EQ(file.size(), first + expected.size());
  EXPECT_EQ(file.substr(first), expected);
}

TEST_F(TensorBoardTest, FileNameAndFileVersionRecord) {
  mmref::TensorBoardWriter tb(dir_ + "/nested/tb");
  const std::string name = stdfs::path(tb.path()).filename().string();
  // events.out.tfevents.<10-digit unix secs>.<hostname>.<pid>.mmref
  const std::string prefix = "events.out.tfevents.";
  const std::string suffix = "." + std::to_string(::getpid()) + ".mmref";
  ASSERT_GT(name.size(), prefix.size() + 11 + suffix.size()) << name;
  EXPECT_EQ(name.substr(0, prefix.size()), prefix) << name;
  EXPECT_EQ(name.substr(name.size() - suffix.size()), suffix) << name;
  const std::string secs = name.substr(prefix.size(), 10);
  EXPECT_EQ(secs.find_first_not_of("0123456789"), std::string::npos) << name;
  EXPECT_EQ(name[prefix.size() + 10], '.') << name;
  // A second writer in the same folder within the same second gets its own file.
  mmref::TensorBoardWriter tb2(dir_ + "/nested/tb");
  EXPECT_NE(tb.path(), tb2.path());

  const auto records = mmref::read_tfrecords(tb.path());
  ASSERT_EQ(records.size(), 1u);
  const double wall = as_double(get(records[0], 1));
  EXPECT_NEAR(wall, static_cast<double>(std::time(nullptr)), 60.0);
  EXPECT_FALSE(has(records[0], 2));  // step 0 is omitted (proto3)
  EXPECT_EQ(get(records[0], 3).bytes, "brain.Event:2");
}

TEST_F(TensorBoardTest, AllSummaryKindsReadBack) {
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + std::string(100, 'p');
  const std::string wav = "RIFF" + std::string(200, 'w');
  std::string path;
  {
    mmref::TensorBoardWriter tb(dir_);
    tb.add_scalar("train/loss", 0.5, 1);
    tb.add_scalar("train/loss", 0.0, 2);  // 0.0 must still be written (oneof member)
    tb.add_scalar("train/loss", -1.25, -7);
    tb.add_text("notes", "**hello** world", 10);
    tb.add_image_png("samples/0", png, /*height=*/16, /*width=*/24, /*channels=*/3, 20);
    tb.add_audio_wav("audio/0", wav, /*sample_rate=*/16000, /*num_frames=*/48, /*num_channels=*/1,
                     30);
    path = tb.path();
  }
  const auto records = mmref::read_tfrecords(path);
  ASSERT_EQ(records.size(), 7u);

  // Scalars.
  const float expected[] = {0.5f, 0.0f, -1.25f};
  const int64_t steps[] = {1, 2, -7};
  for (int i = 0; i < 3; ++i) {
    const DecodedEvent e = decode_summary_event(records[1 + i]);
    EXPECT_EQ(e.tag, "train/loss");
    EXPECT_EQ(e.step, steps[i]);  // -7 arrives as a 10-byte two's-complement varint
    EXPECT_EQ(as_float(get(e.value, 2)), expected[i]);
    EXPECT_NEAR(e.wall_time, static_cast<double>(std::time(nullptr)), 60.0);
  }

  // Text: Value.tensor{dtype DT_STRING (7), shape {dim {size 1}}, string_val} + plugin "text".
  {
    const DecodedEvent e = decode_summary_event(records[4]);
    EXPECT_EQ(e.tag, "notes");
    EXPECT_EQ(e.step, 10);
    const std::string tensor = get(e.value, 8).bytes;
    EXPECT_EQ(get(tensor, 1).varint, 7u);
    const std::string dim = get(get(tensor, 2).bytes, 2).bytes;
    EXPECT_EQ(get(dim, 1).varint, 1u);
    EXPECT_EQ(get(tensor, 8).bytes, "**hello** world");
    const std::string plugin = get(get(e.value, 9).bytes, 1).bytes;
    EXPECT_EQ(get(plugin, 1).bytes, "text");
  }

  // Image: Value.image{height, width, colorspace, encoded_image_string}.
  {
    const DecodedEvent e = decode_summary_event(records[5]);
    EXPECT_EQ(e.tag, "samples/0");
    EXPECT_EQ(e.step, 20);
    const std::string img = get(e.value, 4).bytes;
    EXPECT_EQ(get(img, 1).varint, 16u);
    EXPECT_EQ(get(img, 2).varint, 24u);
    EXPECT_EQ(get(img, 3).varint, 3u);
    EXPECT_EQ(get(img, 4).bytes, png);
  }

  // Audio: Value.audio{sample_rate, num_channels, length_frames, encoded_audio_string, content_type}.
  {
    const DecodedEvent e = decode_summary_event(records[6]);
    EXPECT_EQ(e.tag, "audio/0");
    EXPECT_EQ(e.step, 30);
    const std::string aud = get(e.value, 6).bytes;
    EXPECT_EQ(as_float(get(aud, 1)), 16000.0f);
    EXPECT_EQ(get(aud, 2).varint, 1u);
    EXPECT_EQ(get(aud, 3).varint, 48u);
    EXPECT_EQ(get(aud, 4).bytes, wav);
    EXPECT_EQ(get(aud, 5).bytes, "audio/wav");
  }
}

TEST_F(TensorBoardTest, RejectsBadImageAndAudioArguments) {
  mmref::TensorBoardWriter tb(dir_);
  EXPECT_THROW(tb.add_image_png("img", "x", 0, 4, 3, 0), mmref::Error);
  EXPECT_THROW(tb.add_image_png("img", "x", 4, 4, 5, 0), mmref::Error);
  EXPECT_THROW(tb.add_audio_wav("wav", "x", 0.0, 4, 1, 0), mmref::Error);
  EXPECT_EQ(mmref::read_tfrecords(tb.path()).size(), 1u);  // nothing half-written
}

// Expects read_tfrecords(path) to throw an mmref::Error whose message contains every `parts`.
void expect_read_error(const std::string& path, const std::vector<std::string>& parts) {
  try {
    mmref::read_tfrecords(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const mmref::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << " lacks " << p;
  }
}

TEST_F(TensorBoardTest, CorruptByteIsReportedWithRecordIndex) {
  std::string path;
  {
    mmref::TensorBoardWriter tb(dir_);
    for (int i = 0; i < 3; ++i) tb.add_scalar("loss", 0.1 * i, i);
    path = tb.path();
  }
  const std::string good = mmref::fs::read_file(path);
  const auto records = mmref::read_tfrecords(path);
  ASSERT_EQ(records.size(), 4u);
  // Byte offset of record 2: records 0 and 1 before it, each 16 bytes of framing.
  const size_t rec2 = records[0].size() + 16 + records[1].size() + 16;

  std::string bad = good;
  bad[rec2 + 12 + 5] ^= 0x01;  // a bit in record 2's Event bytes
  write_bytes(path, bad);
  expect_read_error(path, {path, "record 2", "data CRC"});

  bad = good;
  bad[rec2] ^= 0x40;  // record 2's length field
  write_bytes(path, bad);
  expect_read_error(path, {path, "record 2", "length CRC"});

  bad = good;
  bad[rec2 + 12 + records[2].size()] ^= 0x01;  // record 2's stored data CRC
  write_bytes(path, bad);
  expect_read_error(path, {"record 2", "data CRC"});
}

TEST_F(TensorBoardTest, TruncatedLastRecordIsReported) {
  std::string path;
  {
    mmref::TensorBoardWriter tb(dir_);
    tb.add_scalar("loss", 1.0, 1);
    tb.add_text("note", "a text long enough to be cut in the middle", 2);
    path = tb.path();
  }
  const std::string good = mmref::fs::read_file(path);
  const auto records = mmref::read_tfrecords(path);
  ASSERT_EQ(records.size(), 3u);
  const size_t rec2 = records[0].size() + 16 + records[1].size() + 16;

  write_bytes(path, good.substr(0, good.size() - 10));  // inside the data
  expect_read_error(path, {path, "record 2", "truncated"});
  write_bytes(path, good.substr(0, good.size() - 2));  // inside the trailing CRC
  expect_read_error(path, {"record 2", "truncated"});
  write_bytes(path, good.substr(0, rec2 + 5));  // inside the header
  expect_read_error(path, {"record 2", "truncated"});
  write_bytes(path, good.substr(0, rec2));  // a clean cut between records is a valid file
  EXPECT_EQ(mmref::read_tfrecords(path).size(), 2u);
}

TEST_F(TensorBoardTest, ConcurrentWritersNeverInterleave) {
  constexpr int kThreads = 4, kPerThread = 250;
  std::string path;
  {
    mmref::TensorBoardWriter tb(dir_);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&tb, t] {
        for (int i = 0; i < kPerThread; ++i) {
          tb.add_scalar("thread/" + std::to_string(t), i, i);
          if (i % 50 == 0) tb.flush();
        }
      });
    }
    for (auto& th : threads) th.join();
    path = tb.path();
  }
  const auto records = mmref::read_tfrecords(path);  // every CRC checked
  ASSERT_EQ(records.size(), size_t{1 + kThreads * kPerThread});
  std::vector<int> per_thread(kThreads, 0);
  for (size_t i = 1; i < records.size(); ++i) {
    const DecodedEvent e = decode_summary_event(records[i]);
    const int t = std::stoi(e.tag.substr(std::string("thread/").size()));
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(e.step, per_thread[t]);  // each thread's records stay in its order
    EXPECT_EQ(as_float(get(e.value, 2)), static_cast<float>(per_thread[t]));
    ++per_thread[t];
  }
}

TEST_F(TensorBoardTest, MissingFileIsReported) {
  expect_read_error(dir_ + "/nope.tfevents", {"nope.tfevents"});
}

// Cross-check with an independent decoder: tests/core/read_tfevents.py (Python stdlib only) verifies
// the CRCs with its own bit-at-a-time CRC-32C and prints one line per event.
TEST_F(TensorBoardTest, PythonStdlibReaderAgrees) {
  if (std::system("python3 -c 'import json, struct' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3 not found";
  }
  std::string path;
  {
    mmref::TensorBoardWriter tb(dir_);
    tb.add_scalar("loss", 0.25, 3, 1.5);
    tb.add_text("notes", "hi", 4);
    tb.add_image_png("img", "PNGDATA", 2, 3, 4, 5);
    tb.add_audio_wav("wav", "WAVDATA", 8000, 7, 2, 6);
    path = tb.path();
  }
  const std::string out = dir_ + "/decoded.txt";
  const std::string cmd = std::string("python3 '") + MMREF_SOURCE_DIR +
                          "/tests/core/read_tfevents.py' '" + path + "' > '" + out + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::string text = mmref::fs::read_file(out);
  // Wall times are real clock readings except the one given; check that one, then drop them all.
  EXPECT_NE(text.find("step=3 wall_time=1.5 tag=loss"), std::string::npos) << text;
  for (size_t w; (w = text.find(" wall_time=")) != std::string::npos;) {
    text.erase(w, text.find_first_of(" \n", w + 1) - w);
  }
  EXPECT_EQ(text,
            "step=0 file_version=brain.Event:2\n"
            "step=3 tag=loss scalar=0.25\n"
            "step=4 tag=notes text=hi plugin=text\n"
            "step=5 tag=img image=2x3x4 bytes=7\n"
            "step=6 tag=wav audio=8000.0Hz channels=2 frames=7 bytes=7 type=audio/wav\n");

  // And it rejects what read_tfrecords rejects.
  std::string bad = mmref::fs::read_file(path);
  bad[bad.size() - 1] ^= 0x01;
  write_bytes(path, bad);
  EXPECT_NE(std::system((cmd + " 2>/dev/null").c_str()), 0);
}

}  // namespace
