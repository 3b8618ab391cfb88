// Sample files and their TensorBoard records; see samples.h.
#include "train/samples.h"

#include <fstream>
#include <regex>
#include <sstream>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/run.h"
#include "core/tensorboard.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"
#include "data/media/video_io.h"

namespace mmref::train {

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) MMREF_FAIL("cannot read back sample '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string shape(const at::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

// (C, H, W) uint8 from uint8 or float [0, 1].
at::Tensor to_u8(const at::Tensor& t) {
  if (t.scalar_type() == at::kByte) return t.contiguous();
  return t.detach().to(at::kFloat).clamp(0, 1).mul(255).round().to(at::kByte).contiguous();
}

}  // namespace

SampleWriter::SampleWriter(Run& run, int64_t step)
    : run_(run), step_(step), dir_(fmt::format("{}/samples/step_{:08d}", run.dir(), step)) {
  fs::make_dirs(dir_);
}

std::string SampleWriter::path_for(const std::string& name, const char* ext) {
  static const std::regex ok("[A-Za-z0-9_.-]+");
  if (!std::regex_match(name, ok)) {
    MMREF_FAIL("sample name '{}': use letters, digits, '_', '.', '-' only", name);
  }
  std::string p = dir_ + "/" + name + ext;
  files_.push_back(p);
  return p;
}

void SampleWriter::image(const std::string& name, const at::Tensor& img) {
  if (img.dim() != 3 || (img.size(0) != 1 && img.size(0) != 3) || img.size(1) < 1 || img.size(2) < 1) {
    MMREF_FAIL("sample image '{}': expected (1|3, H, W), got {}", name, shape(img));
  }
  const at::Tensor u8 = to_u8(img.cpu());
  const std::string p = path_for(name, ".png");
  data::save_image(p, u8);
  run_.tensorboard().add_image_png("samples/" + name, read_bytes(p), static_cast<int>(u8.size(1)),
                                   static_cast<int>(u8.size(2)), static_cast<int>(u8.size(0)), step_);
}

void SampleWriter::audio(const std::string& name, const at::Tensor& wav, int sample_rate) {
  if ((wav.dim() != 1 && wav.dim() != 2) || wav.size(-1) < 1 || sample_rate <= 0) {
    MMREF_FAIL("sample audio '{}': expected (T) or (C, T) samples and a positive rate, got {} at {} Hz", name,
               shape(wav), sample_rate);
  }
  const at::Tensor w = (wav.dim() == 1 ? wav.unsqueeze(0) : wav).detach().cpu().to(at::kFloat).contiguous();
  const std::string p = path_for(name, ".wav");
  data::save_audio(p, w, sample_rate);
  run_.tensorboard().add_audio_wav("samples/" + name, read_bytes(p), sample_rate, w.size(1),
                                   static_cast<int>(w.size(0)), step_);
}

void SampleWriter::video(const std::string& name, const at::Tensor& frames, double fps) {
  if (frames.dim() != 4 || frames.size(1) != 3 || frames.size(0) < 1 || !(fps > 0)) {
    MMREF_FAIL("sample video '{}': expected (T, 3, H, W) frames and fps > 0, got {} at {} fps", name,
               shape(frames), fps);
  }
  at::Tensor u8 = to_u8(frames.cpu());
  const int64_t h = u8.size(2), w = u8.size(3);
  if (h % 2 || w % 2) {  // yuv420p needs even sizes: repeat the last row / column
    u8 = at::constant_pad_nd(u8.to(at::kFloat), {0, w % 2, 0, h % 2}, 0).to(at::kByte);
    if (w % 2) u8.select(3, w).copy_(u8.select(3, w - 1));
    if (h % 2) u8.select(2, h).copy_(u8.select(2, h - 1));
  }
  data::save_video(path_for(name, ".mp4"), u8.contiguous(), fps);
  // TensorBoard has no video panel: an image strip of up to 8 evenly spaced frames.
  const int64_t t = u8.size(0), n = std::min<int64_t>(8, t);
  std::vector<at::Tensor> picked;
  for (int64_t i = 0; i < n; ++i) picked.push_back(u8[n == 1 ? 0 : i * (t - 1) / (n - 1)]);
  const at::Tensor strip = at::cat(picked, /*dim=*/2).contiguous();  // (3, H, n*W)
  const std::string strip_path = dir_ + "/" + name + ".frames.png";
  data::save_image(strip_path, strip);
  run_.tensorboard().add_image_png("samples/" + name + "/frames", read_bytes(strip_path),
                                   static_cast<int>(strip.size(1)), static_cast<int>(strip.size(2)), 3, step_);
}

}  // namespace mmref::train
