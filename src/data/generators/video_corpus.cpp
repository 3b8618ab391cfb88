// `video` and `video_real` corpora (see corpus.h).
//
// video: clip i is drawn from Rng(derive_seed(seed, 20, i)); size in {32, 48, 64, 96, 128} (even, for
// yuv420p mp4), 8..32 frames at 8 fps.
//   i % 10 < 3: an ffmpeg lavfi source rendered by the ffmpeg CLI (life, mandelbrot, cellauto,
//               testsrc2), e.g. `ffmpeg -f lavfi -i life=s=64x64:rate=8:seed=7 -frames:v 16 out.mp4`;
//               caption names the source ("conway's game of life", "elementary cellular automaton
//               rule 110", ...)
//   otherwise:  one shape (circle/square/triangle, 8 colours) moving left/right/up/down across a dark
//               grey background, drawn here and encoded with save_video; caption "a red square
//               moving left"
// Outputs: clips/clip_NNNNNN.mp4, captions.jsonl ({"file", "caption"}), train.jsonl / test.jsonl
// (i % 10 == 7 -> test; text = caption, duration, extra: frames, width, height, fps, source).
//
// video_real: opencv-doc's sample videos (vtest.avi, tree.avi, Megamind.avi; Megamind_bugy.avi is a
// deliberately damaged copy and is left out; of tree.avi's 444 frames FFmpeg decodes 68, which give 4
// clips) decoded at 64x64 and cut into consecutive 16-frame clips
// (clips/<name>_NNNN.mp4 at the source fps); caption "a short clip from the opencv sample video vtest";
// count > 0 keeps the first `count` clips, taken round-robin across the sources.
#include <algorithm>
#include <filesystem>
#include <map>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/generators/generators.h"
#include "data/media/video_io.h"

namespace mmref::data::gen {

namespace {

namespace sfs = std::filesystem;

constexpr double kFps = 8;
const std::vector<int> kSizes = {32, 48, 64, 96, 128};
const std::vector<std::string> kDirections = {"left", "right", "up", "down"};

struct Clip {
  std::string rel, caption, source, split;
  int width = 0, height = 0;
  int64_t frames = 0;
  double fps = kFps;
  nlohmann::json extra = nlohmann::json::object();
};

// Returns the lavfi graph and fills the caption.
std::string lavfi_source(Rng& rng, int size, std::string* caption, std::string* source) {
  const std::string s = fmt::format("s={}x{}:rate={}", size, size, static_cast<int>(kFps));
  switch (rng.below(4)) {
    case 0: {
      *source = "life";
      *caption = "conway's game of life";
      return fmt::format("life={}:seed={}:ratio={:.2f}:mold=8", s, rng.below(1 << 30),
                         0.2 + 0.3 * rng.uniform());
    }
    case 1: {
      *source = "mandelbrot";
      *caption = "a zoom into the mandelbrot set";
      return fmt::format("mandelbrot={}:start_scale={:.2f}:end_scale=0.3", s, 2.0 + 2.0 * rng.uniform());
    }
    case 2: {
      static const std::vector<int> kRules = {18, 30, 45, 60, 90, 110, 150};
      int rule = rng.pick(kRules);
      *source = "cellauto";
      *caption = fmt::format("elementary cellular automaton rule {}", rule);
      return fmt::format("cellauto={}:rule={}:seed={}:random_fill_ratio=0.5", s, rule, rng.below(1 << 30));
    }
    default:
      *source = "testsrc2";
      *caption = "a television test pattern with a running counter";
      return "testsrc2=" + s;
  }
}

at::Tensor moving_shape(Rng& rng, int size, int64_t frames, std::string* caption) {
  const int shape = static_cast<int>(rng.below(3));
  const int colour = static_cast<int>(rng.below(static_cast<int64_t>(kColourNames.size())));
  const int dir = static_cast<int>(rng.below(4));
  const double S = size, r = 0.15 * S;
  const double across = 0.3 * S + rng.uniform() * 0.4 * S;  // the fixed coordinate
  // Travel from 0.8 S to 0.2 S (left/up) or 0.2 S to 0.8 S (right/down).
  const double from = (dir == 0 || dir == 2) ? 0.8 * S : 0.2 * S;
  const double to = (dir == 0 || dir == 2) ? 0.2 * S : 0.8 * S;
  at::Tensor video = at::empty({frames, 3, size, size}, at::kByte);
  uint8_t* base = video.data_ptr<uint8_t>();
  const int64_t plane = static_cast<int64_t>(size) * size;
  for (int64_t t = 0; t < frames; ++t) {
    uint8_t* p = base + t * 3 * plane;
    for (int ch = 0; ch < 3; ++ch)
      std::fill(p + ch * plane, p + (ch + 1) * plane, kBackground[static_cast<size_t>(ch)]);
    const double a = frames > 1 ? static_cast<double>(t) / static_cast<double>(frames - 1) : 0.0;
    const double along = from + (to - from) * a;
    const double cx = dir < 2 ? along : across, cy = dir < 2 ? across : along;
    draw_shape(p, size, size, shape, cx, cy, r, kColourRgb[static_cast<size_t>(colour)]);
  }
  *caption = "a " + kColourNames[static_cast<size_t>(colour)] + " " +
             kShapeNames[static_cast<size_t>(shape)] + " moving " + kDirections[static_cast<size_t>(dir)];
  return video;
}

CorpusResult write_clip_outputs(const CorpusOptions& opt, const std::vector<Clip>& clips) {
  CorpusResult r;
  std::map<std::string, std::vector<ManifestEntry>> by_split;
  std::vector<nlohmann::json> captions;
  for (const auto& c : clips) {
    ManifestEntry e;
    e.path = opt.out + "/" + c.rel;
    e.text = c.caption;
    e.split = c.split;
    e.duration = static_cast<double>(c.frames) / c.fps;
    e.extra = c.extra;
    e.extra["frames"] = c.frames;
    e.extra["width"] = c.width;
    e.extra["height"] = c.height;
    e.extra["fps"] = c.fps;
    e.extra["source"] = c.source;
    by_split[c.split].push_back(e);
    captions.push_back({{"file", c.rel}, {"caption", c.caption}});
    r.files.push_back(c.rel);
  }
  for (const std::string split : {"train", "test"}) {
    write_manifest(opt.out + "/" + split + ".jsonl", by_split[split]);
    r.files.push_back(split + ".jsonl");
    r.stats[split] = by_split[split].size();
  }
  write_jsonl(opt.out + "/captions.jsonl", captions);
  r.files.push_back("captions.jsonl");
  return r;
}

}  // namespace

CorpusResult make_video(const CorpusOptions& opt) {
  const int64_t n = opt.count > 0 ? opt.count : 300;
  if (find_program("ffmpeg").empty()) {
    MMREF_FAIL("video corpus: the ffmpeg program is missing; install it with: apt-get install ffmpeg");
  }
  fs::make_dirs(opt.out + "/clips");
  std::vector<Clip> clips(static_cast<size_t>(n));
  parallel_for(n, opt.threads, [&](int64_t i) {
    Rng rng(derive_seed(opt.seed, /*stream=*/20, static_cast<uint64_t>(i)));
    Clip& c = clips[static_cast<size_t>(i)];
    const int size = rng.pick(kSizes);
    c.width = c.height = size;
    c.frames = rng.range(8, 32);
    c.rel = fmt::format("clips/clip_{:06d}.mp4", i);
    c.split = i % 10 == 7 ? "test" : "train";
    const std::string path = opt.out + "/" + c.rel;
    if (i % 10 < 3) {
      const std::string graph = lavfi_source(rng, size, &c.caption, &c.source);
      c.extra["lavfi"] = graph;
      // -threads 1 and -bitexact: reproducible bytes, and the workers already use every core.
      run_program({"ffmpeg",
                   "-nostdin",
                   "-v",
                   "error",
                   "-y",
                   "-f",
                   "lavfi",
                   "-i",
                   graph,
                   "-frames:v",
                   std::to_string(c.frames),
                   "-pix_fmt",
                   "yuv420p",
                   "-threads",
                   "1",
                   "-fflags",
                   "+bitexact",
                   "-flags:v",
                   "+bitexact",
                   path});
    } else {
      c.source = "shapes";
      save_video(path, moving_shape(rng, size, c.frames, &c.caption), kFps);
    }
  });
  CorpusResult r = write_clip_outputs(opt, clips);
  std::map<std::string, int64_t> by_source;
  for (const auto& c : clips) by_source[c.source]++;
  r.stats["sources"] = by_source;
  r.summary = fmt::format("video: {} clips (8..32 frames, 32..128 px, 8 fps): train {}, test {}; sources {}",
                          n, r.stats["train"].get<int64_t>(), r.stats["test"].get<int64_t>(),
                          nlohmann::json(by_source).dump());
  return r;
}

CorpusResult make_video_real(const CorpusOptions& opt) {
  std::vector<std::string> sources;
  for (const auto& f : dpkg_files("opencv-doc")) {
    if (sfs::path(f).extension() == ".avi" && f.find("_bugy") == std::string::npos &&
        sfs::is_regular_file(f)) {
      sources.push_back(f);
    }
  }
  std::sort(sources.begin(), sources.end());
  if (sources.empty()) {
    MMREF_FAIL(
        "video_real corpus: no sample videos of opencv-doc found; install it with: apt-get install "
        "opencv-doc");
  }
  constexpr int kClipFrames = 16, kSide = 64;
  struct Source {
    std::string name;
    at::Tensor frames;  // (T, 3, 64, 64)
    double fps = 0;
  };
  std::vector<Source> decoded(sources.size());
  parallel_for(static_cast<int64_t>(sources.size()), opt.threads, [&](int64_t i) {
    VideoOptions vo;
    vo.width = kSide;
    vo.height = kSide;
    MediaInfo info;
    Source& s = decoded[static_cast<size_t>(i)];
    try {
      s.frames = load_video(sources[static_cast<size_t>(i)], vo, &info);
    } catch (const Error&) {
      // tree.avi's header says 444 frames but FFmpeg decodes only the first 68 (load_video calls that
      // truncated): keep the whole clips that decode, asking for one clip at a time.
      std::vector<at::Tensor> parts;
      for (int64_t start = 0;; start += kClipFrames) {
        vo.start_frame = start;
        vo.num_frames = kClipFrames;
        try {
          at::Tensor part = load_video(sources[static_cast<size_t>(i)], vo, &info);
          if (part.size(0) < kClipFrames) break;
          parts.push_back(part);
        } catch (const Error&) {
          break;
        }
      }
      s.frames = parts.empty() ? at::empty({0, 3, kSide, kSide}, at::kByte) : at::cat(parts);
    }
    s.fps = info.fps > 0 ? info.fps : 25.0;
    s.name = sfs::path(sources[static_cast<size_t>(i)]).stem().string();
  });
  // Round-robin over the sources so that a small count still samples every video.
  std::vector<Clip> clips;
  std::vector<at::Tensor> clip_frames;
  for (int64_t k = 0;; ++k) {
    bool any = false;
    for (size_t s = 0; s < decoded.size(); ++s) {
      const int64_t start = k * kClipFrames;
      if (start + kClipFrames > decoded[s].frames.size(0)) continue;
      any = true;
      Clip c;
      c.rel = fmt::format("clips/{}_{:04d}.mp4", decoded[s].name, k);
      c.caption = "a short clip from the opencv sample video " + decoded[s].name;
      c.source = sources[s];
      c.width = c.height = kSide;
      c.frames = kClipFrames;
      c.fps = decoded[s].fps;
      c.split = k % 10 == 9 ? "test" : "train";
      c.extra["start_frame"] = start;
      clips.push_back(c);
      clip_frames.push_back(decoded[s].frames.slice(0, start, start + kClipFrames).contiguous());
    }
    if (!any) break;
  }
  if (opt.count > 0 && opt.count < static_cast<int64_t>(clips.size())) {
    clips.resize(static_cast<size_t>(opt.count));
    clip_frames.resize(static_cast<size_t>(opt.count));
  }
  fs::make_dirs(opt.out + "/clips");
  parallel_for(static_cast<int64_t>(clips.size()), opt.threads, [&](int64_t i) {
    const Clip& c = clips[static_cast<size_t>(i)];
    save_video(opt.out + "/" + c.rel, clip_frames[static_cast<size_t>(i)], c.fps);
  });
  CorpusResult r = write_clip_outputs(opt, clips);
  std::string names;
  for (const auto& d : decoded) names += (names.empty() ? "" : ", ") + d.name;
  r.summary = fmt::format("video_real: {} clips of {} frames at {}x{} from {}: train {}, test {}",
                          clips.size(), kClipFrames, kSide, kSide, names, r.stats["train"].get<int64_t>(),
                          r.stats["test"].get<int64_t>());
  return r;
}

}  // namespace mmref::data::gen
