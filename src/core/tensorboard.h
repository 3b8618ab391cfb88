// TensorBoard event-file writer: scalars, text, images and audio in the TFRecord format TensorBoard
// reads, with the protobufs encoded by hand (no protobuf or TensorFlow dependency).
//
//   mmref::TensorBoardWriter tb(run_dir + "/tb");
//   tb.add_scalar("train/loss", loss, step);
//   # then: tensorboard --logdir <run_dir>/tb
//
// File layout (TFRecord): per record  uint64 length (LE) | uint32 masked_crc32c(length bytes) |
// length bytes of a serialized tensorflow.Event | uint32 masked_crc32c(data). The first record is
// Event{wall_time, file_version: "brain.Event:2"}.
// Ref: tensorboard/compat/proto/{event,summary,tensor,tensor_shape}.proto (field numbers checked
// against them); tensorflow/core/lib/io/record_writer.cc (framing); torch/utils/tensorboard/summary.py
// (the text-plugin tensor layout).
// Tests: tests/core/tensorboard_test.cpp (suites Crc32c*, TensorBoard*); tests/core/read_tfevents.py
// decodes a file with the Python standard library only.
#pragma once
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace mmref {

// Appends events to one new file in `log_dir`. All methods are thread-safe (one mutex; records are
// never interleaved). Write errors throw mmref::Error naming the file; the destructor never throws.
class TensorBoardWriter {
 public:
  // Creates `log_dir` (and parents) and the file "events.out.tfevents.<unix secs>.<hostname>.<pid>.mmref"
  // (".<n>" is appended in the unlikely case that name exists already), then writes the
  // file_version event and flushes it so TensorBoard sees the run at once.
  explicit TensorBoardWriter(const std::string& log_dir);
  ~TensorBoardWriter();  // flushes; errors are logged, not thrown

  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // Summary.Value.simple_value (float32, as TensorBoard stores it). wall_time < 0 means now (unix
  // seconds with microseconds).
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = -1);

  // Text plugin: Value.tensor = TensorProto{DT_STRING, shape [1], string_val [text]} with
  // metadata.plugin_data.plugin_name "text" (markdown is rendered). The tag is used as given.
  void add_text(const std::string& tag, const std::string& text, int64_t step);

  // Summary.Value.image with an encoded PNG the caller supplies; colorspace = channels (1 gray,
  // 2 gray+alpha, 3 RGB, 4 RGBA). Throws mmref::Error on non-positive sizes or channels outside 1..4.
  void add_image_png(const std::string& tag, const std::string& png_bytes, int height, int width,
                     int channels, int64_t step);

  // Summary.Value.audio with a WAV file the caller supplies, content_type "audio/wav".
  void add_audio_wav(const std::string& tag, const std::string& wav_bytes, double sample_rate,
                     int64_t num_frames, int num_channels, int64_t step);

  // fflush + fsync: after it returns the records are on disk.
  void flush();

  const std::string& path() const { return path_; }

 private:
  // Frames one serialized Event as a TFRecord and appends it (mutex held by the caller).
  void write_record_locked(const std::string& event);
  void write_summary_value(const std::string& value, int64_t step, double wall_time);

  std::string path_;
  std::FILE* file_ = nullptr;
  std::mutex mu_;
};

// Reads every record of a TFRecord file and returns the payloads (serialized Events), verifying the
// masked CRCs of both the length and the data. Throws mmref::Error naming the file, the record index
// and its byte offset on a bad CRC or a truncated record (a crash mid-write leaves a truncated last
// record; it is reported, never read past the end).
std::vector<std::string> read_tfrecords(const std::string& path);

}  // namespace mmref
