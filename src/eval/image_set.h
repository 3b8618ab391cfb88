// The sets image metrics run over: a folder of images (png, jpg, jpeg, bmp, webp; sorted by name, not
// recursive), a run folder (its newest samples/step_*/ folder), or a folder of videos (mp4, webm, gif,
// mkv, avi: every frame, or every `frame_stride`-th, becomes an image of that video).
//
// Images are loaded as (3, H, W) float in [0, 1]. Grayscale and RGBA files are converted (gray
// replicated, alpha dropped) and counted, so the harness can warn about them by name; unreadable
// files are errors naming the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::eval {

struct ImageItem {
  std::string path;        // the image, or the video it comes from
  int64_t frame = -1;      // frame index in the video; -1 for still images
  std::string id() const;  // path, or path#frame
};

struct ImageSetOptions {
  int64_t frame_stride = 1;  // videos: every n-th frame
  int64_t max_items = 0;     // 0 = all
};

class ImageSet {
 public:
  // Throws mmref::Error naming `where` when it does not exist or holds no images or videos.
  static ImageSet open(const std::string& where, const ImageSetOptions& opt = {});

  const std::string& source() const { return source_; }
  int64_t size() const { return static_cast<int64_t>(items_.size()); }
  const std::vector<ImageItem>& items() const { return items_; }
  bool is_video() const { return video_; }
  // Number of distinct videos (0 for still images) and the frame items of video v.
  const std::vector<std::vector<int64_t>>& videos() const { return video_items_; }

  // Items [begin, begin + n) as float (3, H, W) tensors in [0, 1].
  std::vector<at::Tensor> load(int64_t begin, int64_t n) const;
  // Files converted from grayscale / with an alpha channel so far (for the warnings).
  int64_t grayscale_converted() const { return gray_; }
  int64_t alpha_dropped() const { return alpha_; }

 private:
  std::string source_;
  std::vector<ImageItem> items_;
  std::vector<std::vector<int64_t>> video_items_;
  bool video_ = false;
  mutable int64_t gray_ = 0, alpha_ = 0;
};

// (N, 3, S, S) batch of equal-size images: images of other sizes are resized to S x S (bilinear,
// antialiased when shrinking) so a batch can be stacked; S = the first image's size when 0.
at::Tensor stack_images(const std::vector<at::Tensor>& images, int64_t size = 0);

}  // namespace mmref::eval
