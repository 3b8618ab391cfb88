// An image manifest split in memory; see image_split.h.
#include "data/dataset/image_split.h"

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/media/image_io.h"

namespace mmref::data {

ImageSplit load_image_split(const std::string& manifest, const ImageSplitOptions& opt, const std::string& missing_hint) {
  if (!fs::exists(manifest)) {
    MMREF_FAIL("image manifest '{}' does not exist{}", manifest, missing_hint.empty() ? "" : " (" + missing_hint + ")");
  }
  ImageSplit s;
  std::vector<at::Tensor> imgs;
  for (const auto& e : read_manifest(manifest)) {
    if (opt.keep && !opt.keep(e.text)) continue;
    at::Tensor img = load_image(e.path);  // (3, H, W) uint8
    if (opt.channels == 1) img = img.narrow(0, 0, 1);
    if (img.size(1) != opt.size || img.size(2) != opt.size) {
      img = at::upsample_bilinear2d(img.unsqueeze(0).to(at::kFloat), {opt.size, opt.size}, /*align_corners=*/false)
                .squeeze(0)
                .round()
                .clamp(0, 255)
                .to(at::kByte);
    }
    imgs.push_back(img);
    s.texts.push_back(e.text);
    s.paths.push_back(e.path);
    int64_t label = -1;
    if (e.extra.is_object() && e.extra.contains("label")) label = e.extra["label"].get<int64_t>();
    s.labels.push_back(label);
    if (opt.limit > 0 && static_cast<int64_t>(imgs.size()) >= opt.limit) break;
  }
  if (imgs.empty()) MMREF_FAIL("image manifest '{}': no images (after the split's filters)", manifest);
  s.pixels = at::stack(imgs);
  return s;
}

}  // namespace mmref::data
