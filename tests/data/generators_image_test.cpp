// Corpus generator tests, image side (suites CorpusImages*, CorpusDigits*, CorpusPhotos*): scenes are
// deterministic per seed (same bytes), captions match drawn pixels, held-out pairs stay in `heldout`,
// the 5000 opencv digits, the skimage photos, and the incremental check.
//
// Hand-checked scene (64 px): "two large blue circles above a small green triangle" (zero jitter)
//   main objects in a row at y = 0.25*64 = 16, x = 32 -/+ 0.15*64 -> (22.4, 16), (41.6, 16); radius 0.14*64
//   reference at (32, 48), radius 0.09*64 = 5.76; background (40, 40, 40) at the corners.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='Corpus*'
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/generators/corpus.h"
#include "data/generators/generators.h"
#include "data/media/image_io.h"

namespace mmref::data {
namespace {

namespace sfs = std::filesystem;

std::array<int, 3> pixel(const at::Tensor& img, int x, int y) {
  auto a = img.accessor<uint8_t, 3>();
  return {a[0][y][x], a[1][y][x], a[2][y][x]};
}
std::array<int, 3> rgb(int colour) {
  const auto& c = gen::kColourRgb[static_cast<size_t>(colour)];
  return {c[0], c[1], c[2]};
}

TEST(CorpusImages, HandCheckedScene) {
  gen::Scene s;
  s.obj = {/*shape=*/0, /*colour=*/2, /*large=*/true};  // blue circle
  s.count = 2;
  s.relation = 0;                                        // above
  s.ref = {/*shape=*/2, /*colour=*/1, /*large=*/false};  // green triangle
  EXPECT_EQ(gen::scene_caption(s), "two large blue circles above a small green triangle");
  auto c = gen::scene_centres(s, 64);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_NEAR(c[0][0], 22.4, 1e-9);
  EXPECT_NEAR(c[0][1], 16.0, 1e-9);
  EXPECT_NEAR(c[1][0], 41.6, 1e-9);
  EXPECT_NEAR(c[2][0], 32.0, 1e-9);
  EXPECT_NEAR(c[2][1], 48.0, 1e-9);
  at::Tensor img = gen::render_scene(s, 64);
  EXPECT_EQ(pixel(img, 22, 16), rgb(2));
  EXPECT_EQ(pixel(img, 41, 16), rgb(2));
  EXPECT_EQ(pixel(img, 32, 48), rgb(1));
  EXPECT_EQ(pixel(img, 32, 16), (std::array<int, 3>{40, 40, 40}));  // between the two circles
  EXPECT_EQ(pixel(img, 0, 0), (std::array<int, 3>{40, 40, 40}));
  EXPECT_EQ(pixel(img, 63, 63), (std::array<int, 3>{40, 40, 40}));
  // Triangle points up: the apex row above the centre is narrower than the base row below it.
  auto row_width = [&](int y) {
    int n = 0;
    for (int x = 0; x < 64; ++x) n += pixel(img, x, y) == rgb(1);
    return n;
  };
  EXPECT_LT(row_width(45), row_width(51));

  gen::Scene t;
  t.obj = {/*shape=*/1, /*colour=*/0, /*large=*/false};  // red square
  t.count = 1;
  t.position = 0;  // left
  EXPECT_EQ(gen::scene_caption(t), "a small red square on the left");
  at::Tensor im2 = gen::render_scene(t, 32);
  EXPECT_EQ(pixel(im2, 8, 16), rgb(0));  // (0.25 * 32, 0.5 * 32)
  int red_right = 0;
  for (int y = 0; y < 32; ++y)
    for (int x = 16; x < 32; ++x) red_right += pixel(im2, x, y) == rgb(0);
  EXPECT_EQ(red_right, 0);
}

TEST(CorpusImages, DeterministicCaptionsMatchPixelsHeldoutPairs) {
  CorpusOptions o;
  o.count = 40;
  o.seed = 5;
  o.quiet = true;
  const std::string a = fs::make_temp_dir("corpus_img_a"), b = fs::make_temp_dir("corpus_img_b"),
                    c = fs::make_temp_dir("corpus_img_c");
  o.out = a;
  make_corpus("images", o);
  o.out = b;
  make_corpus("images", o);
  o.out = c;
  o.seed = 6;
  make_corpus("images", o);
  int differ = 0;
  for (int i = 0; i < 40; ++i) {
    for (int sz : {32, 64}) {
      const std::string rel = fmt::format("/{}/img_{:06d}.png", sz, i);
      EXPECT_EQ(fs::read_file(a + rel), fs::read_file(b + rel)) << rel;
      differ += fs::read_file(a + rel) != fs::read_file(c + rel);
    }
  }
  EXPECT_GT(differ, 60);

  std::vector<std::string> heldout_words;
  for (const auto& p : gen::heldout_pairs()) {
    heldout_words.push_back(gen::kColourNames[static_cast<size_t>(p[0])] + " " +
                            gen::kShapeNames[static_cast<size_t>(p[1])]);
  }
  std::map<std::string, int> split_n;
  for (int sz : {32, 64}) {
    for (const std::string split : {"train", "test", "heldout"}) {
      for (const auto& e : read_manifest(fmt::format("{}/{}/{}.jsonl", a, sz, split))) {
        if (sz == 32) split_n[split]++;
        bool has_pair = false;
        for (const auto& w : heldout_words) has_pair = has_pair || e.text.find(w) != std::string::npos;
        EXPECT_EQ(has_pair, split == "heldout") << e.text;
        // Every object's centre pixel in the PNG has the colour the caption names.
        at::Tensor img = load_image(e.path);
        EXPECT_EQ(img.size(1), sz);
        for (const auto& obj : e.extra["objects"]) {
          const std::string colour = obj["colour"];
          EXPECT_NE(e.text.find(colour), std::string::npos) << e.text;
          EXPECT_NE(e.text.find(obj["shape"].get<std::string>()), std::string::npos) << e.text;
          int ci = static_cast<int>(std::find(gen::kColourNames.begin(), gen::kColourNames.end(), colour) -
                                    gen::kColourNames.begin());
          EXPECT_EQ(
              pixel(img, static_cast<int>(obj["x"].get<double>()), static_cast<int>(obj["y"].get<double>())),
              rgb(ci))
              << e.path << " " << e.text;
        }
      }
    }
  }
  EXPECT_EQ(split_n["heldout"], 4);
  EXPECT_EQ(split_n["test"], 4);
  EXPECT_EQ(split_n["train"], 32);
  auto pairs = nlohmann::json::parse(fs::read_file(a + "/heldout_pairs.json"));
  EXPECT_EQ(pairs["heldout_pairs"].size(), 4u);

  // Incremental: same options -> nothing done; a deleted file -> made again.
  o.out = a;
  o.seed = 5;
  EXPECT_EQ(make_corpus("images", o).rfind("up to date", 0), 0u);
  sfs::remove(a + "/64/img_000003.png");
  EXPECT_EQ(make_corpus("images", o).rfind("wrote", 0), 0u);
  EXPECT_EQ(fs::read_file(a + "/64/img_000003.png"), fs::read_file(b + "/64/img_000003.png"));
  for (const auto& d : {a, b, c}) sfs::remove_all(d);
}

const char* kDigits = "/usr/share/doc/opencv-doc/examples/data/digits.png";

TEST(CorpusDigits, FiveThousandLabelledCrops) {
  if (!fs::exists(kDigits)) GTEST_SKIP() << "opencv-doc (digits.png) not installed";
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_digits");
  o.quiet = true;
  make_corpus("digits", o);
  auto train = read_manifest(o.out + "/train.jsonl");
  auto test = read_manifest(o.out + "/test.jsonl");
  EXPECT_EQ(train.size(), 4500u);
  EXPECT_EQ(test.size(), 500u);
  std::map<int, int> per_label;
  for (const auto* set : {&train, &test}) {
    for (const auto& e : *set) {
      const int label = e.extra["label"];
      per_label[label]++;
      EXPECT_EQ(e.text, std::to_string(label));
      EXPECT_EQ(label, e.extra["row"].get<int>() / 5);
    }
  }
  ASSERT_EQ(per_label.size(), 10u);
  for (const auto& [l, n] : per_label) EXPECT_EQ(n, 500) << l;
  // A crop is exactly its cell of digits.png.
  at::Tensor full = load_image(kDigits);
  const auto& e = test[17];
  const int row = e.extra["row"], col = e.extra["col"];
  at::Tensor crop = load_image(e.path);
  ASSERT_EQ(crop.size(1), 20);
  ASSERT_EQ(crop.size(2), 20);
  EXPECT_TRUE(at::equal(crop, full.slice(1, row * 20, row * 20 + 20).slice(2, col * 20, col * 20 + 20)));
  EXPECT_GT(crop.max().item<int>(), 100);  // not an empty cell
  sfs::remove_all(o.out);
}

TEST(CorpusPhotos, SkimagePhotosWithCaptions) {
  if (!fs::exists("/usr/lib/python3/dist-packages/skimage/data/astronaut.png")) {
    GTEST_SKIP() << "python3-skimage not installed";
  }
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_photos");
  o.quiet = true;
  make_corpus("photos", o);
  auto entries = read_manifest(o.out + "/all.jsonl");
  EXPECT_GE(entries.size(), 20u);
  bool astronaut = false, moto = false;
  for (const auto& e : entries) {
    if (e.text == "astronaut") {
      astronaut = true;
      at::Tensor img = load_image(e.path);
      EXPECT_EQ(img.size(1), 512);
      EXPECT_EQ(img.size(2), 512);
    }
    moto = moto || e.text == "motorcycle left";
    EXPECT_NE(e.text, "truncated");  // skimage's deliberately broken jpeg is skipped
  }
  EXPECT_TRUE(astronaut);
  EXPECT_TRUE(moto);
  sfs::remove_all(o.out);
}

}  // namespace
}  // namespace mmref::data

namespace mmref::data {
namespace {

// The default images corpus: 2000 scenes at 32 and 64 px (about 2 s on 2 cores).
TEST(CorpusImagesDefault, TwoThousandScenes) {
  CorpusOptions o;
  o.out = fs::make_temp_dir("corpus_images_default");
  o.quiet = true;
  std::cout << make_corpus("images", o) << "\n";
  auto meta = nlohmann::json::parse(fs::read_file(o.out + "/corpus.json"));
  EXPECT_EQ(meta["stats"]["splits"]["train"], 1600);
  EXPECT_EQ(meta["stats"]["splits"]["test"], 200);
  EXPECT_EQ(meta["stats"]["splits"]["heldout"], 200);
  // Captions vary: many distinct ones among 2000 scenes.
  std::set<std::string> captions;
  for (const auto& e : read_manifest(o.out + "/64/train.jsonl")) captions.insert(e.text);
  EXPECT_GT(captions.size(), 1000u);
  sfs::remove_all(o.out);
}

}  // namespace
}  // namespace mmref::data
