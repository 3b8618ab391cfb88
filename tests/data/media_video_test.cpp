// Video I/O tests (suite MediaVideo*): mp4 / gif / y4m round trips (exact frame counts and sizes,
// PSNR), fps resampling by timestamp, frame ranges, resizing, webm (vp8/vp9 made with the ffmpeg CLI)
// and OpenCV's sample vtest.avi when opencv-doc is installed.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='MediaVideo*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <ATen/Functions.h>

#include "media_test_util.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/video_io.h"

namespace mmref::data {
namespace {

using testing::have_ffmpeg;
using testing::run_ffmpeg;

class MediaVideo : public testing::MediaTest {};


// (T, 3, H, W) uint8: a smooth gradient background with a bright square moving 2 px per frame.
// flat = true: only 3 flat colours (for gif, whose palette then holds them exactly).
at::Tensor moving_pattern(int t, int h, int w, bool flat = false) {
  at::Tensor out = at::empty({t, 3, h, w}, at::kByte);
  auto a = out.accessor<uint8_t, 4>();
  for (int k = 0; k < t; ++k) {
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const bool in_square = x >= 2 * k % w && x < 2 * k % w + w / 4 && y >= h / 3 && y < h / 3 + h / 4;
        uint8_t r, g, b;
        if (in_square) {
          r = 230, g = 200, b = 40;
        } else if (flat) {
          r = 20, g = 60, b = (y < h / 2) ? 180 : 100;
        } else {
          r = static_cast<uint8_t>(30 + 150 * x / w), g = static_cast<uint8_t>(40 + 120 * y / h),
          b = static_cast<uint8_t>(90 + 60 * (x + y) / (w + h));
        }
        a[k][0][y][x] = r, a[k][1][y][x] = g, a[k][2][y][x] = b;
      }
    }
  }
  return out;
}

double psnr(const at::Tensor& a, const at::Tensor& b) {
  double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
  return 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-12));
}

TEST_F(MediaVideo, Mp4RoundTripKeepsFramesSizeAndQuality) {
  at::Tensor v = moving_pattern(30, 48, 64);
  save_video(path("a.mp4"), v, 30);
  MediaInfo info;
  at::Tensor back = load_video(path("a.mp4"), {}, &info);
  ASSERT_EQ(back.sizes(), v.sizes());
  EXPECT_EQ(back.scalar_type(), at::kByte);
  EXPECT_GT(psnr(back, v), 30.0);
  EXPECT_EQ(info.num_frames, 30);
  EXPECT_NEAR(info.fps, 30.0, 1e-6);
  EXPECT_NEAR(info.duration_s, 1.0, 0.05);
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 48);
  EXPECT_TRUE(info.has_video);
  EXPECT_FALSE(info.has_audio);
  const bool x264 = std::system("ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264") == 0;
  EXPECT_EQ(info.codec, x264 ? "h264" : "mpeg4");
  EXPECT_THROW(save_video(path("odd.mp4"), moving_pattern(2, 47, 64), 30), Error);
}

TEST_F(MediaVideo, GifRoundTripIsExactForFewColours) {
  at::Tensor v = moving_pattern(12, 30, 41, /*flat=*/true);  // odd width is fine for gif
  save_video(path("a.gif"), v, 10);
  MediaInfo info;
  at::Tensor back = load_video(path("a.gif"), {}, &info);
  ASSERT_EQ(back.sizes(), v.sizes());
  EXPECT_TRUE(at::equal(back, v)) << "psnr " << psnr(back, v);
  EXPECT_EQ(info.codec, "gif");
  EXPECT_NEAR(info.fps, 10.0, 0.5);
  // Smooth content (more than 256 colours) goes through the palette: still close.
  at::Tensor smooth = moving_pattern(8, 32, 32);
  save_video(path("s.gif"), smooth, 25);
  at::Tensor sb = load_video(path("s.gif"));
  ASSERT_EQ(sb.sizes(), smooth.sizes());
  EXPECT_GT(psnr(sb, smooth), 28.0);
}

TEST_F(MediaVideo, Y4mRoundTripIsNearLossless) {
  at::Tensor v = moving_pattern(7, 21, 35);  // odd sizes: y4m is 4:4:4
  save_video(path("a.y4m"), v, 25);
  at::Tensor back = load_video(path("a.y4m"));
  ASSERT_EQ(back.sizes(), v.sizes());
  EXPECT_GT(psnr(back, v), 40.0);  // only the RGB <-> YCbCr rounding
}

TEST_F(MediaVideo, FpsResamplingByTimestamp) {
  at::Tensor v = moving_pattern(30, 32, 48);
  save_video(path("a.y4m"), v, 30);
  at::Tensor native = load_video(path("a.y4m"));
  ASSERT_EQ(native.size(0), 30);
  VideoOptions half;
  half.fps = 15;
  at::Tensor h = load_video(path("a.y4m"), half);
  ASSERT_EQ(h.size(0), 15);
  for (int k = 0; k < 15; ++k) EXPECT_TRUE(at::equal(h[k], native[2 * k])) << "frame " << k;
  VideoOptions dbl;
  dbl.fps = 60;
  at::Tensor d = load_video(path("a.y4m"), dbl);
  ASSERT_EQ(d.size(0), 60);
  for (int k = 0; k < 60; ++k) EXPECT_TRUE(at::equal(d[k], native[k / 2])) << "frame " << k;
  VideoOptions ten;  // 30 -> 10: every third frame
  ten.fps = 10;
  at::Tensor t = load_video(path("a.y4m"), ten);
  ASSERT_EQ(t.size(0), 10);
  EXPECT_TRUE(at::equal(t[3], native[9]));
  // Same on an mp4 (timestamps from the mp4 muxer's time base, not frame indices).
  save_video(path("a.mp4"), v, 30);
  at::Tensor mn = load_video(path("a.mp4"));
  at::Tensor mh = load_video(path("a.mp4"), half);
  ASSERT_EQ(mh.size(0), 15);
  EXPECT_TRUE(at::equal(mh[7], mn[14]));
}

TEST_F(MediaVideo, FrameRangeAndResize) {
  at::Tensor v = moving_pattern(20, 40, 60);
  save_video(path("a.mp4"), v, 25);
  at::Tensor full = load_video(path("a.mp4"));
  VideoOptions o;
  o.start_frame = 5;
  o.num_frames = 10;
  at::Tensor part = load_video(path("a.mp4"), o);
  ASSERT_EQ(part.size(0), 10);
  EXPECT_TRUE(at::equal(part, full.slice(0, 5, 15)));
  o.start_frame = 15;  // asks for more than is left: what exists
  EXPECT_EQ(load_video(path("a.mp4"), o).size(0), 5);
  o.start_frame = 20;  // nothing left
  EXPECT_THROW(load_video(path("a.mp4"), o), Error);
  VideoOptions r;
  r.width = 30;  // height follows the aspect ratio
  at::Tensor small = load_video(path("a.mp4"), r);
  ASSERT_EQ(small.sizes(), (std::vector<int64_t>{20, 3, 20, 30}));
  // A downscaled frame is close to the area average of the full one.
  at::Tensor pooled = full.to(at::kFloat).view({20, 3, 20, 2, 30, 2}).mean({3, 5});
  EXPECT_GT(psnr(small, pooled), 25.0);
  r.width = 16, r.height = 16;
  EXPECT_EQ(load_video(path("a.mp4"), r).sizes(), (std::vector<int64_t>{20, 3, 16, 16}));
}

TEST_F(MediaVideo, DecodesWebmVp8AndVp9MadeByFfmpeg) {
  if (!have_ffmpeg()) GTEST_SKIP() << "the ffmpeg binary is not installed (apt-get install ffmpeg)";
  at::Tensor v = moving_pattern(15, 48, 64);
  save_video(path("src.y4m"), v, 15);
  for (const char* codec : {"libvpx", "libvpx-vp9"}) {
    SCOPED_TRACE(codec);
    const std::string out = path(std::string(codec) + ".webm");
    ASSERT_TRUE(run_ffmpeg("-i " + path("src.y4m") + " -c:v " + codec + " -crf 10 -b:v 0 " + out));
    MediaInfo info;
    at::Tensor back = load_video(out, {}, &info);
    ASSERT_EQ(back.sizes(), v.sizes());
    EXPECT_GT(psnr(back, v), 28.0);
    EXPECT_EQ(info.codec, std::string(codec) == "libvpx" ? "vp8" : "vp9");
  }
}

TEST_F(MediaVideo, DecodesOpencvVtestAvi) {
  const std::string avi = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
  if (!fs::exists(avi)) GTEST_SKIP() << avi << " not found (Debian package opencv-doc)";
  MediaInfo info = probe_media(avi);
  EXPECT_EQ(info.width, 768);
  EXPECT_EQ(info.height, 576);
  EXPECT_GT(info.num_frames, 100);
  VideoOptions o;
  o.num_frames = 12;
  o.width = 192;
  at::Tensor v = load_video(avi, o);
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{12, 3, 144, 192}));
  // A real scene: not flat, and consecutive frames differ (people walking) but not completely.
  EXPECT_GT(v.to(at::kFloat).std().item<double>(), 20.0);
  double d = psnr(v[0], v[1]);
  EXPECT_GT(d, 20.0);
  EXPECT_LT(d, 60.0);
}

}  // namespace
}  // namespace mmref::data
