// What a task's sample hook writes: images, audio and video made from the model during training, saved
// into the run and shown in TensorBoard.
//
//   <run>/samples/step_<8 digits>/<name>.png | .wav | .mp4   (names: [A-Za-z0-9_.-]+)
//   TensorBoard: "samples/<name>" image (PNG) or audio (WAV); a video appears as an image strip of
//                up to 8 evenly spaced frames, "samples/<name>/frames"
//
// Only rank 0 writes samples (the trainer calls the hook there alone).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref {
class Run;
}

namespace mmref::train {

class SampleWriter {
 public:
  SampleWriter(Run& run, int64_t step);

  // (3, H, W) or (1, H, W), uint8 or float in [0, 1] (clamped).
  void image(const std::string& name, const at::Tensor& img);
  // (T) or (C, T) float in [-1, 1] (clipped), at sample_rate Hz.
  void audio(const std::string& name, const at::Tensor& wav, int sample_rate);
  // (T, 3, H, W), uint8 or float in [0, 1]; mp4 needs even H and W (odd sizes are padded by one pixel).
  void video(const std::string& name, const at::Tensor& frames, double fps);

  const std::string& dir() const { return dir_; }
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::string path_for(const std::string& name, const char* ext);
  Run& run_;
  int64_t step_;
  std::string dir_;
  std::vector<std::string> files_;
};

}  // namespace mmref::train
