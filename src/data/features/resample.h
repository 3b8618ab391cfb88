// Band-limited resampling (windowed sinc, Hann-squared window as torchaudio's "sinc_interpolation"),
// speed perturbation built on it, and RMS / peak loudness normalisation.
//
//   resample(x (..., T), from, to)  polyphase FIR: rates reduced by their gcd; out length
//                                   ceil(T * to / from); matches torchaudio.functional.resample
//                                   (lowpass_filter_width 6, rolloff 0.99) to float round-off
//   speed_perturb(x, factor)        plays the wave `factor` times faster at the same sample rate
//                                   (pitch shifts, as sox `speed` + `rate`): resample with rates
//                                   factor : 1 as a reduced fraction (factor rounded to 1/1000);
//                                   out length = ceil(T / factor)
//   normalize_loudness(x, opts)     gain so that RMS is target_dbfs, then (peak limit) lowered so the
//                                   peak stays <= peak_dbfs; dB relative to full_scale
//
// Ref: pytorch/audio torchaudio/functional/functional.py _get_sinc_resample_kernel (0.13), after
//      Julius O. Smith's "Digital Audio Resampling"; wenet processor.py speed_perturb (sox speed).
// Tests: tests/data/features_resample_test.cpp (vs torchaudio at test time).
#pragma once
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::data {

struct ResampleOptions {
  int lowpass_filter_width = 6;
  double rolloff = 0.99;
};

struct LoudnessOptions {
  double target_dbfs = -23.0;  // RMS target
  bool peak_limit = true;
  double peak_dbfs = -1.0;  // max peak after gain
  double full_scale = 1.0;  // 1 for [-1, 1] waves, 32768 for int16-scale waves
};

void parse(config::Reader& r, ResampleOptions& o);
void parse(config::Reader& r, LoudnessOptions& o);

at::Tensor resample(const at::Tensor& wave, int64_t orig_freq, int64_t new_freq,
                    const ResampleOptions& o = {});
// The (new_freq', 1, kernel) filter bank for the gcd-reduced rates and its half width.
at::Tensor resample_kernel(int64_t orig_freq, int64_t new_freq, const ResampleOptions& o,
                           at::ScalarType dtype, int64_t* width);

at::Tensor speed_perturb(const at::Tensor& wave, double factor, const ResampleOptions& o = {});

// 20 log10(rms / full_scale) and 20 log10(max|x| / full_scale) over the whole tensor (-inf if silent).
double rms_dbfs(const at::Tensor& wave, double full_scale = 1.0);
double peak_dbfs(const at::Tensor& wave, double full_scale = 1.0);
// Silent input is returned unchanged.
at::Tensor normalize_loudness(const at::Tensor& wave, const LoudnessOptions& o);

}  // namespace mmref::data
