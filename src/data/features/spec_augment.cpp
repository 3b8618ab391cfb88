// SpecAugment (see spec_augment.h). Random integers come from at::randint with the caller's generator.
// Ref: Park et al. 2019 (arXiv:1904.08779); wenet wenet/dataset/processor.py spec_aug.
#include "data/features/spec_augment.h"

#include <ATen/Functions.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace mmref::data {
namespace {

// Uniform integer in [lo, hi] (inclusive).
int64_t rand_int(at::Generator& gen, int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return at::randint(lo, hi + 1, {1}, c10::optional<at::Generator>(gen), at::kLong).item<int64_t>();
}

// (n, bins) -> (m, bins) by linear interpolation along time (align_corners=false).
at::Tensor resize_time(const at::Tensor& x, int64_t m) {
  at::Tensor t = x.t().unsqueeze(0);  // (1, bins, n)
  at::Tensor y = at::upsample_linear1d(t, {m}, /*align_corners=*/false);
  return y.squeeze(0).t();  // (m, bins)
}

}  // namespace

void parse(config::Reader& r, SpecAugmentOptions& o) {
  r.opt("num_freq_masks", o.num_freq_masks, config::Range::at_least(0));
  r.opt("freq_mask_width", o.freq_mask_width, config::Range::at_least(0));
  r.opt("num_time_masks", o.num_time_masks, config::Range::at_least(0));
  r.opt("time_mask_width", o.time_mask_width, config::Range::at_least(0));
  r.opt("time_mask_max_ratio", o.time_mask_max_ratio, config::Range::between(0, 1));
  r.opt("time_warp", o.time_warp, config::Range::at_least(0));
  r.opt("mask_value", o.mask_value);
  r.opt("mask_with_mean", o.mask_with_mean);
  r.finish();
}

at::Tensor time_warp(const at::Tensor& feats, int warp, at::Generator& gen) {
  const int64_t n = feats.size(0);
  if (warp <= 0 || n <= 2 * static_cast<int64_t>(warp)) return feats.clone();
  at::Tensor x = feats.is_floating_point() ? feats : feats.to(at::kFloat);
  const int64_t c = rand_int(gen, warp, n - warp - 1);
  const int64_t target = rand_int(gen, c - warp, c + warp);
  if (target <= 0 || target >= n || target == c) return x.clone();
  at::Tensor left = resize_time(x.slice(0, 0, c), target);
  at::Tensor right = resize_time(x.slice(0, c, n), n - target);
  return at::cat({left, right}, 0).to(feats.scalar_type());
}

at::Tensor spec_augment(const at::Tensor& feats, const SpecAugmentOptions& o, at::Generator& gen,
                        std::vector<SpecMask>* masks) {
  if (feats.dim() != 2) MMREF_FAIL("spec_augment: features must be (frames, bins), got {} dims", feats.dim());
  if (o.time_mask_max_ratio < 0 || o.time_mask_max_ratio > 1)
    MMREF_FAIL("spec_augment: time_mask_max_ratio must be in [0, 1], got {}", o.time_mask_max_ratio);
  at::Tensor y = o.time_warp > 0 ? time_warp(feats, o.time_warp, gen) : feats.clone();
  const int64_t frames = y.size(0), bins = y.size(1);
  const double value = o.mask_with_mean ? y.mean().item<double>() : o.mask_value;
  for (int i = 0; i < o.num_freq_masks; ++i) {
    const int64_t w = rand_int(gen, 0, std::min<int64_t>(o.freq_mask_width, bins));
    const int64_t s = rand_int(gen, 0, bins - w);
    y.slice(1, s, s + w).fill_(value);
    if (masks) masks->push_back({1, s, w});
  }
  const int64_t max_t =
      std::min<int64_t>(o.time_mask_width, static_cast<int64_t>(std::floor(o.time_mask_max_ratio * frames)));
  for (int i = 0; i < o.num_time_masks; ++i) {
    const int64_t w = rand_int(gen, 0, std::max<int64_t>(max_t, 0));
    const int64_t s = rand_int(gen, 0, frames - w);
    y.slice(0, s, s + w).fill_(value);
    if (masks) masks->push_back({0, s, w});
  }
  return y;
}

}  // namespace mmref::data
