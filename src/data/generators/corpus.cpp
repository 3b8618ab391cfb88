// make_corpus: kind dispatch and the incremental check through DIR/corpus.json
//   {"kind": ..., "seed": ..., "count": ..., "sample_rate": ..., "files": [...], "summary": ...}
// corpus.json is written last, so an interrupted run is redone from scratch next time.
#include "data/generators/corpus.h"

#include <chrono>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "data/generators/generators.h"

namespace mmref::data {

namespace {

using MakeFn = gen::CorpusResult (*)(const CorpusOptions&);

struct Kind {
  const char* name;
  const char* description;
  MakeFn make;
  bool uses_sample_rate;
};

const std::vector<Kind>& kinds() {
  static const std::vector<Kind> k = {
      {"speech", "English sentences synthesised by espeak-ng, flite and festival (train/dev/test/heldout)",
       gen::make_speech, true},
      {"speech_real", "transcribed recordings of Debian's pocketsphinx-testdata", gen::make_speech_real,
       true},
      {"video", "ffmpeg lavfi clips (life, mandelbrot, cellauto, testsrc2) and captioned moving shapes",
       gen::make_video, false},
      {"video_real", "16-frame 64x64 clips cut from opencv-doc's sample videos", gen::make_video_real, false},
      {"images", "captioned shape scenes at 32 and 64 px with held-out colour+shape pairs", gen::make_images,
       false},
      {"digits", "the 5000 20x20 handwritten digits of opencv-doc's digits.png, train/test", gen::make_digits,
       false},
      {"photos", "python3-skimage (and scikit-learn) sample photographs with file-name captions",
       gen::make_photos, false},
  };
  return k;
}

nlohmann::json option_key(const std::string& kind, const CorpusOptions& opt, bool uses_sr) {
  return {{"kind", kind},
          {"seed", opt.seed},
          {"count", opt.count},
          {"sample_rate", uses_sr ? opt.sample_rate : 0}};
}

}  // namespace

std::vector<std::pair<std::string, std::string>> corpus_kinds() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& k : kinds()) out.emplace_back(k.name, k.description);
  return out;
}

std::string make_corpus(const std::string& kind, const CorpusOptions& opt) {
  const Kind* k = nullptr;
  for (const auto& c : kinds()) {
    if (kind == c.name) k = &c;
  }
  if (k == nullptr) {
    std::string names;
    for (const auto& c : kinds()) names += (names.empty() ? "" : ", ") + std::string(c.name);
    MMREF_FAIL("data make: unknown corpus kind '{}' (kinds: {})", kind, names);
  }
  if (opt.out.empty()) MMREF_FAIL("data make {}: no output folder given (--out DIR)", kind);
  if (opt.count < 0) MMREF_FAIL("data make {}: count must be >= 0 (0 = default), got {}", kind, opt.count);
  if (k->uses_sample_rate && (opt.sample_rate < 8000 || opt.sample_rate > 48000)) {
    MMREF_FAIL("data make {}: sample rate {} is out of range (8000..48000)", kind, opt.sample_rate);
  }

  const std::string meta_path = opt.out + "/corpus.json";
  const nlohmann::json key = option_key(kind, opt, k->uses_sample_rate);
  if (fs::exists(meta_path)) {
    try {
      auto meta = nlohmann::json::parse(fs::read_file(meta_path));
      bool same = true;
      for (auto it = key.begin(); it != key.end(); ++it)
        same = same && meta.value(it.key(), nlohmann::json()) == it.value();
      bool all = same && meta.contains("files") && meta["files"].is_array();
      if (all) {
        for (const auto& f : meta["files"]) {
          if (!fs::exists(opt.out + "/" + f.get<std::string>())) {
            all = false;
            break;
          }
        }
      }
      if (all) return "up to date: " + opt.out + ": " + meta.value("summary", std::string());
    } catch (const nlohmann::json::exception&) {
      // A broken corpus.json means an unfinished corpus: make it again.
    }
  }

  fs::make_dirs(opt.out);
  const auto t0 = std::chrono::steady_clock::now();
  gen::CorpusResult r = k->make(opt);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json meta = key;
  meta["files"] = r.files;
  meta["summary"] = r.summary;
  meta["stats"] = r.stats;
  meta["seconds"] = secs;
  fs::atomic_write(meta_path, meta.dump(1) + "\n");
  return fmt::format("wrote {}: {} ({:.1f} s)", opt.out, r.summary, secs);
}

}  // namespace mmref::data
