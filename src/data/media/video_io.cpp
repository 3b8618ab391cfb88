// Video decode ((T, 3, H, W) uint8 RGB with fps resampling, scaling and a frame range) and encode
// (.mp4 / .gif / .y4m): see video_io.h.
//
// fps resampling is by timestamp, like FFmpeg's fps filter with round=down: output frame k (time
// k / fps after the first frame) shows the last source frame whose time is <= k / fps; the output
// ends at the end of the last source frame. So 30 -> 15 fps keeps every second frame and gives half
// the frames; 15 -> 30 repeats each frame twice. Only frames that are output get converted to RGB.
#include "data/media/video_io.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Functions.h>

#include "core/error.h"
#include "data/media/media_common.h"

extern "C" {
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>
}

namespace mmref::data {

using namespace media;

namespace {

struct FilterInOutDeleter {
  void operator()(AVFilterInOut* p) const { avfilter_inout_free(&p); }
};

// Collects output frames [start, start + count) of the (possibly resampled) frame sequence.
class FrameCollector {
 public:
  FrameCollector(const VideoOptions& opt, const std::string& path) : opt_(opt), path_(path) {}

  // Appends output frame k showing `f`; returns false once enough frames are collected.
  bool emit(const AVFrame* f) {
    const int64_t k = next_k_++;
    if (k < opt_.start_frame) return true;
    if (opt_.num_frames >= 0 && static_cast<int64_t>(frames_.size()) >= opt_.num_frames) return false;
    if (w_ == 0) {
      w_ = opt_.width, h_ = opt_.height;
      if (w_ == 0 && h_ == 0) {
        w_ = f->width, h_ = f->height;
      } else if (w_ == 0) {
        w_ = std::max(1, static_cast<int>(std::lround(static_cast<double>(f->width) * h_ / f->height)));
      } else if (h_ == 0) {
        h_ = std::max(1, static_cast<int>(std::lround(static_cast<double>(f->height) * w_ / f->width)));
      }
    }
    at::Tensor t = at::empty({3, h_, w_}, at::kByte);
    try {
      frame_to_rgb_planes(sws_, f, t.data_ptr<uint8_t>(), w_, h_);
    } catch (const Error& e) {
      MMREF_FAIL("'{}': {}", path_, e.what());
    }
    frames_.push_back(std::move(t));
    return opt_.num_frames < 0 || static_cast<int64_t>(frames_.size()) < opt_.num_frames;
  }
  bool full() const {
    return opt_.num_frames >= 0 && static_cast<int64_t>(frames_.size()) >= opt_.num_frames;
  }
  int64_t next_k() const { return next_k_; }
  std::vector<at::Tensor>& frames() { return frames_; }

 private:
  const VideoOptions& opt_;
  const std::string& path_;
  SwsPtr sws_;
  int w_ = 0, h_ = 0;
  int64_t next_k_ = 0;
  std::vector<at::Tensor> frames_;
};

}  // namespace

at::Tensor load_video(const std::string& path, const VideoOptions& opt, MediaInfo* info) {
  if (opt.fps < 0 || opt.width < 0 || opt.height < 0 || opt.start_frame < 0 || opt.num_frames < -1 ||
      opt.num_frames == 0) {
    MMREF_FAIL(
        "'{}': bad VideoOptions (fps {} size {}x{} start_frame {} num_frames {}): need "
        "fps >= 0, sizes >= 0, start_frame >= 0, num_frames > 0 or -1",
        path, opt.fps, opt.width, opt.height, opt.start_frame, opt.num_frames);
  }
  InputStream in(path, AVMEDIA_TYPE_VIDEO, Kind::kVideo, /*strict=*/false, /*threads=*/0);
  if (info) fill_media_info(in.fmt(), in.stream(), info);
  const AVStream* st = in.stream();
  const double tb = av_q2d(st->time_base);
  AVRational r = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  const double native_dt = r.num > 0 && r.den > 0 ? 1.0 / av_q2d(r) : 0.0;

  FrameCollector out(opt, path);
  bool stopped_early = false;
  if (opt.fps <= 0) {
    while (AVFrame* f = in.next()) {
      if (!out.emit(f)) {
        stopped_early = true;
        break;
      }
    }
  } else {
    const double step = 1.0 / opt.fps;
    const double eps = 1e-6 + 1e-3 * std::min(step, native_dt > 0 ? native_dt : step);
    FramePtr prev = make_frame();
    bool have_prev = false;
    double t0 = 0, prev_t = 0, last_dt = native_dt;
    int64_t index = 0;
    auto time_of = [&](const AVFrame* f) {
      int64_t pts = f->best_effort_timestamp;
      return pts != AV_NOPTS_VALUE ? pts * tb : static_cast<double>(index) * native_dt;
    };
    while (AVFrame* f = in.next()) {
      double t = time_of(f);
      if (!have_prev) t0 = t;
      t -= t0;
      if (have_prev) {
        if (t > prev_t) last_dt = t - prev_t;
        while (out.next_k() * step < t - eps) {
          if (!out.emit(prev.get())) {
            stopped_early = true;
            break;
          }
        }
        if (stopped_early) break;
      }
      av_frame_unref(prev.get());
      if (av_frame_ref(prev.get(), f) < 0) MMREF_FAIL("'{}': out of memory", path);
      have_prev = true;
      prev_t = t;
      ++index;
    }
    if (have_prev && !stopped_early) {
      const double t_end = prev_t + (last_dt > 0 ? last_dt : step);
      while (out.next_k() * step < t_end - eps && out.emit(prev.get())) {
      }
      if (out.full()) stopped_early = true;
    }
  }
  if (out.full()) stopped_early = true;

  if (in.frames_decoded() == 0) {
    MMREF_FAIL("'{}': cannot decode: no video frames{} (empty, truncated or not a video file)", path,
               in.read_error() ? ": " + in.read_error_text() : std::string());
  }
  if (!stopped_early && st->nb_frames > 0 && in.frames_decoded() < st->nb_frames) {
    MMREF_FAIL("'{}': truncated: the header says {} frames but only {} could be decoded", path, st->nb_frames,
               in.frames_decoded());
  }
  if (out.frames().empty()) {
    MMREF_FAIL(
        "'{}': no frames in the requested range (start_frame {}; the video has {} output "
        "frames at this fps)",
        path, opt.start_frame, out.next_k());
  }
  return at::stack(out.frames());
}

namespace {

// gif: one global palette for the whole clip via libavfilter
// split -> palettegen (histogram of every frame) -> paletteuse, like `ffmpeg -vf palettegen/paletteuse`.
// Returns the pal8 frames in order.
std::vector<FramePtr> gif_palettize(const std::string& path, const at::Tensor& frames, AVRational tb) {
  const int T = static_cast<int>(frames.size(0)), H = static_cast<int>(frames.size(2)),
            W = static_cast<int>(frames.size(3));
  FilterGraphPtr graph(avfilter_graph_alloc());
  if (!graph) MMREF_FAIL("'{}': FFmpeg out of memory", path);
  graph->nb_threads = 1;
  AVFilterContext* src = nullptr;
  AVFilterContext* sink = nullptr;
  std::string args = fmt::format("video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect=1/1", W, H,
                                 static_cast<int>(AV_PIX_FMT_GBRP), tb.num, tb.den);
  int err = avfilter_graph_create_filter(&src, avfilter_get_by_name("buffer"), "in", args.c_str(), nullptr,
                                         graph.get());
  if (err >= 0)
    err = avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out", nullptr, nullptr,
                                       graph.get());
  if (err < 0) MMREF_FAIL("'{}': cannot build the gif palette filter: {}", path, av_error_text(err));

  std::unique_ptr<AVFilterInOut, FilterInOutDeleter> outputs(avfilter_inout_alloc());
  std::unique_ptr<AVFilterInOut, FilterInOutDeleter> inputs(avfilter_inout_alloc());
  if (!outputs || !inputs) MMREF_FAIL("'{}': FFmpeg out of memory", path);
  outputs->name = av_strdup("in");
  outputs->filter_ctx = src;
  inputs->name = av_strdup("out");
  inputs->filter_ctx = sink;
  // stats_mode=full: one palette for all frames; reserve_transparent=0: all 256 entries for colours.
  const char* desc =
      "split[a][b];[a]palettegen=stats_mode=full:reserve_transparent=0[p];"
      "[b][p]paletteuse=dither=sierra2_4a";
  AVFilterInOut* in_raw = inputs.release();
  AVFilterInOut* out_raw = outputs.release();
  err = avfilter_graph_parse_ptr(graph.get(), desc, &in_raw, &out_raw, nullptr);
  inputs.reset(in_raw);
  outputs.reset(out_raw);
  if (err >= 0) err = avfilter_graph_config(graph.get(), nullptr);
  if (err < 0) MMREF_FAIL("'{}': cannot build the gif palette filter: {}", path, av_error_text(err));

  const uint8_t* data = frames.data_ptr<uint8_t>();
  const size_t plane = static_cast<size_t>(W) * H;
  for (int i = 0; i < T; ++i) {
    FramePtr f = make_frame();
    f->format = AV_PIX_FMT_GBRP;
    f->width = W;
    f->height = H;
    if (av_frame_get_buffer(f.get(), 0) < 0) MMREF_FAIL("'{}': out of memory", path);
    const uint8_t* rgb = data + 3 * plane * i;
    const uint8_t* planes[3] = {rgb + plane, rgb + 2 * plane, rgb};  // G, B, R
    for (int p = 0; p < 3; ++p)
      for (int y = 0; y < H; ++y)
        std::copy_n(planes[p] + static_cast<size_t>(y) * W, W,
                    f->data[p] + static_cast<size_t>(y) * f->linesize[p]);
    f->pts = i;
    if ((err = av_buffersrc_add_frame(src, f.get())) < 0)
      MMREF_FAIL("'{}': gif palette filter: {}", path, av_error_text(err));
  }
  if ((err = av_buffersrc_add_frame(src, nullptr)) < 0)
    MMREF_FAIL("'{}': gif palette filter: {}", path, av_error_text(err));
  std::vector<FramePtr> result;
  for (;;) {
    FramePtr f = make_frame();
    err = av_buffersink_get_frame(sink, f.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) MMREF_FAIL("'{}': gif palette filter: {}", path, av_error_text(err));
    result.push_back(std::move(f));
  }
  if (static_cast<int>(result.size()) != T)
    MMREF_FAIL("'{}': gif palette filter returned {} frames for {}", path, result.size(), T);
  return result;
}

}  // namespace

void save_video(const std::string& path, const at::Tensor& frames_in, double fps) {
  const std::string ext = extension(path);
  if (ext != "mp4" && ext != "gif" && ext != "y4m")
    MMREF_FAIL("'{}': save_video writes .mp4, .gif or .y4m, not '.{}'", path, ext);
  if (frames_in.dim() != 4 || frames_in.size(1) != 3 || frames_in.size(0) < 1 || frames_in.size(2) < 1 ||
      frames_in.size(3) < 1) {
    MMREF_FAIL("'{}': frames must be (T, 3, H, W) with T, H, W >= 1", path);
  }
  if (!(fps > 0) || fps > 1000) MMREF_FAIL("'{}': fps must be in (0, 1000], got {}", path, fps);
  at::Tensor frames = frames_in.cpu();
  if (frames.scalar_type() != at::kByte)
    frames = frames.to(at::kFloat).clamp(0.0, 1.0).mul(255.0).round().to(at::kByte);
  frames = frames.contiguous();
  const int T = static_cast<int>(frames.size(0)), H = static_cast<int>(frames.size(2)),
            W = static_cast<int>(frames.size(3));
  init_ffmpeg();
  clear_last_log();

  const AVRational rate = av_d2q(fps, 1 << 16);
  const AVRational tb = av_inv_q(rate);
  const AVCodec* enc = nullptr;
  const char* muxer = nullptr;
  AVPixelFormat pix = AV_PIX_FMT_YUV420P;
  if (ext == "mp4") {
    if (W % 2 || H % 2) MMREF_FAIL("'{}': mp4 (yuv420p) needs even width and height, got {}x{}", path, W, H);
    enc = avcodec_find_encoder_by_name("libx264");
    if (!enc) enc = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    muxer = "mp4";
  } else if (ext == "gif") {
    enc = avcodec_find_encoder(AV_CODEC_ID_GIF);
    muxer = "gif";
    pix = AV_PIX_FMT_PAL8;
  } else {
    enc = avcodec_find_encoder(AV_CODEC_ID_WRAPPED_AVFRAME);
    muxer = "yuv4mpegpipe";
    pix = AV_PIX_FMT_YUV444P;
  }
  OutputFile out(path, muxer, enc);
  AVCodecContext* ctx = out.codec();
  ctx->width = W;
  ctx->height = H;
  ctx->pix_fmt = pix;
  ctx->time_base = tb;
  ctx->framerate = rate;
  ctx->sample_aspect_ratio = AVRational{1, 1};
  out.stream()->avg_frame_rate = rate;
  AVDictionary* opts = nullptr;
  if (std::string(enc->name) == "libx264") {
    // crf 18 is visually lossless; preset fast: about 2x faster than medium for about 5% more bits.
    av_dict_set(&opts, "crf", "18", 0);
    av_dict_set(&opts, "preset", "fast", 0);
  } else if (enc->id == AV_CODEC_ID_MPEG4) {
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 2;
  }
  try {
    out.open(&opts);
  } catch (...) {
    av_dict_free(&opts);
    throw;
  }
  av_dict_free(&opts);

  if (ext == "gif") {
    for (FramePtr& f : gif_palettize(path, frames, tb)) out.write(f.get());
  } else {
    FramePtr f = make_frame();
    SwsPtr sws;
    const uint8_t* data = frames.data_ptr<uint8_t>();
    const size_t frame_bytes = 3 * static_cast<size_t>(W) * H;
    for (int i = 0; i < T; ++i) {
      av_frame_unref(f.get());
      f->format = pix;
      f->width = W;
      f->height = H;
      f->sample_aspect_ratio = AVRational{1, 1};
      if (av_frame_get_buffer(f.get(), 0) < 0) MMREF_FAIL("'{}': out of memory", path);
      rgb_planes_to_frame(sws, data + frame_bytes * i, f.get());
      f->pts = i;
      out.write(f.get());
    }
  }
  out.finish();
}

}  // namespace mmref::data
