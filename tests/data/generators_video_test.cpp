// Corpus generator tests, video side (suites CorpusVideo*): clips have the frame counts and sizes their
// manifest says, moving-shape captions match the motion in the pixels, lavfi clips come from the
// ffmpeg CLI, and video_real cuts 16-frame 64x64 clips from opencv-doc's sample videos.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='CorpusVideo*'
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/generators/corpus.h"
#include "data/generators/gen_common.h"
#include "data/media/video_io.h"

namespace mmref::data {
namespace {

namespace sfs = std::filesystem;

// Centroid (x, y) of the pixels far from the (40, 40, 40) background in frame t of (T, 3, H, W).
std::array<double, 2> centroid(const at::Tensor& v, int64_t t) {
  at::Tensor f = v[t].to(at::kFloat);                             // (3, H, W)
  at::Tensor mask = ((f - 40).abs().sum(0) > 90).to(at::kFloat);  // (H, W)
  const double n = mask.sum().item<double>();
  if (n == 0) return {-1, -1};
  at::Tensor xs = at::arange(f.size(2), at::kFloat).view({1, -1});
  at::Tensor ys = at::arange(f.size(1), at::kFloat).view({-1, 1});
  return {(mask * xs).sum().item<double>() / n, (mask * ys).sum().item<double>() / n};
}

TEST(CorpusVideo, FrameCountsCaptionsAndMotion) {
  if (gen::find_program("ffmpeg").empty()) GTEST_SKIP() << "the ffmpeg program is not installed";
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_video");
  o.count = 14;
  o.seed = 2;
  o.quiet = true;
  make_corpus("video", o);
  std::vector<ManifestEntry> all;
  for (const std::string s : {"train", "test"}) {
    for (auto& e : read_manifest(o.out + "/" + s + ".jsonl")) all.push_back(e);
  }
  ASSERT_EQ(all.size(), 14u);
  std::map<std::string, int> sources;
  int moving_checked = 0;
  for (const auto& e : all) {
    const int64_t frames = e.extra["frames"];
    const int size = e.extra["width"];
    EXPECT_GE(frames, 8);
    EXPECT_LE(frames, 32);
    EXPECT_GE(size, 32);
    EXPECT_LE(size, 128);
    at::Tensor v = load_video(e.path);
    EXPECT_EQ(v.size(0), frames) << e.path;
    EXPECT_EQ(v.size(2), size) << e.path;
    EXPECT_EQ(v.size(3), size) << e.path;
    EXPECT_NEAR(e.duration, static_cast<double>(frames) / 8.0, 1e-9);
    EXPECT_FALSE(e.text.empty());
    const std::string src = e.extra["source"];
    sources[src]++;
    if (src == "shapes") {
      ASSERT_NE(e.text.find(" moving "), std::string::npos) << e.text;
      auto a = centroid(v, 0), b = centroid(v, frames - 1);
      ASSERT_GE(a[0], 0) << e.path;
      const std::string dir = e.text.substr(e.text.rfind(' ') + 1);
      const double dx = b[0] - a[0], dy = b[1] - a[1], d = 0.4 * size;
      const double along = (dir == "left" || dir == "right") ? dx : dy;
      const double sign = (dir == "left" || dir == "up") ? -1.0 : 1.0;
      EXPECT_GT(sign * along, d) << e.text << " dx " << dx << " dy " << dy;
      ++moving_checked;
    }
  }
  EXPECT_EQ(sources["shapes"], 8);  // i % 10 >= 3 for i in 0..13: 3..9 and 13
  EXPECT_EQ(moving_checked, 8);
  // captions.jsonl lists every clip.
  int rows = 0;
  std::istringstream in(fs::read_file(o.out + "/captions.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_TRUE(fs::exists(o.out + "/" + j["file"].get<std::string>()));
    EXPECT_FALSE(j["caption"].get<std::string>().empty());
    ++rows;
  }
  EXPECT_EQ(rows, 14);
  EXPECT_EQ(make_corpus("video", o).rfind("up to date", 0), 0u);
  sfs::remove_all(o.out);
}

TEST(CorpusVideo, RealClipsFromOpencvSamples) {
  if (!fs::exists("/usr/share/doc/opencv-doc/examples/data/vtest.avi")) {
    GTEST_SKIP() << "opencv-doc (sample videos) not installed";
  }
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_video_real");
  o.count = 6;
  o.quiet = true;
  make_corpus("video_real", o);
  auto entries = read_manifest(o.out + "/train.jsonl");
  ASSERT_EQ(entries.size(), 6u);
  bool vtest = false;
  for (const auto& e : entries) {
    at::Tensor v = load_video(e.path);
    EXPECT_EQ(v.size(0), 16) << e.path;
    EXPECT_EQ(v.size(2), 64);
    EXPECT_EQ(v.size(3), 64);
    EXPECT_EQ(e.text.rfind("a short clip from the opencv sample video ", 0), 0u) << e.text;
    vtest = vtest || e.text.find("vtest") != std::string::npos;
  }
  EXPECT_TRUE(vtest);
  sfs::remove_all(o.out);
}

}  // namespace
}  // namespace mmref::data

namespace mmref::data {
namespace {

// The default video corpus (300 clips, about 5 s on 2 cores) and every opencv sample clip (under 1 s).
TEST(CorpusVideoDefault, DefaultCorpora) {
  if (gen::find_program("ffmpeg").empty()) GTEST_SKIP() << "the ffmpeg program is not installed";
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_video_default");
  o.quiet = true;
  std::cout << make_corpus("video", o) << "\n";
  auto meta = nlohmann::json::parse(fs::read_file(o.out + "/corpus.json"));
  EXPECT_EQ(meta["stats"]["train"].get<int>() + meta["stats"]["test"].get<int>(), 300);
  EXPECT_EQ(meta["stats"]["sources"]["shapes"], 210);
  sfs::remove_all(o.out);
  if (fs::exists("/usr/share/doc/opencv-doc/examples/data/vtest.avi")) {
    o.out = fs::make_temp_dir("corpus_video_real_default");
    std::cout << make_corpus("video_real", o) << "\n";
    auto m2 = nlohmann::json::parse(fs::read_file(o.out + "/corpus.json"));
    EXPECT_GE(m2["stats"]["train"].get<int>() + m2["stats"]["test"].get<int>(), 49);  // vtest alone: 795 / 16
    sfs::remove_all(o.out);
  }
}

}  // namespace
}  // namespace mmref::data
