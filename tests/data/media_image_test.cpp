// Image I/O tests (suite MediaImage*): png round trip (exact, RGB and gray), jpeg PSNR, conversion of
// RGBA / paletted / bmp / webp inputs made with the ffmpeg CLI, float output.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='MediaImage*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <ATen/Functions.h>

#include "media_test_util.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"

namespace mmref::data {
namespace {

using testing::have_ffmpeg;
using testing::run_ffmpeg;

class MediaImage : public testing::MediaTest {};


// Smooth gradients plus a little seeded noise: "natural-ish" content, (3, H, W) uint8.
at::Tensor test_image(int h, int w, int seed) {
  at::manual_seed(seed);
  at::Tensor y = at::arange(h, at::kFloat).div(h).view({1, h, 1});
  at::Tensor x = at::arange(w, at::kFloat).div(w).view({1, 1, w});
  at::Tensor base = at::cat({(x * 200 + 20).expand({1, h, w}), (y * 180 + 40).expand({1, h, w}),
                             ((x + y) * 90 + 30).expand({1, h, w})},
                            0);
  return (base + at::randn({3, h, w}) * 6).clamp(0, 255).round().to(at::kByte);
}

double psnr(const at::Tensor& a, const at::Tensor& b) {
  double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
  return 10 * std::log10(255.0 * 255.0 / std::max(mse, 1e-12));
}

void write_bytes(const std::string& p, const at::Tensor& t) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()), t.numel());
}

TEST_F(MediaImage, PngRoundTripIsExact) {
  at::Tensor img = test_image(37, 53, 1);  // odd sizes
  save_image(path("a.png"), img);
  at::Tensor back = load_image(path("a.png"));
  EXPECT_EQ(back.scalar_type(), at::kByte);
  ASSERT_EQ(back.sizes(), img.sizes());
  EXPECT_TRUE(at::equal(back, img));
  at::Tensor f = load_image(path("a.png"), /*to_float=*/true);
  EXPECT_EQ(f.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(f, img.to(at::kFloat) / 255));
  // Float input in [0, 1] is written as round(x * 255).
  save_image(path("f.png"), img.to(at::kFloat) / 255);
  EXPECT_TRUE(at::equal(load_image(path("f.png")), img));
  MediaInfo info = probe_media(path("a.png"));
  EXPECT_TRUE(info.has_video);
  EXPECT_EQ(info.width, 53);
  EXPECT_EQ(info.height, 37);
  EXPECT_EQ(info.codec, "png");
}

TEST_F(MediaImage, GrayscalePngBecomesThreeEqualChannels) {
  at::Tensor g = test_image(20, 31, 2).slice(0, 0, 1).contiguous();  // (1, H, W)
  save_image(path("g.png"), g);
  at::Tensor back = load_image(path("g.png"));
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{3, 20, 31}));
  for (int c = 0; c < 3; ++c) EXPECT_TRUE(at::equal(back[c], g[0])) << "channel " << c;
}

TEST_F(MediaImage, JpegPsnrAbove35dB) {
  at::Tensor img = test_image(96, 128, 3);
  save_image(path("a.jpg"), img, 95);
  at::Tensor back = load_image(path("a.jpg"));
  ASSERT_EQ(back.sizes(), img.sizes());
  double p95 = psnr(back, img);
  EXPECT_GT(p95, 35.0);
  save_image(path("b.jpeg"), img, 30);
  double p30 = psnr(load_image(path("b.jpeg")), img);
  EXPECT_LT(p30, p95);  // quality is honoured
  EXPECT_GT(p30, 25.0);
  EXPECT_LT(fs::file_size(path("b.jpeg")), fs::file_size(path("a.jpg")));
  save_image(path("g.jpg"), img.slice(0, 0, 1).contiguous());  // gray jpeg
  at::Tensor g = load_image(path("g.jpg"));
  EXPECT_GT(psnr(g[0], img[0]), 35.0);
}

TEST_F(MediaImage, RgbaPalettedBmpAndWebpInputsConvertToRgb) {
  if (!have_ffmpeg()) GTEST_SKIP() << "the ffmpeg binary is not installed (apt-get install ffmpeg)";
  const int h = 24, w = 33;
  at::Tensor rgb = test_image(h, w, 4);
  at::Tensor alpha = at::randint(0, 256, {1, h, w}, at::kByte);
  at::Tensor rgba_hwc = at::cat({rgb, alpha}, 0).permute({1, 2, 0}).contiguous();
  write_bytes(path("x.rgba"), rgba_hwc);
  const std::string raw = "-f rawvideo -pix_fmt rgba -s " + std::to_string(w) + "x" + std::to_string(h) +
                          " -i " + path("x.rgba") + " ";
  // RGBA png: colour kept exactly, alpha dropped.
  ASSERT_TRUE(run_ffmpeg(raw + path("rgba.png")));
  EXPECT_TRUE(at::equal(load_image(path("rgba.png")), rgb));
  // bmp (bgr24) is lossless too.
  ASSERT_TRUE(run_ffmpeg(raw + "-pix_fmt bgr24 " + path("a.bmp")));
  EXPECT_TRUE(at::equal(load_image(path("a.bmp")), rgb));
  // Paletted png of an image with 4 colours: the palette is exact.
  at::Tensor four = (at::arange(h * w).view({h, w}).remainder(4) * 80).to(at::kByte);
  at::Tensor pal_src =
      at::stack({four, 255 - four, (four.to(at::kInt) * 3 / 5).to(at::kByte)}, 0).contiguous();
  write_bytes(path("p.rgb"), pal_src.permute({1, 2, 0}).contiguous());
  ASSERT_TRUE(
      run_ffmpeg("-f rawvideo -pix_fmt rgb24 -s " + std::to_string(w) + "x" + std::to_string(h) + " -i " +
                 path("p.rgb") +
                 " -vf 'split[a][b];[a]palettegen=reserve_transparent=0[p];[b][p]paletteuse' -pix_fmt pal8 " +
                 path("pal.png")));
  EXPECT_EQ(probe_media(path("pal.png")).codec, "png");
  EXPECT_TRUE(at::equal(load_image(path("pal.png")), pal_src));
  // webp (lossy by default): decodes to the right size and close colours.
  ASSERT_TRUE(run_ffmpeg(raw + "-c:v libwebp -quality 95 " + path("a.webp")));
  at::Tensor webp = load_image(path("a.webp"));
  ASSERT_EQ(webp.sizes(), rgb.sizes());
  EXPECT_GT(psnr(webp, rgb), 25.0);
}

TEST_F(MediaImage, SaveRejectsBadArguments) {
  at::Tensor img = test_image(8, 8, 5);
  EXPECT_THROW(save_image(path("a.gif"), img), Error);
  EXPECT_THROW(save_image(path("a.png"), at::zeros({3, 0, 5}, at::kByte)), Error);
  EXPECT_THROW(save_image(path("a.png"), at::zeros({2, 4, 5}, at::kByte)), Error);
  EXPECT_THROW(save_image(path("a.png"), at::zeros({4, 5}, at::kByte)), Error);
  EXPECT_THROW(save_image(path("a.jpg"), img, 0), Error);
  EXPECT_FALSE(fs::exists(path("a.png")));
}

}  // namespace
}  // namespace mmref::data
