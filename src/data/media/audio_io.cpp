// Audio decode (any FFmpeg-readable file -> (C, T) float32) and encode (.wav / .flac): see audio_io.h.
//
// Pipeline: InputStream (demux + decode) -> libswresample (any sample format/rate -> planar float at
// the output rate, native channel count) -> a per-channel FIFO -> channel mapping (mono = mean of the
// channels, mono -> N = repeat) on the way out. load_audio drains the FIFO once; AudioStreamReader
// drains it chunk by chunk, so both produce the same samples.
#include "data/media/audio_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <ATen/Functions.h>

#include "core/error.h"
#include "data/media/media_common.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

namespace mmref::data {

using namespace media;

namespace {

// Declared length of the stream in seconds, or -1 when the container only guesses it from the bitrate.
double declared_duration(const InputStream& in) {
  const AVStream* st = in.stream();
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return st->duration * av_q2d(st->time_base);
  const AVFormatContext* fmt = in.fmt();
  if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0 &&
      fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE) {
    return static_cast<double>(fmt->duration) / AV_TIME_BASE;
  }
  return -1;
}

// WAV keeps its length in the RIFF 'data' chunk header, but FFmpeg's wav demuxer quietly clamps it
// to the file size, so a cut file would decode as a shorter one. Returns the bytes the header
// promises beyond the end of the file (0 if complete, or if the header is a streaming placeholder).
uint64_t wav_missing_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return 0;
  unsigned char h[4096];
  size_t n = std::fread(h, 1, sizeof(h), f);
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fclose(f);
  auto u32 = [&](size_t i) {
    return static_cast<uint32_t>(h[i]) | static_cast<uint32_t>(h[i + 1]) << 8 |
           static_cast<uint32_t>(h[i + 2]) << 16 | static_cast<uint32_t>(h[i + 3]) << 24;
  };
  if (n < 12 || std::memcmp(h, "RIFF", 4) != 0 || std::memcmp(h + 8, "WAVE", 4) != 0) return 0;
  for (size_t i = 12; i + 8 <= n;) {
    const uint32_t len = u32(i + 4);
    if (std::memcmp(h + i, "data", 4) == 0) {
      if (len == 0 || len == 0xFFFFFFFFu) return 0;  // written by a streaming encoder
      const uint64_t end = i + 8 + static_cast<uint64_t>(len);
      return end > static_cast<uint64_t>(size) ? end - static_cast<uint64_t>(size) : 0;
    }
    i += 8 + len + (len & 1);
  }
  return 0;
}

}  // namespace

struct AudioStreamReader::Impl {
  InputStream in;
  AudioOptions opt;
  int in_channels = 0;
  int out_rate = 0, out_channels = 0;
  SwrPtr swr;
  int swr_in_format = -1, swr_in_rate = -1;
  AVChannelLayout swr_in_layout{};
  std::vector<std::vector<float>> fifo;  // native channels at out_rate, from `head` on
  size_t head = 0;
  int64_t pending_skip = 0;  // samples still to drop to reach start_s
  bool skip_known = false;   // pending_skip set from the first frame's timestamp
  bool seeked = false;
  int64_t limit = -1;    // output samples wanted in total (-1 = all)
  int64_t produced = 0;  // samples appended to the fifo (after the skip)
  int64_t emitted = 0;   // samples handed out
  bool finished = false;

  Impl(const std::string& path, const AudioOptions& o) : in(path, AVMEDIA_TYPE_AUDIO, Kind::kAudio), opt(o) {
    if (opt.sample_rate < 0 || opt.channels < 0 || opt.start_s < 0 ||
        (opt.duration_s <= 0 && opt.duration_s != -1)) {
      MMREF_FAIL(
          "'{}': bad AudioOptions (sample_rate {} channels {} start_s {} duration_s {}): "
          "rates/channels must be >= 0, start_s >= 0, duration_s > 0 or -1",
          path, opt.sample_rate, opt.channels, opt.start_s, opt.duration_s);
    }
    const AVCodecParameters* par = in.stream()->codecpar;
    in_channels = par->ch_layout.nb_channels;
    if (in_channels <= 0 || par->sample_rate <= 0) {
      MMREF_FAIL(
          "'{}': cannot decode: the audio stream has {} channels at {} Hz (truncated or not "
          "an audio file)",
          path, in_channels, par->sample_rate);
    }
    if (std::string(in.fmt()->iformat->name) == "wav") {
      if (uint64_t missing = wav_missing_bytes(path)) {
        MMREF_FAIL(
            "'{}': truncated: the WAV header promises {} more bytes of samples than the file "
            "holds",
            path, missing);
      }
    }
    out_rate = opt.sample_rate > 0 ? opt.sample_rate : par->sample_rate;
    out_channels = opt.channels > 0 ? opt.channels : in_channels;
    if (out_channels != in_channels && out_channels != 1 && in_channels != 1) {
      MMREF_FAIL(
          "'{}': cannot map {} channels to {} (supported: native, mono downmix, mono "
          "upmix)",
          path, in_channels, out_channels);
    }
    fifo.resize(in_channels);
    if (opt.duration_s > 0) limit = std::llround(opt.duration_s * out_rate);
    if (opt.start_s > 0) {
      // Keyframe at or before start_s; the exact start comes from the first frame's timestamp.
      // 0.25 s of pre-roll: lossy decoders (mp3 bit reservoir, vorbis/opus overlap-add) need a few
      // frames after a seek before their output is right; the surplus is dropped by pending_skip.
      seeked = in.seek(std::max(0.0, opt.start_s - 0.25));
    } else {
      skip_known = true;
    }
  }

  ~Impl() { av_channel_layout_uninit(&swr_in_layout); }

  int64_t available() const { return static_cast<int64_t>(fifo[0].size() - head); }

  void setup_swr(const AVFrame* f) {
    if (swr && f->format == swr_in_format && f->sample_rate == swr_in_rate &&
        av_channel_layout_compare(&f->ch_layout, &swr_in_layout) == 0) {
      return;
    }
    if (swr) flush_swr();  // keep what the old resampler still holds
    AVChannelLayout in_layout{}, out_layout{};
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels <= 0) {
      av_channel_layout_default(&in_layout,
                                f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels : in_channels);
    } else {
      av_channel_layout_copy(&in_layout, &f->ch_layout);
    }
    if (in_layout.nb_channels != in_channels) {
      av_channel_layout_uninit(&in_layout);
      MMREF_FAIL("'{}': the channel count changes mid-stream ({} -> {}); not supported", in.path(),
                 in_channels, f->ch_layout.nb_channels);
    }
    av_channel_layout_copy(&out_layout, &in_layout);
    SwrContext* raw = nullptr;
    int err = swr_alloc_set_opts2(&raw, &out_layout, AV_SAMPLE_FMT_FLTP, out_rate, &in_layout,
                                  static_cast<AVSampleFormat>(f->format), f->sample_rate, 0, nullptr);
    swr.reset(raw);
    if (err >= 0) err = swr_init(swr.get());
    av_channel_layout_uninit(&out_layout);
    if (err < 0) {
      av_channel_layout_uninit(&in_layout);
      MMREF_FAIL("'{}': cannot set up resampling {} Hz -> {} Hz: {}", in.path(), f->sample_rate, out_rate,
                 av_error_text(err));
    }
    av_channel_layout_uninit(&in_layout);
    // Keep the frame's own layout (possibly UNSPEC) for the comparison above, so an unchanged
    // stream never re-creates the resampler (each re-creation would flush its filter tail).
    av_channel_layout_uninit(&swr_in_layout);
    av_channel_layout_copy(&swr_in_layout, &f->ch_layout);
    swr_in_format = f->format;
    swr_in_rate = f->sample_rate;
  }

  // Runs swr on `f` (nullptr = flush) and appends to the fifo, applying skip and limit.
  void convert(const AVFrame* f) {
    int in_n = f ? f->nb_samples : 0;
    int cap = swr_get_out_samples(swr.get(), in_n);
    if (cap < 0) MMREF_FAIL("'{}': resampler error: {}", in.path(), av_error_text(cap));
    if (cap == 0) return;
    size_t old = fifo[0].size();
    std::vector<uint8_t*> out(in_channels);
    for (int c = 0; c < in_channels; ++c) {
      fifo[c].resize(old + cap);
      out[c] = reinterpret_cast<uint8_t*>(fifo[c].data() + old);
    }
    int n = swr_convert(swr.get(), out.data(), cap,
                        f ? const_cast<const uint8_t**>(f->extended_data) : nullptr, in_n);
    if (n < 0) MMREF_FAIL("'{}': resampler error: {}", in.path(), av_error_text(n));
    int64_t drop = std::min<int64_t>(pending_skip, n);
    pending_skip -= drop;
    int64_t keep = n - drop;
    if (limit >= 0) keep = std::min<int64_t>(keep, limit - produced);
    for (int c = 0; c < in_channels; ++c) {
      auto& v = fifo[c];
      if (drop > 0) std::copy(v.begin() + old + drop, v.begin() + old + n, v.begin() + old);
      v.resize(old + keep);
    }
    produced += keep;
    if (limit >= 0 && produced >= limit) finished = true;
  }

  void flush_swr() {
    if (swr) convert(nullptr);
  }

  // Decodes one more frame into the fifo; returns false once the stream is over.
  bool decode_more() {
    if (finished) return false;
    AVFrame* f = in.next();
    if (!f) {
      flush_swr();
      finished = true;
      check_complete();
      return false;
    }
    if (!skip_known) {
      int64_t pts = f->best_effort_timestamp;
      double t = 0;
      if (pts != AV_NOPTS_VALUE && seeked) {
        const AVStream* st = in.stream();
        t = pts * av_q2d(st->time_base);
        if (st->start_time != AV_NOPTS_VALUE) t -= st->start_time * av_q2d(st->time_base);
      }
      pending_skip = std::max<int64_t>(0, std::llround((opt.start_s - t) * out_rate));
      skip_known = true;
    }
    setup_swr(f);
    convert(f);
    return true;
  }

  // At a clean end of stream: fails on zero samples and on a stream shorter than its header says.
  void check_complete() {
    if (produced == 0) {
      if (in.frames_decoded() > 0 && opt.start_s > 0) {
        MMREF_FAIL("'{}': no audio samples at or after start_s = {} s (the file is shorter)", in.path(),
                   opt.start_s);
      }
      MMREF_FAIL("'{}': cannot decode: no audio samples{} (empty, truncated or not an audio file)", in.path(),
                 in.read_error() ? ": " + in.read_error_text() : std::string());
    }
    double declared = declared_duration(in);
    if (declared > 0) {
      double got = opt.start_s + static_cast<double>(produced) / out_rate;
      double want = opt.duration_s > 0 ? std::min(declared, opt.start_s + opt.duration_s) : declared;
      // Lossy codecs count encoder priming and padding in the header (mp3: about 1100 + up to 1152
      // samples), so allow a few codec frames on top of 50 ms + 1%.
      const AVCodecParameters* par = in.stream()->codecpar;
      const int frame = std::max(par->frame_size, in.codec()->frame_size);
      const double slack = 0.05 + 0.01 * want + 3.0 * frame / std::max(1, par->sample_rate);
      if (got < want - slack) {
        MMREF_FAIL(
            "'{}': truncated: the header says {:.3f} s of audio but only {:.3f} s could be "
            "decoded",
            in.path(), declared, got);
      }
    }
  }

  // Removes up to n samples from the fifo as a (out_channels, n) tensor.
  at::Tensor take(int64_t n) {
    n = std::min(n, available());
    at::Tensor t = at::empty({out_channels, n}, at::kFloat);
    float* dst = t.data_ptr<float>();
    if (out_channels == in_channels) {
      for (int c = 0; c < in_channels; ++c) std::copy_n(fifo[c].data() + head, n, dst + c * n);
    } else if (out_channels == 1) {
      const float inv = 1.0f / in_channels;
      std::fill_n(dst, n, 0.0f);
      for (int c = 0; c < in_channels; ++c) {
        const float* src = fifo[c].data() + head;
        for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
      }
      for (int64_t i = 0; i < n; ++i) dst[i] *= inv;
    } else {  // mono -> out_channels
      for (int c = 0; c < out_channels; ++c) std::copy_n(fifo[0].data() + head, n, dst + c * n);
    }
    head += n;
    emitted += n;
    // Compact once the consumed prefix dominates, so the fifo stays about one chunk long.
    if (head > 65536 && head * 2 > fifo[0].size()) {
      for (auto& v : fifo) v.erase(v.begin(), v.begin() + head);
      head = 0;
    }
    return t;
  }
};

AudioStreamReader::AudioStreamReader(const std::string& path, const AudioOptions& opt)
    : impl_(std::make_unique<Impl>(path, opt)) {}
AudioStreamReader::~AudioStreamReader() = default;
int AudioStreamReader::sample_rate() const { return impl_->out_rate; }
int AudioStreamReader::channels() const { return impl_->out_channels; }

bool AudioStreamReader::read(at::Tensor& chunk, int64_t max_frames) {
  if (max_frames <= 0)
    MMREF_FAIL("'{}': AudioStreamReader::read: max_frames must be > 0, got {}", impl_->in.path(), max_frames);
  while (impl_->available() < max_frames && impl_->decode_more()) {
  }
  if (impl_->available() == 0) {
    chunk = at::Tensor();
    return false;
  }
  chunk = impl_->take(max_frames);
  return true;
}

at::Tensor load_audio(const std::string& path, const AudioOptions& opt, int* sample_rate_out) {
  AudioStreamReader::Impl impl(path, opt);
  while (impl.decode_more()) {
  }
  if (sample_rate_out) *sample_rate_out = impl.out_rate;
  return impl.take(impl.available());
}

MediaInfo probe_media(const std::string& path) {
  InputStream in(path, AVMEDIA_TYPE_UNKNOWN, Kind::kMedia);  // audio if any, else video
  MediaInfo info;
  fill_media_info(in.fmt(), in.stream(), &info);
  return info;
}

void save_audio(const std::string& path, const at::Tensor& wav_in, int sample_rate) {
  std::string ext = extension(path);
  if (ext != "wav" && ext != "flac")
    MMREF_FAIL("'{}': save_audio writes .wav or .flac, not '.{}'", path, ext);
  if (sample_rate <= 0) MMREF_FAIL("'{}': sample_rate must be > 0, got {}", path, sample_rate);
  if (wav_in.dim() != 1 && wav_in.dim() != 2)
    MMREF_FAIL("'{}': audio must be (C, T) or (T), got {} dims", path, wav_in.dim());
  at::Tensor wav = (wav_in.dim() == 1 ? wav_in.unsqueeze(0) : wav_in).to(at::kFloat).cpu().contiguous();
  const int64_t C = wav.size(0), T = wav.size(1);
  if (C < 1 || C > 8) MMREF_FAIL("'{}': audio must have 1..8 channels, got {}", path, C);
  if (T == 0) MMREF_FAIL("'{}': refusing to write zero-length audio", path);

  const AVCodec* enc = avcodec_find_encoder(ext == "wav" ? AV_CODEC_ID_PCM_S16LE : AV_CODEC_ID_FLAC);
  OutputFile out(path, ext == "wav" ? "wav" : "flac", enc);
  AVCodecContext* ctx = out.codec();
  ctx->sample_fmt = AV_SAMPLE_FMT_S16;
  ctx->sample_rate = sample_rate;
  av_channel_layout_default(&ctx->ch_layout, static_cast<int>(C));
  ctx->time_base = AVRational{1, sample_rate};
  out.open();

  const int frame_size = ctx->frame_size > 0 ? ctx->frame_size : 4096;
  FramePtr frame = make_frame();
  const float* src = wav.data_ptr<float>();
  for (int64_t pos = 0; pos < T; pos += frame_size) {
    int n = static_cast<int>(std::min<int64_t>(frame_size, T - pos));
    av_frame_unref(frame.get());
    frame->nb_samples = n;
    frame->format = AV_SAMPLE_FMT_S16;
    frame->sample_rate = sample_rate;
    av_channel_layout_copy(&frame->ch_layout, &ctx->ch_layout);
    if (av_frame_get_buffer(frame.get(), 0) < 0) MMREF_FAIL("'{}': out of memory", path);
    auto* dst = reinterpret_cast<int16_t*>(frame->data[0]);
    // x * 32768 rounded and clipped: the decoder's s16 -> float is q / 32768, so a round trip is
    // exact up to the 16-bit rounding (SNR about 98 dB for a full-scale sine).
    for (int i = 0; i < n; ++i) {
      for (int64_t c = 0; c < C; ++c) {
        float x = src[c * T + pos + i];
        if (!std::isfinite(x)) MMREF_FAIL("'{}': audio contains NaN or Inf at sample {}", path, pos + i);
        float q = std::nearbyint(x * 32768.0f);
        dst[i * C + c] = static_cast<int16_t>(std::clamp(q, -32768.0f, 32767.0f));
      }
    }
    frame->pts = pos;
    out.write(frame.get());
  }
  out.finish();
}

}  // namespace mmref::data
