// Inception pool3 features (and logits, for the Inception Score) of an image set in batches, with an
// HDF5 feature cache (data/dataset/feature_cache.h) keyed by image path (+ frame), invalidated when a
// file's size or mtime changes or when the weights file or resize mode differ: a reference set is
// embedded once.
#pragma once
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "eval/image_set.h"
#include "models/inception/fid_inception.h"

namespace mmref::eval {

struct InceptionRunOptions {
  std::string weights_sha256;  // of the weights file (cache key and provenance)
  models::FidResize resize = models::FidResize::kLegacyBilinear;
  int64_t batch_size = 32;
  std::string cache_dir;       // "" = no cache
  bool want_logits = false;    // needs fc weights
};

struct InceptionFeatures {
  at::Tensor pool3;   // (N, 2048) float32
  at::Tensor logits;  // (N, 1008) float32 when asked for
  int64_t cache_hits = 0;
  double seconds = 0;
};

InceptionFeatures extract_inception(const ImageSet& set, models::FidInceptionV3& net, const InceptionRunOptions& opt);

const char* resize_name(models::FidResize r);  // "legacy" | "antialias"
models::FidResize parse_resize(const std::string& name);  // throws ConfigError naming the choices

}  // namespace mmref::eval
