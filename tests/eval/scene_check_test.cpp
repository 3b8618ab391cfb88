// The shapes-corpus prompt-adherence checker (eval/scene_check.h): captions parse back into their
// scenes, the corpus's own renders pass every check, and wrong captions, blank images and noise fail.
#include <gtest/gtest.h>

#include <ATen/Functions.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "data/media/image_io.h"
#include "eval/harness.h"
#include "data/generators/generators.h"
#include "eval/scene_check.h"

namespace {

namespace gen = mmref::data::gen;
using mmref::eval::check_scene;
using mmref::eval::parse_scene_caption;

TEST(SceneCheck, CaptionsParseBackIntoTheirScenes) {
  // | caption                                                   | count size colour  shape    where      |
  // | "three small white circles on the left"                   | 3     small white   circle   left       |
  // | "a large blue square to the right of a small red triangle" | 1     large blue    square   right of (small red triangle) |
  auto c = parse_scene_caption("three small white circles on the left");
  EXPECT_EQ(c.count, 3);
  EXPECT_FALSE(c.large);
  EXPECT_EQ(gen::kColourNames[c.colour], "white");
  EXPECT_EQ(gen::kShapeNames[c.shape], "circle");
  EXPECT_EQ(gen::kPositionNames[c.position], "left");
  c = parse_scene_caption("a large blue square to the right of a small red triangle");
  EXPECT_EQ(c.count, 1);
  EXPECT_TRUE(c.large);
  EXPECT_EQ(gen::kRelationNames[c.relation], "to the right of");
  EXPECT_EQ(gen::kColourNames[c.ref_colour], "red");
  EXPECT_EQ(gen::kShapeNames[c.ref_shape], "triangle");
  EXPECT_FALSE(c.ref_large);
  // Every caption the generator makes parses to the scene it came from.
  for (uint64_t i = 0; i < 300; ++i) {
    gen::Rng rng(gen::derive_seed(5, 10, i));
    const gen::Scene s = gen::sample_scene(rng);
    const auto p = parse_scene_caption(gen::scene_caption(s));
    EXPECT_EQ(p.count, s.count);
    EXPECT_EQ(p.colour, s.obj.colour);
    EXPECT_EQ(p.shape, s.obj.shape);
    EXPECT_EQ(p.large, s.obj.large);
    EXPECT_EQ(p.relation, s.relation);
    if (s.relation < 0) {
      EXPECT_EQ(p.position, s.position);
    } else {
      EXPECT_EQ(p.ref_colour, s.ref.colour);
    }
  }
  EXPECT_THROW(parse_scene_caption("a purple cow on the left"), mmref::Error);
  EXPECT_THROW(parse_scene_caption("two large red squares over the rainbow"), mmref::Error);
}

// The corpus's own renders pass: every one at 64 px; at 32 px a small circle and a small square are a
// few pixels each (r = 2.9 px) and some are ambiguous, so at least 85% pass (measured: 88.4%). The task
// reports the real images' rate beside every generated one (real_scene_all) for this reason.
TEST(SceneCheck, CorpusRendersPassEveryCheck) {
  for (const int size : {64, 32}) {
    int all = 0, n = 500;
    int fail_colour = 0, fail_count = 0, fail_shape = 0, fail_size = 0, fail_position = 0;
    for (int i = 0; i < n; ++i) {
      gen::Rng rng(gen::derive_seed(11, 10, static_cast<uint64_t>(i)));
      const gen::Scene s = gen::sample_scene(rng);
      const at::Tensor img = gen::render_scene(s, size);
      const auto r = check_scene(img, parse_scene_caption(gen::scene_caption(s)));
      all += r.all();
      fail_colour += !r.colour, fail_count += !r.count, fail_shape += !r.shape, fail_size += !r.size;
      fail_position += !r.position;
      if (size == 64 || !r.all()) {
        EXPECT_TRUE(size == 32 || r.all()) << gen::scene_caption(s) << ": colour " << r.colour << " count " << r.count << " ("
                             << r.main_components << ") shape " << r.shape << " size " << r.size << " position "
                             << r.position;
      }
    }
    EXPECT_GE(all, size == 64 ? n : static_cast<int>(0.85 * n)) << "size " << size << ": failed colour " << fail_colour << ", count " << fail_count
                                                         << ", shape " << fail_shape << ", size " << fail_size
                                                         << ", position " << fail_position;
    // Float images in [0, 1] give the same answer as uint8.
    gen::Rng rng(gen::derive_seed(11, 10, 0));
    const gen::Scene s = gen::sample_scene(rng);
    const at::Tensor u8 = gen::render_scene(s, size);
    const auto cap = parse_scene_caption(gen::scene_caption(s));
    EXPECT_EQ(check_scene(u8, cap).all(), check_scene(u8.to(at::kFloat).div(255.0), cap).all());
  }
}

TEST(SceneCheck, WrongCaptionsBlankImagesAndNoiseFail) {
  gen::Rng rng(gen::derive_seed(3, 10, 7));
  gen::Scene s = gen::sample_scene(rng);
  s.relation = -1, s.position = 0, s.count = 2, s.obj.colour = 0, s.obj.shape = 1, s.obj.large = true;
  const at::Tensor img = gen::render_scene(s, 64);
  ASSERT_TRUE(check_scene(img, parse_scene_caption("two large red squares on the left")).all());
  EXPECT_FALSE(check_scene(img, parse_scene_caption("two large blue squares on the left")).colour);
  EXPECT_FALSE(check_scene(img, parse_scene_caption("three large red squares on the left")).count);
  EXPECT_FALSE(check_scene(img, parse_scene_caption("two large red circles on the left")).shape);
  EXPECT_FALSE(check_scene(img, parse_scene_caption("two large red triangles on the left")).shape);
  EXPECT_FALSE(check_scene(img, parse_scene_caption("two small red squares on the left")).size);
  EXPECT_FALSE(check_scene(img, parse_scene_caption("two large red squares on the right")).position);
  const at::Tensor blank = at::full({3, 64, 64}, 40, at::kByte);
  EXPECT_FALSE(check_scene(blank, parse_scene_caption("two large red squares on the left")).colour);
  at::manual_seed(0);
  const at::Tensor noise = at::rand({3, 32, 32});
  EXPECT_FALSE(check_scene(noise, parse_scene_caption("two large red squares on the left")).all());
  EXPECT_THROW(check_scene(at::zeros({1, 32, 32}), parse_scene_caption("a small red square on the left")),
               mmref::Error);
}

}  // namespace

namespace {

// `mmref eval` metric scene over a folder of rendered scenes + captions.jsonl: all pass; a wrong caption
// lowers scene_all and scene_colour by one image; a caption that is not a corpus caption fails the metric.
TEST(SceneCheck, HarnessMetricScoresAFolder) {
  const std::string d = mmref::fs::make_temp_dir("mmref_scene_");
  std::string jl;
  for (int i = 0; i < 8; ++i) {
    gen::Rng rng(gen::derive_seed(21, 10, static_cast<uint64_t>(i)));
    const gen::Scene s = gen::sample_scene(rng);
    const std::string f = d + "/img" + std::to_string(i) + ".png";
    mmref::data::save_image(f, gen::render_scene(s, 64));
    std::string cap = gen::scene_caption(s);
    if (i == 3) {  // a wrong colour
      const auto p = parse_scene_caption(cap);
      const std::string wrong = gen::kColourNames[static_cast<size_t>((p.colour + 1) % 8)];
      cap.replace(cap.find(gen::kColourNames[static_cast<size_t>(p.colour)]), gen::kColourNames[static_cast<size_t>(p.colour)].size(), wrong);
    }
    jl += nlohmann::json{{"path", f}, {"text", cap}}.dump() + "\n";
  }
  mmref::fs::atomic_write(d + "/captions.jsonl", jl);
  std::ofstream(d + "/e.yaml") << "eval: {out: " << d << "/res, bootstrap: 50}\nmetrics:\n  shapes: {metric: scene, images: "
                               << d << ", captions: " << d << "/captions.jsonl}\n";
  const auto s = mmref::eval::run_eval(d + "/e.yaml", {});
  ASSERT_EQ(s.failed, 0) << s.results.dump();
  ASSERT_EQ(s.results.size(), 6u);
  EXPECT_EQ(s.results[0].at("metric"), "scene_all");
  EXPECT_DOUBLE_EQ(s.results[0].at("value").get<double>(), 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(s.results[1].at("value").get<double>(), 7.0 / 8.0);  // colour
  EXPECT_EQ(s.results[0].at("n"), 8);
  EXPECT_TRUE(mmref::fs::exists(d + "/res/per_sample/shapes.csv"));
  std::ofstream(d + "/bad.jsonl") << nlohmann::json{{"path", d + "/img0.png"}, {"text", "a purple cow"}}.dump() << "\n";
  std::ofstream(d + "/f.yaml") << "eval: {out: " << d << "/res2}\nmetrics:\n  shapes: {metric: scene, images: " << d
                               << "/img0.png, captions: " << d << "/bad.jsonl}\n";
  const auto b = mmref::eval::run_eval(d + "/f.yaml", {});
  EXPECT_EQ(b.failed, 1) << b.results.dump();
  std::system(("rm -rf '" + d + "'").c_str());
}

}  // namespace
