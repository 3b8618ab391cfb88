// Image and video-frame sets for image metrics; see image_set.h.
#include "eval/image_set.h"

#include <algorithm>
#include <filesystem>

#include <ATen/Functions.h>
#include <fmt/format.h>

#include "core/error.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"
#include "data/media/video_io.h"

namespace mmref::eval {

namespace stdfs = std::filesystem;

namespace {

std::string lower_ext(const stdfs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

bool is_image(const stdfs::path& p) {
  static const char* exts[] = {".png", ".jpg", ".jpeg", ".bmp", ".webp"};
  const std::string e = lower_ext(p);
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

bool is_video_file(const stdfs::path& p) {
  static const char* exts[] = {".mp4", ".webm", ".gif", ".mkv", ".avi", ".mov", ".y4m"};
  const std::string e = lower_ext(p);
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

}  // namespace

std::string ImageItem::id() const { return frame < 0 ? path : fmt::format("{}#{}", path, frame); }

ImageSet ImageSet::open(const std::string& where, const ImageSetOptions& opt) {
  std::error_code ec;
  if (!stdfs::is_directory(where, ec)) {
    MMREF_FAIL("image set '{}': no such folder (give a folder of images or videos, or a run folder)", where);
  }
  stdfs::path dir = where;
  // A run folder: its newest samples/step_* folder.
  if (stdfs::is_directory(dir / "samples", ec) && stdfs::exists(dir / "config.yaml", ec)) {
    std::vector<std::string> steps;
    for (const auto& e : stdfs::directory_iterator(dir / "samples", ec)) {
      if (e.is_directory() && e.path().filename().string().rfind("step_", 0) == 0) steps.push_back(e.path().string());
    }
    if (steps.empty()) MMREF_FAIL("image set '{}': a run folder without samples/step_* folders", where);
    std::sort(steps.begin(), steps.end());
    dir = steps.back();
  }
  std::vector<std::string> images, videos;
  for (const auto& e : stdfs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    if (is_image(e.path()) && e.path().string().find(".frames.png") == std::string::npos) images.push_back(e.path().string());
    if (is_video_file(e.path())) videos.push_back(e.path().string());
  }
  std::sort(images.begin(), images.end());
  std::sort(videos.begin(), videos.end());
  ImageSet s;
  s.source_ = dir.string();
  if (!images.empty()) {
    for (const auto& p : images) s.items_.push_back({p, -1});
  } else if (!videos.empty()) {
    s.video_ = true;
    for (const auto& v : videos) {
      const data::MediaInfo info = data::probe_media(v);
      const int64_t frames = info.num_frames;
      if (frames <= 0) MMREF_FAIL("video '{}': no frames", v);
      std::vector<int64_t> idx;
      for (int64_t f = 0; f < frames; f += std::max<int64_t>(1, opt.frame_stride)) {
        idx.push_back(static_cast<int64_t>(s.items_.size()));
        s.items_.push_back({v, f});
      }
      s.video_items_.push_back(std::move(idx));
    }
  } else {
    MMREF_FAIL("image set '{}': no images (png/jpg/jpeg/bmp/webp) or videos (mp4/webm/gif/mkv/avi) in {}", where,
               dir.string());
  }
  if (opt.max_items > 0 && s.size() > opt.max_items) s.items_.resize(static_cast<size_t>(opt.max_items));
  return s;
}

std::vector<at::Tensor> ImageSet::load(int64_t begin, int64_t n) const {
  std::vector<at::Tensor> out;
  const int64_t end = std::min<int64_t>(size(), begin + n);
  for (int64_t i = begin; i < end;) {
    const ImageItem& it = items_[static_cast<size_t>(i)];
    if (it.frame < 0) {
      const data::MediaInfo info = data::probe_media(it.path);
      gray_ += info.gray, alpha_ += info.has_alpha;
      out.push_back(data::load_image(it.path, /*to_float=*/true));
      ++i;
      continue;
    }
    // Consecutive frames of one video in one decode.
    int64_t j = i;
    while (j < end && items_[static_cast<size_t>(j)].path == it.path) ++j;
    data::VideoOptions vo;
    vo.start_frame = it.frame;
    vo.num_frames = items_[static_cast<size_t>(j - 1)].frame - it.frame + 1;
    const at::Tensor frames = data::load_video(it.path, vo);  // (T, 3, H, W) uint8
    for (int64_t k = i; k < j; ++k) {
      const int64_t f = items_[static_cast<size_t>(k)].frame - it.frame;
      if (f >= frames.size(0)) MMREF_FAIL("video '{}': frame {} not decodable (only {} frames)", it.path, items_[k].frame, frames.size(0) + it.frame);
      out.push_back(frames[f].to(at::kFloat).div(255));
    }
    i = j;
  }
  return out;
}

at::Tensor stack_images(const std::vector<at::Tensor>& images, int64_t size) {
  if (images.empty()) MMREF_FAIL("stack_images: no images");
  const int64_t h = size > 0 ? size : images[0].size(1), w = size > 0 ? size : images[0].size(2);
  std::vector<at::Tensor> same;
  for (const auto& im : images) {
    if (im.size(1) == h && im.size(2) == w) {
      same.push_back(im);
    } else {
      same.push_back(at::_upsample_bilinear2d_aa(im.unsqueeze(0), {h, w}, false).squeeze(0).clamp(0, 1));
    }
  }
  return at::stack(same);
}

}  // namespace mmref::eval
