// Internal FFmpeg plumbing shared by audio_io.cpp, image_io.cpp and video_io.cpp (not a public API).
//
//   - RAII owners for AVFormatContext, AVCodecContext, AVFrame, AVPacket, SwrContext, SwsContext,
//     AVFilterGraph (unique_ptr with FFmpeg's free functions as deleters)
//   - FFmpeg log capture: FFmpeg prints nothing; the last message at level <= AV_LOG_ERROR of this
//     thread is kept and appended to our error text
//   - InputStream: open + probe + pick the best stream + decoder, with an interrupt callback (a
//     deadline refreshed before every blocking call) and a bound on decode errors, so garbage input
//     ends in mmref::Error instead of a hang
//   - OutputFile: muxer + one encoder, written to "<path>.tmp.<pid>" and renamed into place
//
// Ref: FFmpeg doc/examples/demux_decode.c, mux.c (API usage pattern only).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

namespace mmref::data {
struct MediaInfo;
}

namespace mmref::data::media {

struct FormatInputDeleter {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecCtxDeleter {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwrDeleter {
  void operator()(SwrContext* p) const { swr_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};
struct FilterGraphDeleter {
  void operator()(AVFilterGraph* p) const { avfilter_graph_free(&p); }
};
using FormatInputPtr = std::unique_ptr<AVFormatContext, FormatInputDeleter>;
using CodecCtxPtr = std::unique_ptr<AVCodecContext, CodecCtxDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using FilterGraphPtr = std::unique_ptr<AVFilterGraph, FilterGraphDeleter>;

FramePtr make_frame();
PacketPtr make_packet();
// A frame with FFmpeg-allocated, aligned and padded buffers.
FramePtr alloc_video_frame(AVPixelFormat format, int width, int height);

// Installs the log capture once (idempotent, thread-safe).
void init_ffmpeg();
// av_strerror text plus, when FFmpeg logged something since the last clear, its last error message.
std::string av_error_text(int err);
void clear_last_log();
std::string last_log();

// What a stream of `path` is used for; only changes the wording of errors.
enum class Kind { kAudio, kVideo, kImage, kMedia };

// An opened input with one selected stream and its decoder.
class InputStream {
 public:
  // Throws mmref::Error naming `path` if the file is missing, cannot be opened/probed, has no stream
  // of `type` (AVMEDIA_TYPE_UNKNOWN: the best audio stream if any, else the best video stream), or
  // its codec has no decoder. strict: any decode error is fatal (images), else up to
  // kMaxDecodeErrors corrupt packets are skipped (audio/video keep going past a damaged packet).
  InputStream(const std::string& path, AVMediaType type, Kind kind, bool strict = false, int threads = 1);
  InputStream(const InputStream&) = delete;
  InputStream& operator=(const InputStream&) = delete;

  // Next decoded frame (owned here, valid until the next call) or nullptr at the end of the stream.
  AVFrame* next();
  // Seeks to `seconds` (keyframe at or before). Returns false if the container cannot seek.
  bool seek(double seconds);

  AVFormatContext* fmt() const { return fmt_.get(); }
  AVStream* stream() const { return fmt_->streams[index_]; }
  AVCodecContext* codec() const { return codec_.get(); }
  const std::string& path() const { return path_; }
  int64_t frames_decoded() const { return frames_decoded_; }
  // True if reading stopped on an I/O or demuxer error rather than a clean end of file.
  bool read_error() const { return read_error_ != 0; }
  std::string read_error_text() const;
  // "cannot decode: <why> (truncated or not an audio file)" style error for this input.
  [[noreturn]] void fail(const std::string& what, int err) const;

  static constexpr int kMaxDecodeErrors = 32;

 private:
  static int interrupt_cb(void* opaque);
  void refresh_deadline();

  std::string path_;
  Kind kind_;
  bool strict_;
  FormatInputPtr fmt_;
  CodecCtxPtr codec_;
  FramePtr frame_;
  PacketPtr packet_;
  int index_ = -1;
  bool eof_sent_ = false;
  bool done_ = false;
  int errors_ = 0;
  int read_error_ = 0;
  int64_t frames_decoded_ = 0;
  std::chrono::steady_clock::time_point deadline_;
};

// Muxer + one encoder. Usage: construct, configure codec() (size, rate, format, options), open(),
// then write() frames, finish(). Until finish() succeeds nothing appears at `path`.
class OutputFile {
 public:
  // muxer: FFmpeg short name ("wav", "flac", "mp4", "gif", "yuv4mpegpipe").
  OutputFile(const std::string& path, const char* muxer, const AVCodec* encoder);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  AVCodecContext* codec() const { return codec_.get(); }
  AVStream* stream() const { return stream_; }
  void open(AVDictionary** codec_opts = nullptr, AVDictionary** mux_opts = nullptr);
  void write(const AVFrame* frame);  // nullptr flushes the encoder
  void finish();

 private:
  void drain();
  std::string path_, tmp_;
  struct MuxDeleter {
    void operator()(AVFormatContext* p) const;
  };
  std::unique_ptr<AVFormatContext, MuxDeleter> fmt_;
  CodecCtxPtr codec_;
  PacketPtr packet_;
  AVStream* stream_ = nullptr;
  bool header_written_ = false;
  bool finished_ = false;
};

// Pixel conversion between decoded frames and planar RGB uint8 (3, H, W) buffers, through a cached
// libswscale context (bicubic when scaling, accurate rounding, full chroma interpolation). Honours
// the frame's colour range (full-range JPEG/yuvj input) and matrix (BT.709 vs BT.601).
void frame_to_rgb_planes(SwsPtr& sws, const AVFrame* src, uint8_t* rgb, int width, int height);
// `dst` must have format/width/height set and buffers allocated; the sizes must match.
void rgb_planes_to_frame(SwsPtr& sws, const uint8_t* rgb, AVFrame* dst);

// Container/stream facts for probe_media and load_video's `info`; `main` is the selected stream.
void fill_media_info(const AVFormatContext* fmt, const AVStream* main, MediaInfo* info);

// Lower-case extension of `path` without the dot ("" if none).
std::string extension(const std::string& path);

}  // namespace mmref::data::media
