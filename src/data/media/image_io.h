// Image decode/encode through FFmpeg (libavformat image2 demuxer + libavcodec + libswscale).
//
//   load_image  png, jpeg, bmp, webp (when the decoder exists), tiff, gif (first frame)
//               -> (3, H, W) uint8 RGB or float32 in [0, 1]; gray / gray+alpha / RGBA / paletted /
//               16-bit inputs are converted to 8-bit RGB (alpha is dropped, not composited)
//   save_image  (3, H, W) or (1, H, W) uint8 or float [0, 1] -> .png (lossless) or .jpg/.jpeg
//
// Failures (missing, truncated, garbage, zero-sized) throw mmref::Error naming the file.
// Ref: FFmpeg doc/examples/decode_video.c, scale_video.c (API usage pattern only).
#pragma once
#include <string>

#include <ATen/core/Tensor.h>

namespace mmref::data {

at::Tensor load_image(const std::string& path, bool to_float = false);

// jpeg_quality 1..100 (ignored for png). Written atomically (temp file + rename).
void save_image(const std::string& path, const at::Tensor& img, int jpeg_quality = 95);

}  // namespace mmref::data
