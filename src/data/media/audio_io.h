// Audio decode/encode through FFmpeg (libavformat + libavcodec + libswresample).
//
//   probe_media        container/stream facts without decoding (audio and video)
//   load_audio         whole file -> (C, T) float32 in [-1, 1], optional resample / mono downmix / range
//   AudioStreamReader  the same decode in chunks; memory is bounded by the chunk, not the file
//   save_audio         (C, T) float -> .wav (pcm_s16le) or .flac (s16), chosen by extension
//
// Decodes anything the linked FFmpeg can: wav, flac, mp3, ogg/vorbis, opus, m4a/aac, audio tracks of
// video files. Every failure (missing, truncated, garbage, unsupported codec, no audio stream, zero
// samples) throws mmref::Error naming the file; FFmpeg's own logging is silenced and its last message
// is used as the reason. Decoding has an iteration bound and an interrupt callback, so bad input never
// hangs. All FFmpeg objects are held by RAII wrappers (media_common.h).
//
// Ref: FFmpeg doc/examples/demux_decode.c, transcode_aac.c (API usage pattern only).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

namespace mmref::data {

struct AudioOptions {
  int sample_rate = 0;     // 0 = native; else resampled with libswresample
  int channels = 0;        // 0 = native; 1 = mono (mean of the channels); N > 1 from a mono file = copies
  double start_s = 0;      // seek here (sample-exact: seek with 0.25 s pre-roll, drop samples before it)
  double duration_s = -1;  // -1 = to the end
};

struct MediaInfo {
  std::string format;  // container short name, e.g. "wav", "mov,mp4,m4a,3gp,3g2,mj2", "gif"
  std::string codec;   // codec of the best audio stream, else of the best video stream
  int sample_rate = 0, channels = 0;
  double duration_s = 0;  // container duration, else the stream's; 0 if unknown
  int width = 0, height = 0;
  std::string pixel_format;  // e.g. "rgb24", "gray", "rgba", "yuv420p" ("" if unknown)
  bool gray = false, has_alpha = false;  // from the pixel format: grayscale (+alpha), an alpha channel
  double fps = 0;          // average frame rate of the video stream
  int64_t num_frames = 0;  // video frames from the header, else estimated from duration * fps
  bool has_audio = false, has_video = false;
};

// Opens `path` and reads its stream headers (no full decode). Throws mmref::Error naming the file.
MediaInfo probe_media(const std::string& path);

// Decodes the best audio stream of `path` into a (C, T) float32 tensor in [-1, 1].
// If sample_rate_out is given it receives the output sample rate.
at::Tensor load_audio(const std::string& path, const AudioOptions& opt = {}, int* sample_rate_out = nullptr);

// Streaming decode: read() returns up to max_frames samples per channel at a time.
class AudioStreamReader {
 public:
  AudioStreamReader(const std::string& path, const AudioOptions& opt = {});
  ~AudioStreamReader();
  AudioStreamReader(const AudioStreamReader&) = delete;
  AudioStreamReader& operator=(const AudioStreamReader&) = delete;

  int sample_rate() const;  // output rate (after resampling)
  int channels() const;     // output channels (after mixing)
  // Fills `chunk` with a (C, n) float32 tensor, 1 <= n <= max_frames; returns false (chunk undefined)
  // at the end of the stream. Concatenating all chunks equals load_audio(path, opt).
  bool read(at::Tensor& chunk, int64_t max_frames);

  struct Impl;  // opaque; declared public only so load_audio can share the same decoder

 private:
  std::unique_ptr<Impl> impl_;
};

// Writes (C, T) or (T) float audio in [-1, 1] (values outside are clipped) to `path`; the format is
// chosen by extension: .wav (pcm_s16le) or .flac (16-bit). Written atomically (temp file + rename).
void save_audio(const std::string& path, const at::Tensor& wav, int sample_rate);

}  // namespace mmref::data
