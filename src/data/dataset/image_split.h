// An image manifest split held in memory: the pixels of every image (resized to one size) with its
// caption, class label and path. Used by the image tasks (diffusion_unet, digit_classifier).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::data {

struct ImageSplit {
  at::Tensor pixels;               // (N, C, S, S) uint8
  std::vector<std::string> texts;  // the manifest's "text"
  std::vector<int64_t> labels;     // extra.label, -1 when absent
  std::vector<std::string> paths;
  int64_t size() const { return pixels.defined() ? pixels.size(0) : 0; }
};

struct ImageSplitOptions {
  int64_t size = 32;      // every image resized to size x size (bilinear) when it differs
  int64_t channels = 3;   // 1: the first channel (gray corpora), 3: RGB
  int64_t limit = 0;      // 0 = all
  std::function<bool(const std::string& text)> keep;  // empty = keep all
};

// Reads a JSONL manifest ({"path", "text", extra "label"}). Throws mmref::Error naming the manifest when
// it is missing (with `missing_hint`) or keeps no image, and naming an image that does not decode.
ImageSplit load_image_split(const std::string& manifest, const ImageSplitOptions& opt,
                            const std::string& missing_hint = "");

}  // namespace mmref::data
