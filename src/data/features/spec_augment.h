// SpecAugment on (frames, bins) features, driven by an explicit at::Generator (deterministic per seed).
//
//   time warp (W > 0): pick a centre c in [W, frames - W), a target c' in [c - W, c + W]; linearly
//                      resample [0, c) to c' frames and [c, frames) to frames - c' (length unchanged)
//   freq masks: num_freq_masks times, width f ~ U{0..F}, start ~ U{0..bins - f}, set to mask_value
//   time masks: num_time_masks times, width t ~ U{0..min(T, max_ratio * frames)}, start ~ U{0..frames - t}
// Masks may overlap; every mask drawn is reported (the caller can check counts and widths).
//
// Ref: Park et al. 2019, "SpecAugment" (arXiv:1904.08779) section 2; wenet
//      wenet/dataset/processor.py spec_aug / spec_trim (time-warp centre rule, max ratio).
// Tests: tests/data/features_augment_test.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::data {

struct SpecAugmentOptions {
  int num_freq_masks = 2;
  int freq_mask_width = 27;  // F: max width in bins
  int num_time_masks = 2;
  int time_mask_width = 100;         // T: max width in frames
  double time_mask_max_ratio = 1.0;  // p: width <= p * frames
  int time_warp = 0;                 // W: 0 = off
  double mask_value = 0.0;
  bool mask_with_mean = false;  // use the features' mean instead of mask_value
};

void parse(config::Reader& r, SpecAugmentOptions& o);

struct SpecMask {
  int axis;  // 0 = time (frames), 1 = frequency (bins)
  int64_t start;
  int64_t width;  // may be 0
};

// Returns a new (frames, bins) tensor; `masks` (optional) receives each mask applied, in order
// (frequency masks first, then time masks).
at::Tensor spec_augment(const at::Tensor& feats, const SpecAugmentOptions& o, at::Generator& gen,
                        std::vector<SpecMask>* masks = nullptr);

// Only the time warp step (identity when W == 0 or frames <= 2 W).
at::Tensor time_warp(const at::Tensor& feats, int warp, at::Generator& gen);

}  // namespace mmref::data
