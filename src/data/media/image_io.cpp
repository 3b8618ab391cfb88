// Image decode (png, jpeg, bmp, webp, tiff, gif first frame -> (3, H, W) RGB) and encode (.png,
// .jpg/.jpeg): see image_io.h. Decoding is strict (AV_EF_EXPLODE | AV_EF_CRCCHECK): a damaged image
// is an error, not a half-grey picture. Encoders produce a complete file per frame (PNG signature ...
// IEND, JFIF SOI ... EOI), so no muxer is needed: the packet is the file.
#include "data/media/image_io.h"

#include <algorithm>
#include <cmath>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/media/media_common.h"

namespace mmref::data {

using namespace media;

namespace {
std::string shape_str(const at::Tensor& t) {
  std::string s = "(";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + ")";
}
}  // namespace

at::Tensor load_image(const std::string& path, bool to_float) {
  InputStream in(path, AVMEDIA_TYPE_VIDEO, Kind::kImage, /*strict=*/true);
  AVFrame* f = in.next();
  if (!f) {
    MMREF_FAIL("'{}': cannot decode: no picture{} (truncated or not an image file)", path,
               in.read_error() ? ": " + in.read_error_text() : std::string());
  }
  if (f->width <= 0 || f->height <= 0)
    MMREF_FAIL("'{}': cannot decode: the image is {}x{} (truncated or not an image file)", path, f->width,
               f->height);
  at::Tensor img = at::empty({3, f->height, f->width}, at::kByte);
  SwsPtr sws;
  try {
    frame_to_rgb_planes(sws, f, img.data_ptr<uint8_t>(), f->width, f->height);
  } catch (const Error& e) {
    MMREF_FAIL("'{}': {}", path, e.what());
  }
  if (to_float) return img.to(at::kFloat).div_(255.0f);
  return img;
}

void save_image(const std::string& path, const at::Tensor& img_in, int jpeg_quality) {
  std::string ext = extension(path);
  const bool png = ext == "png";
  if (!png && ext != "jpg" && ext != "jpeg")
    MMREF_FAIL("'{}': save_image writes .png, .jpg or .jpeg, not '.{}'", path, ext);
  if (img_in.dim() != 3 || (img_in.size(0) != 3 && img_in.size(0) != 1))
    MMREF_FAIL("'{}': image must be (3, H, W) or (1, H, W), got {}", path, shape_str(img_in));
  if (img_in.size(1) <= 0 || img_in.size(2) <= 0 || img_in.size(1) > 32768 || img_in.size(2) > 32768)
    MMREF_FAIL("'{}': image size {}x{} is empty or too large", path, img_in.size(2), img_in.size(1));
  if (jpeg_quality < 1 || jpeg_quality > 100)
    MMREF_FAIL("'{}': jpeg_quality must be in 1..100, got {}", path, jpeg_quality);
  at::Tensor img = img_in.cpu();
  if (img.scalar_type() != at::kByte) {
    img = img.to(at::kFloat).clamp(0.0, 1.0).mul(255.0).round().to(at::kByte);
  }
  img = img.contiguous();
  const int C = static_cast<int>(img.size(0)), H = static_cast<int>(img.size(1)),
            W = static_cast<int>(img.size(2));
  const uint8_t* src = img.data_ptr<uint8_t>();
  init_ffmpeg();
  clear_last_log();

  const AVCodec* enc = avcodec_find_encoder(png ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG);
  if (!enc) MMREF_FAIL("'{}': this FFmpeg build has no {} encoder", path, png ? "png" : "mjpeg");
  CodecCtxPtr ctx(avcodec_alloc_context3(enc));
  FramePtr frame = make_frame();
  PacketPtr pkt = make_packet();
  if (!ctx) MMREF_FAIL("'{}': FFmpeg out of memory", path);
  ctx->width = W;
  ctx->height = H;
  ctx->time_base = AVRational{1, 25};
  if (png) {
    ctx->pix_fmt = C == 3 ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_GRAY8;
  } else {
    // 4:4:4 full range: no chroma subsampling, so quality 95 keeps fine colour detail (PSNR > 40 dB
    // on natural images, about 6 dB more than 4:2:0 on noisy test patterns).
    ctx->pix_fmt = AV_PIX_FMT_YUVJ444P;
    ctx->color_range = AVCOL_RANGE_JPEG;
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    // quality 100 -> qscale 1 (finest), 1 -> 31 (coarsest), linear in between.
    const int q = 1 + (100 - jpeg_quality) * 30 / 99;
    ctx->global_quality = FF_QP2LAMBDA * q;
    ctx->qmin = ctx->qmax = q;
  }
  int err = avcodec_open2(ctx.get(), enc, nullptr);
  if (err < 0) MMREF_FAIL("'{}': cannot open the {} encoder: {}", path, enc->name, av_error_text(err));

  frame->format = ctx->pix_fmt;
  frame->width = W;
  frame->height = H;
  frame->color_range = ctx->color_range;
  if (av_frame_get_buffer(frame.get(), 0) < 0) MMREF_FAIL("'{}': out of memory", path);
  const size_t plane = static_cast<size_t>(W) * H;
  if (png && C == 3) {
    for (int y = 0; y < H; ++y) {
      uint8_t* row = frame->data[0] + static_cast<size_t>(y) * frame->linesize[0];
      for (int x = 0; x < W; ++x) {
        const size_t i = static_cast<size_t>(y) * W + x;
        row[3 * x] = src[i];
        row[3 * x + 1] = src[plane + i];
        row[3 * x + 2] = src[2 * plane + i];
      }
    }
  } else if (C == 1 && png) {
    for (int y = 0; y < H; ++y)
      std::copy_n(src + static_cast<size_t>(y) * W, W,
                  frame->data[0] + static_cast<size_t>(y) * frame->linesize[0]);
  } else {
    at::Tensor rgb = C == 3 ? img : img.expand({3, H, W}).contiguous();
    SwsPtr sws;
    rgb_planes_to_frame(sws, rgb.data_ptr<uint8_t>(), frame.get());
  }
  if (!png) frame->quality = ctx->global_quality;
  frame->pts = 0;

  std::string bytes;
  err = avcodec_send_frame(ctx.get(), frame.get());
  if (err >= 0) err = avcodec_send_frame(ctx.get(), nullptr);
  while (err >= 0) {
    err = avcodec_receive_packet(ctx.get(), pkt.get());
    if (err < 0) break;
    bytes.append(reinterpret_cast<const char*>(pkt->data), pkt->size);
    av_packet_unref(pkt.get());
  }
  if (err != AVERROR_EOF) MMREF_FAIL("'{}': encoding failed: {}", path, av_error_text(err));
  if (bytes.empty()) MMREF_FAIL("'{}': the encoder produced no data", path);
  fs::atomic_write(path, bytes);
}

}  // namespace mmref::data
