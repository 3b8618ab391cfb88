// `images`, `digits` and `photos` corpora (see corpus.h).
//
// images: scene i is drawn from Rng(derive_seed(seed, 10, i)), so any scene can be remade alone.
// A scene is a group of 1..3 identical objects (shape, colour, small/large) either at a position
// (left/right/top/bottom/center) or in a relation (above/below/to the left of/to the right of) to one
// reference object. Drawing is exact (no anti-aliasing): every pixel whose centre lies inside a shape
// has exactly the shape's colour, on a (40, 40, 40) background; objects never overlap.
// Every 10th scene (i % 10 == 9) contains one of the held-out colour+shape pairs (heldout_pairs());
// no other scene does. The others: i % 10 == 4 -> test, else train.
// Outputs: {32,64}/img_NNNNNN.png, {32,64}/{train,test,heldout}.jsonl (path, caption as text, split,
// extra: size, count, objects), captions.jsonl ({"file", "caption", "size", "split"}), heldout_pairs.json.
//
// digits: opencv-doc's samples digits.png (2000x1000: 100 columns x 50 rows of 20x20 cells; rows
// 5k..5k+4 are digit k) -> png/<digit>/<row>_<col>.png gray, split test when col % 10 == 9 (10%),
// manifests train.jsonl / test.jsonl (text = the digit, extra.label).
//
// photos: python3-skimage's data/*.png|*.jpg (and scikit-learn's datasets/images/*.jpg if installed)
// re-encoded as photos/<name>.png with the file name as caption ("motorcycle left"); files FFmpeg
// cannot decode (skimage ships a deliberately truncated.jpg) are skipped and counted.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/generators/generators.h"
#include "data/media/image_io.h"

namespace mmref::data::gen {

namespace sfs = std::filesystem;

const std::vector<std::string> kColourNames = {"red",     "green", "blue",   "yellow",
                                               "magenta", "cyan",  "orange", "white"};
const std::vector<std::array<uint8_t, 3>> kColourRgb = {{220, 30, 30},  {30, 180, 40},  {40, 80, 230},
                                                        {240, 220, 30}, {210, 40, 200}, {40, 210, 220},
                                                        {250, 140, 20}, {240, 240, 240}};
const std::vector<std::string> kShapeNames = {"circle", "square", "triangle"};
const std::vector<std::string> kPositionNames = {"left", "right", "top", "bottom", "center"};
const std::vector<std::string> kRelationNames = {"above", "below", "to the left of", "to the right of"};
const std::array<uint8_t, 3> kBackground = {40, 40, 40};

namespace {

const std::vector<std::string> kCountWords = {"", "a", "two", "three"};

double radius(bool large, int size) { return (large ? 0.14 : 0.09) * size; }

bool inside(int shape, double dx, double dy, double r) {
  switch (shape) {
    case 0:  // circle
      return dx * dx + dy * dy <= r * r;
    case 1:  // square of the same area as the circle would be too big; 0.85 r half-side
      return std::abs(dx) <= 0.85 * r && std::abs(dy) <= 0.85 * r;
    default: {  // upward triangle: apex (0, -r), base y = 0.8 r, half-width r at the base
      if (dy < -r || dy > 0.8 * r) return false;
      double half = r * (dy + r) / (1.8 * r);
      return std::abs(dx) <= half;
    }
  }
}

std::string object_words(const SceneObject& o, int count) {
  std::string shape = kShapeNames[static_cast<size_t>(o.shape)];
  if (count > 1) shape += "s";
  std::string size = o.large ? "large" : "small";
  return kCountWords[static_cast<size_t>(count)] + " " + size + " " +
         kColourNames[static_cast<size_t>(o.colour)] + " " + shape;
}

bool has_pair(const SceneObject& o) {
  for (const auto& p : heldout_pairs()) {
    if (o.colour == p[0] && o.shape == p[1]) return true;
  }
  return false;
}

bool scene_has_heldout(const Scene& s) { return has_pair(s.obj) || (s.relation >= 0 && has_pair(s.ref)); }

}  // namespace

std::vector<std::array<int, 2>> heldout_pairs() {
  // red triangle, blue square, green circle, white triangle
  return {{0, 2}, {2, 1}, {1, 0}, {7, 2}};
}

std::string scene_caption(const Scene& s) {
  std::string c = object_words(s.obj, s.count);
  if (s.relation >= 0) {
    return c + " " + kRelationNames[static_cast<size_t>(s.relation)] + " " + object_words(s.ref, 1);
  }
  static const std::vector<std::string> kWhere = {"on the left", "on the right", "at the top",
                                                  "at the bottom", "in the center"};
  return c + " " + kWhere[static_cast<size_t>(s.position)];
}

Scene sample_scene(Rng& rng) {
  Scene s;
  auto object = [&] {
    SceneObject o;
    o.shape = static_cast<int>(rng.below(3));
    o.colour = static_cast<int>(rng.below(static_cast<int64_t>(kColourNames.size())));
    o.large = rng.below(2) == 1;
    return o;
  };
  s.obj = object();
  s.count = static_cast<int>(rng.range(1, 3));
  if (rng.below(2) == 0) {
    s.position = static_cast<int>(rng.below(5));
  } else {
    s.relation = static_cast<int>(rng.below(4));
    do {
      s.ref = object();
    } while (s.ref.colour == s.obj.colour && s.ref.shape == s.obj.shape);
  }
  for (auto& j : s.jitter) j = static_cast<int8_t>(rng.range(-2, 2));
  return s;
}

std::vector<std::array<double, 2>> scene_centres(const Scene& s, int size) {
  const double S = size;
  std::vector<std::array<double, 2>> c;
  // A row (horizontal) or column of `n` objects centred on (x, y), 0.3 S apart.
  auto line = [&](double x, double y, int n, bool horizontal) {
    for (int k = 0; k < n; ++k) {
      double off = (k - (n - 1) / 2.0) * 0.3 * S;
      c.push_back({horizontal ? x + off : x, horizontal ? y : y + off});
    }
  };
  if (s.relation < 0) {
    switch (s.position) {
      case 0:
        line(0.25 * S, 0.5 * S, s.count, false);
        break;
      case 1:
        line(0.75 * S, 0.5 * S, s.count, false);
        break;
      case 2:
        line(0.5 * S, 0.25 * S, s.count, true);
        break;
      case 3:
        line(0.5 * S, 0.75 * S, s.count, true);
        break;
      default:
        line(0.5 * S, 0.5 * S, s.count, true);
        break;
    }
  } else {
    std::array<double, 2> ref{};
    switch (s.relation) {
      case 0:
        line(0.5 * S, 0.25 * S, s.count, true), ref = {0.5 * S, 0.75 * S};
        break;  // above
      case 1:
        line(0.5 * S, 0.75 * S, s.count, true), ref = {0.5 * S, 0.25 * S};
        break;  // below
      case 2:
        line(0.25 * S, 0.5 * S, s.count, false), ref = {0.75 * S, 0.5 * S};
        break;  // left of
      default:
        line(0.75 * S, 0.5 * S, s.count, false), ref = {0.25 * S, 0.5 * S};
        break;  // right of
    }
    c.push_back(ref);
  }
  for (size_t k = 0; k < c.size(); ++k) {
    c[k][0] += s.jitter[(2 * k) % 8] * S / 64.0;
    c[k][1] += s.jitter[(2 * k + 1) % 8] * S / 64.0;
  }
  return c;
}

at::Tensor render_scene(const Scene& s, int size) {
  at::Tensor img = at::empty({3, size, size}, at::kByte);
  uint8_t* p = img.data_ptr<uint8_t>();
  const int64_t plane = static_cast<int64_t>(size) * size;
  for (int ch = 0; ch < 3; ++ch)
    std::fill(p + ch * plane, p + (ch + 1) * plane, kBackground[static_cast<size_t>(ch)]);
  const auto centres = scene_centres(s, size);
  for (size_t k = 0; k < centres.size(); ++k) {
    const SceneObject& o = (s.relation >= 0 && k + 1 == centres.size()) ? s.ref : s.obj;
    draw_shape(p, size, size, o.shape, centres[k][0], centres[k][1], radius(o.large, size),
               kColourRgb[static_cast<size_t>(o.colour)]);
  }
  return img;
}

void draw_shape(uint8_t* rgb_planes, int width, int height, int shape, double cx, double cy, double r,
                const std::array<uint8_t, 3>& rgb) {
  const int64_t plane = static_cast<int64_t>(width) * height;
  const int x0 = std::max(0, static_cast<int>(std::floor(cx - r - 1)));
  const int x1 = std::min(width - 1, static_cast<int>(std::ceil(cx + r + 1)));
  const int y0 = std::max(0, static_cast<int>(std::floor(cy - r - 1)));
  const int y1 = std::min(height - 1, static_cast<int>(std::ceil(cy + r + 1)));
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      if (!inside(shape, x + 0.5 - cx, y + 0.5 - cy, r)) continue;
      for (int ch = 0; ch < 3; ++ch) {
        rgb_planes[ch * plane + static_cast<int64_t>(y) * width + x] = rgb[static_cast<size_t>(ch)];
      }
    }
  }
}

CorpusResult make_images(const CorpusOptions& opt) {
  const int64_t n = opt.count > 0 ? opt.count : 2000;
  const std::vector<int> sizes = {32, 64};
  struct Item {
    Scene scene;
    std::string caption, split;
  };
  std::vector<Item> items(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Rng rng(derive_seed(opt.seed, /*stream=*/10, static_cast<uint64_t>(i)));
    const bool held = i % 10 == 9;
    Scene s;
    do {
      s = sample_scene(rng);
    } while (scene_has_heldout(s) != held);
    Item& it = items[static_cast<size_t>(i)];
    it.scene = s;
    it.caption = scene_caption(s);
    it.split = held ? "heldout" : (i % 10 == 4 ? "test" : "train");
  }
  for (int sz : sizes) fs::make_dirs(opt.out + "/" + std::to_string(sz));
  parallel_for(n, opt.threads, [&](int64_t i) {
    for (int sz : sizes) {
      save_image(fmt::format("{}/{}/img_{:06d}.png", opt.out, sz, i),
                 render_scene(items[static_cast<size_t>(i)].scene, sz));
    }
  });

  CorpusResult r;
  std::vector<nlohmann::json> captions;
  std::map<std::string, int64_t> split_n;
  for (int sz : sizes) {
    std::map<std::string, std::vector<ManifestEntry>> by_split;
    for (int64_t i = 0; i < n; ++i) {
      const Item& it = items[static_cast<size_t>(i)];
      const std::string rel = fmt::format("{}/img_{:06d}.png", sz, i);
      ManifestEntry e;
      e.path = opt.out + "/" + rel;
      e.text = it.caption;
      e.split = it.split;
      nlohmann::json objs = nlohmann::json::array();
      const auto centres = scene_centres(it.scene, sz);
      for (size_t k = 0; k < centres.size(); ++k) {
        const SceneObject& o =
            (it.scene.relation >= 0 && k + 1 == centres.size()) ? it.scene.ref : it.scene.obj;
        objs.push_back({{"shape", kShapeNames[static_cast<size_t>(o.shape)]},
                        {"colour", kColourNames[static_cast<size_t>(o.colour)]},
                        {"large", o.large},
                        {"x", centres[k][0]},
                        {"y", centres[k][1]}});
      }
      e.extra = {{"size", sz}, {"count", it.scene.count}, {"objects", objs}};
      by_split[it.split].push_back(e);
      captions.push_back({{"file", rel}, {"caption", it.caption}, {"size", sz}, {"split", it.split}});
      r.files.push_back(rel);
      if (sz == sizes[0]) split_n[it.split]++;
    }
    for (const std::string split : {"train", "test", "heldout"}) {
      write_manifest(fmt::format("{}/{}/{}.jsonl", opt.out, sz, split), by_split[split]);
      r.files.push_back(fmt::format("{}/{}.jsonl", sz, split));
    }
  }
  write_jsonl(opt.out + "/captions.jsonl", captions);
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& p : heldout_pairs()) {
    pairs.push_back(kColourNames[static_cast<size_t>(p[0])] + " " + kShapeNames[static_cast<size_t>(p[1])]);
  }
  fs::atomic_write(opt.out + "/heldout_pairs.json",
                   nlohmann::json({{"heldout_pairs", pairs}}).dump(1) + "\n");
  r.files.push_back("captions.jsonl");
  r.files.push_back("heldout_pairs.json");
  r.stats["splits"] = split_n;
  r.summary = fmt::format("images: {} scenes x sizes 32, 64: train {}, test {}, heldout {} (pairs {})", n,
                          split_n["train"], split_n["test"], split_n["heldout"], pairs.dump());
  return r;
}

CorpusResult make_digits(const CorpusOptions& opt) {
  std::string src = "/usr/share/doc/opencv-doc/examples/data/digits.png";
  if (!fs::exists(src)) {
    for (const auto& f : dpkg_files("opencv-doc")) {
      if (sfs::path(f).filename() == "digits.png") src = f;
    }
  }
  if (!fs::exists(src)) {
    MMREF_FAIL(
        "digits corpus: opencv-doc's digits.png is missing; install it with: apt-get install opencv-doc");
  }
  at::Tensor img = load_image(src);  // (3, 1000, 2000)
  if (img.size(1) != 1000 || img.size(2) != 2000) {
    MMREF_FAIL("digits corpus: {} is {}x{}, expected 2000x1000 (100 x 50 cells of 20x20)", src, img.size(2),
               img.size(1));
  }
  at::Tensor gray = img.select(0, 0).contiguous();  // the image is gray: R = G = B
  // Cell order: column-major, so the first k cells cover all ten digits evenly.
  std::vector<std::array<int, 2>> cells;
  for (int c = 0; c < 100; ++c) {
    for (int rw = 0; rw < 50; ++rw) cells.push_back({rw, c});
  }
  if (opt.count > 0 && opt.count < static_cast<int64_t>(cells.size()))
    cells.resize(static_cast<size_t>(opt.count));
  for (int d = 0; d < 10; ++d) fs::make_dirs(fmt::format("{}/png/{}", opt.out, d));
  parallel_for(static_cast<int64_t>(cells.size()), opt.threads, [&](int64_t i) {
    const auto [rw, c] = cells[static_cast<size_t>(i)];
    at::Tensor crop =
        gray.slice(0, rw * 20, rw * 20 + 20).slice(1, c * 20, c * 20 + 20).unsqueeze(0).contiguous();
    save_image(fmt::format("{}/png/{}/{:02d}_{:02d}.png", opt.out, rw / 5, rw, c), crop);
  });
  CorpusResult r;
  std::map<std::string, std::vector<ManifestEntry>> by_split;
  for (const auto& [rw, c] : cells) {
    const std::string rel = fmt::format("png/{}/{:02d}_{:02d}.png", rw / 5, rw, c);
    ManifestEntry e;
    e.path = opt.out + "/" + rel;
    e.text = std::to_string(rw / 5);
    e.split = c % 10 == 9 ? "test" : "train";
    e.extra = {{"label", rw / 5}, {"row", rw}, {"col", c}};
    by_split[e.split].push_back(e);
    r.files.push_back(rel);
  }
  for (const std::string split : {"train", "test"}) {
    write_manifest(opt.out + "/" + split + ".jsonl", by_split[split]);
    r.files.push_back(split + ".jsonl");
  }
  r.stats["train"] = by_split["train"].size();
  r.stats["test"] = by_split["test"].size();
  r.summary = fmt::format("digits: {} 20x20 handwritten digits from {}: train {}, test {}", cells.size(), src,
                          by_split["train"].size(), by_split["test"].size());
  return r;
}

CorpusResult make_photos(const CorpusOptions& opt) {
  std::vector<std::string> sources;
  auto add_dir_files = [&](const std::vector<std::string>& files, const std::string& needle) {
    for (const auto& f : files) {
      if (f.find(needle) == std::string::npos) continue;
      std::string ext = sfs::path(f).extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if ((ext == ".png" || ext == ".jpg" || ext == ".jpeg") && sfs::is_regular_file(f)) sources.push_back(f);
    }
  };
  add_dir_files(dpkg_files("python3-skimage"), "/skimage/data/");
  if (sources.empty()) {
    MMREF_FAIL(
        "photos corpus: no images found in python3-skimage's data folder; install it with: "
        "apt-get install python3-skimage");
  }
  add_dir_files(dpkg_files("python3-sklearn"), "/sklearn/datasets/images/");
  std::sort(sources.begin(), sources.end());
  sources.erase(std::unique(sources.begin(), sources.end()), sources.end());
  if (opt.count > 0 && opt.count < static_cast<int64_t>(sources.size()))
    sources.resize(static_cast<size_t>(opt.count));

  fs::make_dirs(opt.out + "/photos");
  std::vector<int> ok(sources.size(), 0);
  std::vector<std::string> names(sources.size());
  std::vector<std::array<int64_t, 2>> hw(sources.size());
  parallel_for(static_cast<int64_t>(sources.size()), opt.threads, [&](int64_t i) {
    const std::string& f = sources[static_cast<size_t>(i)];
    const std::string origin = f.find("/sklearn/") != std::string::npos ? "sklearn_" : "";
    names[static_cast<size_t>(i)] = origin + sfs::path(f).stem().string();
    try {
      at::Tensor img = load_image(f);
      save_image(opt.out + "/photos/" + names[static_cast<size_t>(i)] + ".png", img);
      hw[static_cast<size_t>(i)] = {img.size(1), img.size(2)};
      ok[static_cast<size_t>(i)] = 1;
    } catch (const Error&) {
      // e.g. skimage's deliberately truncated.jpg: skipped and counted below.
    }
  });
  CorpusResult r;
  std::vector<ManifestEntry> entries;
  std::vector<nlohmann::json> captions;
  int64_t skipped = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (!ok[i]) {
      ++skipped;
      continue;
    }
    std::string caption = names[i].rfind("sklearn_", 0) == 0 ? names[i].substr(8) : names[i];
    std::replace(caption.begin(), caption.end(), '_', ' ');
    const std::string rel = "photos/" + names[i] + ".png";
    ManifestEntry e;
    e.path = opt.out + "/" + rel;
    e.text = caption;
    e.split = "all";
    e.extra = {{"source", sources[i]}, {"height", hw[i][0]}, {"width", hw[i][1]}};
    entries.push_back(e);
    captions.push_back({{"file", rel}, {"caption", caption}});
    r.files.push_back(rel);
  }
  write_manifest(opt.out + "/all.jsonl", entries);
  write_jsonl(opt.out + "/captions.jsonl", captions);
  r.files.push_back("all.jsonl");
  r.files.push_back("captions.jsonl");
  r.stats["photos"] = entries.size();
  r.stats["skipped"] = skipped;
  r.summary = fmt::format("photos: {} images ({} undecodable skipped)", entries.size(), skipped);
  return r;
}

}  // namespace mmref::data::gen
