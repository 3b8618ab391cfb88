// STFT / ISTFT on tensors (thin wrappers over at::stft / at::istft with return_complex and named
// windows) and Griffin-Lim phase reconstruction (fast Griffin-Lim with momentum, as torchaudio).
//
//   stft(x (T) or (B, T))           -> complex (F, frames) or (B, F, frames), F = n_fft / 2 + 1
//   istft(spec, length)             -> (T) or (B, T); istft(stft(x), T) == x to float round-off
//   griffin_lim(|S|^power, ...)     -> waveform whose STFT magnitude approaches |S|
//   spectral_convergence(x, |S|)    -> || |STFT(x)| - |S| ||_F / || |S| ||_F
//
// Ref: pytorch/audio torchaudio/functional/functional.py griffinlim (0.13): momentum m is used as
// m / (1 + m), angles start random (or at 1), each step angles = rebuilt - m' * previous, normalised.
// Tests: tests/data/features_stft_test.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::data {

struct StftOptions {
  int64_t n_fft = 1024;
  int64_t hop_length = 256;
  int64_t win_length = 1024;         // <= n_fft; the window is zero padded to n_fft, centred
  std::string window = "hann";       // hann | hamming | blackman | rectangular (periodic windows)
  bool center = true;                // pad n_fft / 2 each side with pad_mode
  std::string pad_mode = "reflect";  // reflect | constant | replicate | circular
  bool normalized = false;
};

struct GriffinLimOptions {
  int n_iter = 32;
  double momentum = 0.99;  // in [0, 1); 0 = plain Griffin-Lim
  double power = 1.0;      // the input is |S|^power
  bool rand_init = true;   // random initial phase (from the generator) or phase 0
  int64_t seed = 0;        // used when no generator is passed
};

void parse(config::Reader& r, StftOptions& o);
void parse(config::Reader& r, GriffinLimOptions& o);

// A periodic window of `length` samples (what at::stft users pass: torch.hann_window default).
at::Tensor make_window(const std::string& name, int64_t length, at::ScalarType dtype = at::kFloat);

at::Tensor stft(const at::Tensor& x, const StftOptions& o);
// length: output samples (default: what the frames cover).
at::Tensor istft(const at::Tensor& spec, const StftOptions& o, std::optional<int64_t> length = std::nullopt);

// magnitude: (F, frames) or (B, F, frames), real, |S|^power.
at::Tensor griffin_lim(const at::Tensor& magnitude, const StftOptions& stft_options,
                       const GriffinLimOptions& o, std::optional<int64_t> length = std::nullopt);
at::Tensor griffin_lim(const at::Tensor& magnitude, const StftOptions& stft_options,
                       const GriffinLimOptions& o, std::optional<int64_t> length, at::Generator gen);

// || |stft(x)| - magnitude ||_F / || magnitude ||_F (magnitude with power 1).
double spectral_convergence(const at::Tensor& x, const at::Tensor& magnitude, const StftOptions& o);

}  // namespace mmref::data
