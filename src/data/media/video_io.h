// Video decode/encode through FFmpeg (libavformat + libavcodec + libswscale).
//
//   load_video  mp4 (h264, mpeg4), webm (vp8/vp9), gif, y4m, avi (mjpeg, xvid, ...), mkv
//               -> (T, 3, H, W) uint8 RGB, optionally resampled to a new fps (by timestamp: output
//               frame k shows the last source frame with pts <= k / fps), rescaled, and cut to a
//               frame range (start_frame / num_frames count OUTPUT frames, i.e. after fps resampling)
//   save_video  (T, 3, H, W) uint8 -> .mp4 (libx264 yuv420p crf 18 when FFmpeg has it, else mpeg4
//               at high quality), .gif (palettegen/paletteuse-style: a global 256-colour palette
//               from libavfilter), .y4m (raw yuv444p); odd sizes are allowed for gif/y4m, mp4 needs
//               even width and height
//
// Failures throw mmref::Error naming the file. Ref: FFmpeg doc/examples/demux_decode.c, encode_video.c,
// mux.c (API usage pattern only).
#pragma once
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "data/media/audio_io.h"  // MediaInfo

namespace mmref::data {

struct VideoOptions {
  double fps = 0;             // 0 = native; else resample frames by timestamp
  int width = 0, height = 0;  // 0 = native (if only one is given, the other keeps the aspect ratio)
  int64_t start_frame = 0;    // first output frame
  int64_t num_frames = -1;    // -1 = to the end
};

// If `info` is given it receives probe_media()'s facts about the file (fps/num_frames of the source).
at::Tensor load_video(const std::string& path, const VideoOptions& opt = {}, MediaInfo* info = nullptr);

void save_video(const std::string& path, const at::Tensor& frames, double fps);

}  // namespace mmref::data
