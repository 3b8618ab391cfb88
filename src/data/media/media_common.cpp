// FFmpeg plumbing shared by the media readers and writers: see media_common.h.
#include "data/media/media_common.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>

extern "C" {
#include <libavutil/pixdesc.h>
}

#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"

namespace mmref::data::media {
namespace {

// FFmpeg logging is process-global; the last error-level line is kept per thread so that a decoder
// failing on one DataLoader worker does not leak its reason into another's error message.
thread_local std::string t_last_log;

void log_callback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > AV_LOG_ERROR) return;
  char line[1024];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &print_prefix);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  // "[mp3 @ 0x55d0c2a0] Failed to read frame size" -> "mp3: Failed to read frame size"
  if (s.size() > 1 && s[0] == '[') {
    const size_t at = s.find(" @ 0x"), close = s.find("] ");
    if (at != std::string::npos && close != std::string::npos && at < close)
      s = s.substr(1, at - 1) + ": " + s.substr(close + 2);
  }
  if (!s.empty()) t_last_log = s;
}

// 120 s without progress on a single blocking call: a local file that takes this long is stuck
// (e.g. a FIFO or a dead network mount), not slow.
constexpr std::chrono::seconds kIoDeadline{120};

const char* kind_noun(Kind k) {
  switch (k) {
    case Kind::kAudio:
      return "an audio file";
    case Kind::kVideo:
      return "a video file";
    case Kind::kImage:
      return "an image file";
    case Kind::kMedia:
      return "a media file";
  }
  return "a media file";
}

}  // namespace

FramePtr make_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) MMREF_FAIL("FFmpeg: out of memory allocating a frame");
  return f;
}

FramePtr alloc_video_frame(AVPixelFormat format, int width, int height) {
  FramePtr f = make_frame();
  f->format = format;
  f->width = width;
  f->height = height;
  if (av_frame_get_buffer(f.get(), 0) < 0)
    MMREF_FAIL("FFmpeg: out of memory allocating a {}x{} frame", width, height);
  return f;
}

PacketPtr make_packet() {
  PacketPtr p(av_packet_alloc());
  if (!p) MMREF_FAIL("FFmpeg: out of memory allocating a packet");
  return p;
}

void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(log_callback);
  });
}

void clear_last_log() { t_last_log.clear(); }
std::string last_log() { return t_last_log; }

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  std::string s(buf);
  if (!t_last_log.empty() && t_last_log.find(s) == std::string::npos) s += " (" + t_last_log + ")";
  return s;
}

std::string extension(const std::string& path) {
  auto slash = path.find_last_of('/');
  auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot + 1);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

// ---------------------------------------------------------------------------------------------
// MediaInfo

void fill_media_info(const AVFormatContext* fmt_c, const AVStream* main, MediaInfo* info) {
  auto* fmt = const_cast<AVFormatContext*>(fmt_c);  // av_find_best_stream is not const-correct
  *info = MediaInfo{};
  info->format = fmt->iformat->name;
  info->codec = avcodec_get_name(main->codecpar->codec_id);
  if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
    info->duration_s = static_cast<double>(fmt->duration) / AV_TIME_BASE;
  const int a = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  const int v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (a >= 0) {
    const AVStream* st = fmt->streams[a];
    info->has_audio = true;
    info->sample_rate = st->codecpar->sample_rate;
    info->channels = st->codecpar->ch_layout.nb_channels;
    if (info->duration_s <= 0 && st->duration != AV_NOPTS_VALUE && st->duration > 0)
      info->duration_s = st->duration * av_q2d(st->time_base);
  }
  if (v >= 0) {
    const AVStream* st = fmt->streams[v];
    info->has_video = true;
    info->width = st->codecpar->width;
    info->height = st->codecpar->height;
    if (const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(st->codecpar->format))) {
      info->pixel_format = d->name;
      info->has_alpha = (d->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
      info->gray = d->nb_components <= 2 && !(d->flags & AV_PIX_FMT_FLAG_PAL);
    }
    const AVRational r = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
    info->fps = r.num > 0 && r.den > 0 ? av_q2d(r) : 0;
    const double dur = st->duration != AV_NOPTS_VALUE && st->duration > 0
                           ? st->duration * av_q2d(st->time_base)
                           : info->duration_s;
    if (info->duration_s <= 0) info->duration_s = dur;
    info->num_frames = st->nb_frames > 0 ? st->nb_frames : std::llround(dur * info->fps);
  }
}

// ---------------------------------------------------------------------------------------------
// Pixel conversion

namespace {
constexpr int kSwsFlags = SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP;

int sws_matrix(AVColorSpace cs) {
  switch (cs) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    default:
      return SWS_CS_DEFAULT;  // BT.601, what our encoders write
  }
}

bool is_full_range_format(int fmt) {
  return fmt == AV_PIX_FMT_YUVJ420P || fmt == AV_PIX_FMT_YUVJ422P || fmt == AV_PIX_FMT_YUVJ444P ||
         fmt == AV_PIX_FMT_YUVJ440P || fmt == AV_PIX_FMT_YUVJ411P;
}

// yuvj* are deprecated aliases of yuv* + full range; swscale wants the plain format and a range flag.
AVPixelFormat unalias(int fmt) {
  switch (fmt) {
    case AV_PIX_FMT_YUVJ420P:
      return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
      return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
      return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
      return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P:
      return AV_PIX_FMT_YUV411P;
    default:
      return static_cast<AVPixelFormat>(fmt);
  }
}

// True for Y'CbCr formats, where range and matrix matter (gray, RGB and palettes keep swscale's own
// defaults: gray is full range there).
bool is_yuv(AVPixelFormat f) {
  const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(f);
  return d && !(d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) && d->nb_components >= 3;
}

SwsContext* cached(SwsPtr& sws, int sw, int sh, AVPixelFormat sf, int dw, int dh, AVPixelFormat df) {
  SwsContext* c =
      sws_getCachedContext(sws.release(), sw, sh, sf, dw, dh, df, kSwsFlags, nullptr, nullptr, nullptr);
  sws.reset(c);
  if (!c) {
    MMREF_FAIL("cannot convert {}x{} {} to {}x{} {} (libswscale refused)", sw, sh,
               av_get_pix_fmt_name(sf) ? av_get_pix_fmt_name(sf) : "?", dw, dh,
               av_get_pix_fmt_name(df) ? av_get_pix_fmt_name(df) : "?");
  }
  return c;
}
}  // namespace

void frame_to_rgb_planes(SwsPtr& sws, const AVFrame* src, uint8_t* rgb, int width, int height) {
  if (src->format == AV_PIX_FMT_PAL8) {
    // swscale routes pal8 -> planar RGB through a YUV palette (off by a few levels); look the
    // palette up ourselves into packed RGB, which swscale then converts exactly.
    FramePtr tmp = make_frame();
    tmp->format = AV_PIX_FMT_RGB24;
    tmp->width = src->width;
    tmp->height = src->height;
    if (av_frame_get_buffer(tmp.get(), 0) < 0) MMREF_FAIL("out of memory converting a paletted frame");
    const auto* pal = reinterpret_cast<const uint32_t*>(src->data[1]);  // native-endian 0xAARRGGBB
    for (int y = 0; y < src->height; ++y) {
      const uint8_t* in = src->data[0] + static_cast<size_t>(y) * src->linesize[0];
      uint8_t* out = tmp->data[0] + static_cast<size_t>(y) * tmp->linesize[0];
      for (int x = 0; x < src->width; ++x) {
        const uint32_t c = pal[in[x]];
        out[3 * x] = static_cast<uint8_t>(c >> 16);
        out[3 * x + 1] = static_cast<uint8_t>(c >> 8);
        out[3 * x + 2] = static_cast<uint8_t>(c);
      }
    }
    frame_to_rgb_planes(sws, tmp.get(), rgb, width, height);
    return;
  }
  AVPixelFormat sf = unalias(src->format);
  SwsContext* c = cached(sws, src->width, src->height, sf, width, height, AV_PIX_FMT_GBRP);
  if (is_yuv(sf)) {
    const bool full = is_full_range_format(src->format) || src->color_range == AVCOL_RANGE_JPEG;
    const int* coef = sws_getCoefficients(sws_matrix(src->colorspace));
    sws_setColorspaceDetails(c, coef, full ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16,
                             1 << 16);
  }
  // swscale's SIMD paths read and write whole vectors past the end of a row, so it works on an
  // FFmpeg-allocated (aligned, padded) frame; the rows are then copied into the tensor.
  FramePtr tmp = alloc_video_frame(AV_PIX_FMT_GBRP, width, height);
  sws_scale(c, src->data, src->linesize, 0, src->height, tmp->data, tmp->linesize);
  const size_t plane = static_cast<size_t>(width) * height;
  uint8_t* dst[3] = {rgb + plane, rgb + 2 * plane, rgb};  // GBRP order: G, B, R
  for (int p = 0; p < 3; ++p) {
    for (int y = 0; y < height; ++y) {
      std::memcpy(dst[p] + static_cast<size_t>(y) * width,
                  tmp->data[p] + static_cast<size_t>(y) * tmp->linesize[p], width);
    }
  }
}

void rgb_planes_to_frame(SwsPtr& sws, const uint8_t* rgb, AVFrame* dst) {
  const int w = dst->width, h = dst->height;
  AVPixelFormat df = unalias(dst->format);
  SwsContext* c = cached(sws, w, h, AV_PIX_FMT_GBRP, w, h, df);
  if (is_yuv(df)) {
    const bool full = is_full_range_format(dst->format) || dst->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(c, sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(SWS_CS_DEFAULT),
                             full ? 1 : 0, 0, 1 << 16, 1 << 16);
  }
  // Padded copy of the source planes (see frame_to_rgb_planes: swscale over-reads rows).
  FramePtr tmp = alloc_video_frame(AV_PIX_FMT_GBRP, w, h);
  const size_t plane = static_cast<size_t>(w) * h;
  const uint8_t* src[3] = {rgb + plane, rgb + 2 * plane, rgb};  // G, B, R
  for (int p = 0; p < 3; ++p) {
    for (int y = 0; y < h; ++y) {
      std::memcpy(tmp->data[p] + static_cast<size_t>(y) * tmp->linesize[p],
                  src[p] + static_cast<size_t>(y) * w, w);
    }
  }
  sws_scale(c, tmp->data, tmp->linesize, 0, h, dst->data, dst->linesize);
}

// ---------------------------------------------------------------------------------------------
// InputStream

int InputStream::interrupt_cb(void* opaque) {
  auto* self = static_cast<InputStream*>(opaque);
  return std::chrono::steady_clock::now() > self->deadline_ ? 1 : 0;
}

void InputStream::refresh_deadline() { deadline_ = std::chrono::steady_clock::now() + kIoDeadline; }

void InputStream::fail(const std::string& what, int err) const {
  MMREF_FAIL("'{}': {}: {} (truncated or not {})", path_, what, av_error_text(err), kind_noun(kind_));
}

namespace {
// The demuxer a file's extension names, for the formats whose probe is the costly part of opening short
// files; nullptr (probe) for everything else.
const AVInputFormat* demuxer_for_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos) return nullptr;
  std::string ext = path.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const char* name = ext == "wav" ? "wav" : ext == "flac" ? "flac" : ext == "mp3" ? "mp3" : nullptr;
  return name ? av_find_input_format(name) : nullptr;
}
}  // namespace

InputStream::InputStream(const std::string& path, AVMediaType type, Kind kind, bool strict, int threads)
    : path_(path), kind_(kind), strict_(strict) {
  init_ffmpeg();
  clear_last_log();
  if (!fs::exists(path)) MMREF_FAIL("'{}': file not found", path);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) MMREF_FAIL("'{}': is a directory, not a media file", path);
  // FIFOs and devices (/dev/urandom) could block in open() or never end: only regular files.
  if (!std::filesystem::is_regular_file(path, ec))
    MMREF_FAIL("'{}': not a regular file (pipes and devices are not read)", path);
  frame_ = make_frame();
  packet_ = make_packet();

  AVFormatContext* raw = avformat_alloc_context();
  if (!raw) MMREF_FAIL("'{}': FFmpeg out of memory", path);
  raw->interrupt_callback.callback = &InputStream::interrupt_cb;
  raw->interrupt_callback.opaque = this;
  refresh_deadline();
  AVDictionary* opts = nullptr;
  // A file name containing '%' must not be read as an image-sequence pattern.
  av_dict_set(&opts, "pattern_type", "none", 0);
  // Files named .wav/.flac/... open with that demuxer first: probing every demuxer FFmpeg has (mp3 frame
  // sync search, openmpt, ...) was ~18% of a DataLoader worker's time on short utterances (measured with
  // `mmref bench loader`). A file that is not what its name says falls back to probing.
  const AVInputFormat* hint = demuxer_for_extension(path);
  int err = avformat_open_input(&raw, path.c_str(), hint, &opts);  // frees raw on failure
  if (err < 0 && hint != nullptr && err != AVERROR(ENOENT) && err != AVERROR(EACCES)) {
    av_dict_free(&opts);
    av_dict_set(&opts, "pattern_type", "none", 0);
    raw = avformat_alloc_context();
    if (!raw) MMREF_FAIL("'{}': FFmpeg out of memory", path);
    raw->interrupt_callback.callback = &InputStream::interrupt_cb;
    raw->interrupt_callback.opaque = this;
    err = avformat_open_input(&raw, path.c_str(), nullptr, &opts);
  }
  av_dict_free(&opts);
  if (err < 0) {
    if (err == AVERROR(ENOENT)) MMREF_FAIL("'{}': file not found", path);
    if (err == AVERROR(EACCES)) MMREF_FAIL("'{}': permission denied", path);
    fail("cannot decode", err);
  }
  fmt_.reset(raw);
  // Demuxers that take any bytes whose name has their extension (text-mode art, raw data): for
  // random bytes called x.bin they "succeed" with a 1280x10000 picture of noise.
  for (const char* guess : {"bin", "tty", "xbin", "adf", "idf", "data"}) {
    if (std::string(fmt_->iformat->name) == guess) {
      MMREF_FAIL(
          "'{}': cannot decode: not a recognised media format (FFmpeg only guessed '{}' "
          "from the file name) (truncated or not {})",
          path, guess, kind_noun(kind_));
    }
  }
  refresh_deadline();
  if ((err = avformat_find_stream_info(fmt_.get(), nullptr)) < 0) fail("cannot read stream info", err);

  if (type == AVMEDIA_TYPE_UNKNOWN) {
    type = av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0) >= 0 ? AVMEDIA_TYPE_AUDIO
                                                                                        : AVMEDIA_TYPE_VIDEO;
  }
  const AVCodec* dec = nullptr;
  index_ = av_find_best_stream(fmt_.get(), type, -1, -1, &dec, 0);
  if (index_ == AVERROR_STREAM_NOT_FOUND) {
    // A stream of the right type that av_find_best_stream passed over has unusable parameters
    // (e.g. 0 Hz from an empty flac): that is a broken file, not a missing stream.
    for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
      if (fmt_->streams[i]->codecpar->codec_type == type) fail("cannot decode", AVERROR_INVALIDDATA);
    }
    std::string streams;
    for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
      const AVCodecParameters* par = fmt_->streams[i]->codecpar;
      const char* t = av_get_media_type_string(par->codec_type);
      streams += fmt::format("{}{} {}", streams.empty() ? "" : ", ", t ? t : "unknown",
                             avcodec_get_name(par->codec_id));
    }
    MMREF_FAIL("'{}': no {} stream (streams: {})", path, type == AVMEDIA_TYPE_AUDIO ? "audio" : "video",
               streams.empty() ? "none" : streams);
  }
  if (index_ == AVERROR_DECODER_NOT_FOUND || !dec) {
    int i = av_find_best_stream(fmt_.get(), type, -1, -1, nullptr, 0);
    std::string name = "?";
    if (i >= 0) {
      const AVCodecParameters* par = fmt_->streams[i]->codecpar;
      name = par->codec_id == AV_CODEC_ID_NONE ? fmt::format("unknown, tag 0x{:x}", par->codec_tag)
                                               : avcodec_get_name(par->codec_id);
    }
    MMREF_FAIL("'{}': unsupported codec ({}): this FFmpeg build has no decoder for it", path, name);
  }
  if (index_ < 0) fail("cannot select a stream", index_);
  {
    const AVCodecParameters* par = fmt_->streams[index_]->codecpar;
    const bool bad = type == AVMEDIA_TYPE_VIDEO ? (par->width <= 0 || par->height <= 0)
                                                : (par->sample_rate <= 0 || par->ch_layout.nb_channels <= 0);
    if (bad) fail("cannot decode", AVERROR_INVALIDDATA);
  }
  for (unsigned i = 0; i < fmt_->nb_streams; ++i) {
    if (static_cast<int>(i) != index_) fmt_->streams[i]->discard = AVDISCARD_ALL;
  }

  codec_.reset(avcodec_alloc_context3(dec));
  if (!codec_) MMREF_FAIL("'{}': FFmpeg out of memory", path);
  if ((err = avcodec_parameters_to_context(codec_.get(), stream()->codecpar)) < 0)
    fail("bad codec parameters", err);
  codec_->pkt_timebase = stream()->time_base;
  codec_->thread_count = threads;
  if (strict_) codec_->err_recognition |= AV_EF_EXPLODE | AV_EF_CRCCHECK;
  if ((err = avcodec_open2(codec_.get(), dec, nullptr)) < 0) fail("cannot open decoder", err);
}

std::string InputStream::read_error_text() const { return av_error_text(read_error_); }

bool InputStream::seek(double seconds) {
  refresh_deadline();
  int64_t ts = static_cast<int64_t>(seconds * AV_TIME_BASE);
  if (fmt_->start_time != AV_NOPTS_VALUE) ts += fmt_->start_time;
  if (avformat_seek_file(fmt_.get(), -1, INT64_MIN, ts, ts, 0) < 0) return false;
  avcodec_flush_buffers(codec_.get());
  eof_sent_ = done_ = false;
  return true;
}

AVFrame* InputStream::next() {
  if (done_) return nullptr;
  // Every iteration either returns, reads a packet (finite file) or advances to the flushed state,
  // so this loop ends; the error counter bounds how long garbage is tolerated.
  for (;;) {
    av_frame_unref(frame_.get());
    int err = avcodec_receive_frame(codec_.get(), frame_.get());
    if (err >= 0) {
      ++frames_decoded_;
      return frame_.get();
    }
    if (err == AVERROR_EOF) {
      done_ = true;
      return nullptr;
    }
    if (err != AVERROR(EAGAIN)) {
      if (strict_ || ++errors_ > kMaxDecodeErrors) fail("cannot decode", err);
      if (eof_sent_) {  // a decoder that errors while draining has nothing more to give
        done_ = true;
        return nullptr;
      }
      continue;
    }
    if (eof_sent_) {  // EAGAIN after the flush packet: should not happen, end defensively
      done_ = true;
      return nullptr;
    }
    refresh_deadline();
    err = av_read_frame(fmt_.get(), packet_.get());
    if (err < 0) {
      if (err != AVERROR_EOF) read_error_ = err;
      eof_sent_ = true;
      avcodec_send_packet(codec_.get(), nullptr);
      continue;
    }
    if (packet_->stream_index != index_) {
      av_packet_unref(packet_.get());
      continue;
    }
    err = avcodec_send_packet(codec_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (err < 0 && err != AVERROR(EAGAIN)) {
      if (strict_ || ++errors_ > kMaxDecodeErrors) fail("cannot decode", err);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// OutputFile

void OutputFile::MuxDeleter::operator()(AVFormatContext* p) const {
  if (p->pb && !(p->oformat->flags & AVFMT_NOFILE)) avio_closep(&p->pb);
  avformat_free_context(p);
}

OutputFile::OutputFile(const std::string& path, const char* muxer, const AVCodec* encoder)
    : path_(path), tmp_(fmt::format("{}.tmp.{}", path, getpid())) {
  init_ffmpeg();
  clear_last_log();
  if (!encoder) MMREF_FAIL("'{}': this FFmpeg build has no suitable encoder", path);
  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, muxer, tmp_.c_str());
  if (err < 0 || !raw) MMREF_FAIL("'{}': cannot create a '{}' muxer: {}", path, muxer, av_error_text(err));
  fmt_.reset(raw);
  stream_ = avformat_new_stream(fmt_.get(), nullptr);
  codec_.reset(avcodec_alloc_context3(encoder));
  if (!stream_ || !codec_) MMREF_FAIL("'{}': FFmpeg out of memory", path);
  if (fmt_->oformat->flags & AVFMT_GLOBALHEADER) codec_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  packet_ = make_packet();
}

OutputFile::~OutputFile() {
  if (!finished_) {
    fmt_.reset();  // closes the temp file
    std::remove(tmp_.c_str());
  }
}

void OutputFile::open(AVDictionary** codec_opts, AVDictionary** mux_opts) {
  int err = avcodec_open2(codec_.get(), codec_->codec, codec_opts);
  if (err < 0)
    MMREF_FAIL("'{}': cannot open the {} encoder: {}", path_, codec_->codec->name, av_error_text(err));
  if ((err = avcodec_parameters_from_context(stream_->codecpar, codec_.get())) < 0)
    MMREF_FAIL("'{}': {}", path_, av_error_text(err));
  stream_->time_base = codec_->time_base;
  if (!(fmt_->oformat->flags & AVFMT_NOFILE)) {
    if ((err = avio_open(&fmt_->pb, tmp_.c_str(), AVIO_FLAG_WRITE)) < 0)
      MMREF_FAIL("'{}': cannot write '{}': {} (check the folder exists and is writable)", path_, tmp_,
                 av_error_text(err));
  }
  if ((err = avformat_write_header(fmt_.get(), mux_opts)) < 0)
    MMREF_FAIL("'{}': cannot write the header: {}", path_, av_error_text(err));
  header_written_ = true;
}

void OutputFile::drain() {
  for (;;) {
    int err = avcodec_receive_packet(codec_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    if (err < 0) MMREF_FAIL("'{}': encoding failed: {}", path_, av_error_text(err));
    av_packet_rescale_ts(packet_.get(), codec_->time_base, stream_->time_base);
    packet_->stream_index = stream_->index;
    err = av_interleaved_write_frame(fmt_.get(), packet_.get());  // takes the packet's reference
    if (err < 0) MMREF_FAIL("'{}': write failed: {}", path_, av_error_text(err));
  }
}

void OutputFile::write(const AVFrame* frame) {
  int err = avcodec_send_frame(codec_.get(), frame);
  if (err < 0) MMREF_FAIL("'{}': encoding failed: {}", path_, av_error_text(err));
  drain();
}

void OutputFile::finish() {
  MMREF_CHECK(header_written_, "OutputFile::finish before open");
  write(nullptr);
  int err = av_write_trailer(fmt_.get());
  if (err < 0) MMREF_FAIL("'{}': cannot finish the file: {}", path_, av_error_text(err));
  fmt_.reset();  // closes the file
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_.c_str());
    MMREF_FAIL("'{}': cannot rename the finished temp file into place", path_);
  }
  finished_ = true;
}

}  // namespace mmref::data::media
