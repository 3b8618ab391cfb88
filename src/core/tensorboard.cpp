// TensorBoard event-file writer and TFRecord reader; see tensorboard.h.
//
// Protobuf wire format, the subset used here: a field is key = (field_number << 3 | wire_type) as a
// varint, then varint (wire 0), 8 little-endian bytes (wire 1: double), a varint length and bytes
// (wire 2: string, bytes, sub-message) or 4 little-endian bytes (wire 3: float). Proto3 rules: plain
// scalars at their default (Event.step == 0) are omitted, members of a oneof (simple_value, image,
// file_version, summary, ...) are always written, so a scalar of 0.0 is still stored.
#include "core/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/crc32c.h"
#include "core/error.h"
#include "core/fs.h"

namespace mmref {
namespace {

// ---- Protobuf encoding ----------------------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_key(std::string& out, uint32_t field, WireType wire) {
  put_varint(out, (uint64_t{field} << 3) | wire);
}

void put_le(std::string& out, uint64_t v, int nbytes) {
  for (int i = 0; i < nbytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// int32/int64/enum: negative values are sign-extended to 10 bytes, as protobuf does.
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(v));
}

void put_double(std::string& out, uint32_t field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// Field numbers from tensorboard/compat/proto/*.proto.
namespace event {
constexpr uint32_t kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5;
}
namespace summary {
constexpr uint32_t kValue = 1;
}
namespace value {
constexpr uint32_t kTag = 1, kSimpleValue = 2, kImage = 4, kAudio = 6, kTensor = 8, kMetadata = 9;
}
namespace image {
constexpr uint32_t kHeight = 1, kWidth = 2, kColorspace = 3, kEncoded = 4;
}
namespace audio {
constexpr uint32_t kSampleRate = 1, kNumChannels = 2, kLengthFrames = 3, kEncoded = 4,
                   kContentType = 5;
}
namespace metadata {
constexpr uint32_t kPluginData = 1;
}
namespace plugin_data {
constexpr uint32_t kPluginName = 1;  // content = 2: empty for the text plugin (TextPluginData{})
}
namespace tensor {
constexpr uint32_t kDtype = 1, kShape = 2, kStringVal = 8;
constexpr int64_t kDtString = 7;
}
namespace shape {
constexpr uint32_t kDim = 2, kDimSize = 1;
}

double now_unix_seconds() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return static_cast<double>(us) / 1e6;
}

std::string make_event(double wall_time, int64_t step, uint32_t what_field, const std::string& what) {
  std::string ev;
  put_double(ev, event::kWallTime, wall_time);
  if (step != 0) put_int(ev, event::kStep, step);
  put_bytes(ev, what_field, what);
  return ev;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf);
  for (char& c : h) {
    if (c == '/') c = '_';
  }
  return h;
}

uint64_t read_le(const char* p, int nbytes) {
  uint64_t v = 0;
  for (int i = 0; i < nbytes; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

}  // namespace

// ---- Writer ---------------------------------------------------------------------------------------

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir) {
  fs::make_dirs(log_dir);
  const long long secs = static_cast<long long>(now_unix_seconds());
  const std::string base = fmt::format("{}/events.out.tfevents.{}.{}.{}.mmref", log_dir, secs,
                                       hostname(), static_cast<long>(::getpid()));
  // O_EXCL: two writers created in the same second by one process (tests, eval + train) must not
  // share a file.
  int fd = -1;
  for (int n = 0; fd < 0 && n < 1000; ++n) {
    path_ = n == 0 ? base : fmt::format("{}.{}", base, n);
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    MMREF_FAIL("cannot create TensorBoard event file '{}': {} (check '{}' is writable)", path_,
               std::strerror(errno), log_dir);
  }
  file_ = ::fdopen(fd, "wb");
  if (file_ == nullptr) {
    const int err = errno;
    ::close(fd);
    MMREF_FAIL("cannot open TensorBoard event file '{}': {}", path_, std::strerror(err));
  }
  try {
    std::lock_guard<std::mutex> lock(mu_);
    write_record_locked(
        make_event(now_unix_seconds(), /*step=*/0, event::kFileVersion, "brain.Event:2"));
  } catch (...) {
    std::fclose(file_);  // the destructor does not run for a constructor that throws
    file_ = nullptr;
    throw;
  }
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ == nullptr) return;
  try {
    flush();
  } catch (const std::exception& e) {
    spdlog::warn("{}", e.what());
  }
  std::fclose(file_);
}

void TensorBoardWriter::write_record_locked(const std::string& ev) {
  std::string header;
  put_le(header, ev.size(), 8);
  put_le(header, masked_crc32c(header.data(), 8), 4);
  std::string footer;
  put_le(footer, masked_crc32c(ev.data(), ev.size()), 4);
  const bool ok = std::fwrite(header.data(), 1, header.size(), file_) == header.size() &&
                  std::fwrite(ev.data(), 1, ev.size(), file_) == ev.size() &&
                  std::fwrite(footer.data(), 1, footer.size(), file_) == footer.size() &&
                  // Hand each record to the OS: TensorBoard reads the file live, and a crash loses
                  // no record a call has returned from. fsync is left to flush().
                  std::fflush(file_) == 0;
  if (!ok) MMREF_FAIL("writing TensorBoard event file '{}' failed: {} (disk full?)", path_,
                      std::strerror(errno));
}

void TensorBoardWriter::write_summary_value(const std::string& val, int64_t step, double wall_time) {
  std::string sum;
  put_bytes(sum, summary::kValue, val);
  const std::string ev =
      make_event(wall_time < 0 ? now_unix_seconds() : wall_time, step, event::kSummary, sum);
  std::lock_guard<std::mutex> lock(mu_);
  write_record_locked(ev);
}

void TensorBoardWriter::add_scalar(const std::string& tag, double v, int64_t step, double wall_time) {
  std::string val;
  put_bytes(val, value::kTag, tag);
  put_float(val, value::kSimpleValue, static_cast<float>(v));
  write_summary_value(val, step, wall_time);
}

void TensorBoardWriter::add_text(const std::string& tag, const std::string& text, int64_t step) {
  std::string dim;
  put_int(dim, shape::kDimSize, 1);
  std::string shp;
  put_bytes(shp, shape::kDim, dim);
  std::string ten;
  put_int(ten, tensor::kDtype, tensor::kDtString);
  put_bytes(ten, tensor::kShape, shp);
  put_bytes(ten, tensor::kStringVal, text);
  std::string plugin;
  put_bytes(plugin, plugin_data::kPluginName, "text");
  std::string meta;
  put_bytes(meta, metadata::kPluginData, plugin);

  std::string val;
  put_bytes(val, value::kTag, tag);
  put_bytes(val, value::kTensor, ten);
  put_bytes(val, value::kMetadata, meta);
  write_summary_value(val, step, /*wall_time=*/-1);
}

void TensorBoardWriter::add_image_png(const std::string& tag, const std::string& png_bytes,
                                      int height, int width, int channels, int64_t step) {
  if (height <= 0 || width <= 0 || channels < 1 || channels > 4) {
    MMREF_FAIL("TensorBoard image '{}': bad size {}x{}x{} (need height, width > 0, channels 1..4)",
               tag, height, width, channels);
  }
  std::string img;
  put_int(img, image::kHeight, height);
  put_int(img, image::kWidth, width);
  put_int(img, image::kColorspace, channels);
  put_bytes(img, image::kEncoded, png_bytes);
  std::string val;
  put_bytes(val, value::kTag, tag);
  put_bytes(val, value::kImage, img);
  write_summary_value(val, step, /*wall_time=*/-1);
}

void TensorBoardWriter::add_audio_wav(const std::string& tag, const std::string& wav_bytes,
                                      double sample_rate, int64_t num_frames, int num_channels,
                                      int64_t step) {
  if (!(sample_rate > 0) || num_frames < 0 || num_channels < 1) {
    MMREF_FAIL("TensorBoard audio '{}': bad sample_rate {}, frames {} or channels {}", tag,
               sample_rate, num_frames, num_channels);
  }
  std::string aud;
  put_float(aud, audio::kSampleRate, static_cast<float>(sample_rate));
  put_int(aud, audio::kNumChannels, num_channels);
  if (num_frames != 0) put_int(aud, audio::kLengthFrames, num_frames);
  put_bytes(aud, audio::kEncoded, wav_bytes);
  put_bytes(aud, audio::kContentType, "audio/wav");
  std::string val;
  put_bytes(val, value::kTag, tag);
  put_bytes(val, value::kAudio, aud);
  write_summary_value(val, step, /*wall_time=*/-1);
}

void TensorBoardWriter::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    MMREF_FAIL("flushing TensorBoard event file '{}' failed: {}", path_, std::strerror(errno));
  }
}

// ---- Reader ---------------------------------------------------------------------------------------

std::vector<std::string> read_tfrecords(const std::string& path) {
  const std::string buf = fs::read_file(path);
  std::vector<std::string> records;
  size_t off = 0;
  while (off < buf.size()) {
    const size_t index = records.size();
    const size_t left = buf.size() - off;
    if (left < 12) {
      MMREF_FAIL("'{}': record {} at byte {} is truncated: {} of 12 header bytes (the writer "
                 "probably stopped mid-record)", path, index, off, left);
    }
    const char* p = buf.data() + off;
    const uint64_t len = read_le(p, 8);
    if (static_cast<uint32_t>(read_le(p + 8, 4)) != masked_crc32c(p, 8)) {
      MMREF_FAIL("'{}': record {} at byte {}: length CRC mismatch (corrupt file)", path, index, off);
    }
    if (len > left - 12 || left - 12 - len < 4) {
      MMREF_FAIL("'{}': record {} at byte {} is truncated: {} data+CRC bytes expected, {} left (the "
                 "writer probably stopped mid-record)", path, index, off, len + 4, left - 12);
    }
    const char* data = p + 12;
    if (static_cast<uint32_t>(read_le(data + len, 4)) != masked_crc32c(data, len)) {
      MMREF_FAIL("'{}': record {} at byte {}: data CRC mismatch (corrupt file)", path, index, off);
    }
    records.emplace_back(data, len);
    off += 12 + len + 4;
  }
  return records;
}

}  // namespace mmref
