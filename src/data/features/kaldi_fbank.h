// Kaldi-compatible log-mel filterbank (fbank) and MFCC features on tensors, matching
// torchaudio.compliance.kaldi.fbank / mfcc option for option (which in turn match Kaldi's
// compute-fbank-feats / compute-mfcc-feats). Input is a mono waveform on Kaldi's scale (int16 range,
// float dtype); output is (frames, bins) in the input's floating dtype.
//
// Pipeline per frame (window_size = sample_rate * frame_length_ms / 1000 samples, truncated):
//   frame (snip_edges: only whole frames; else reflect the ends, frames = (T + shift/2) / shift)
//   -> + dither * N(0,1) (seeded generator) -> - frame mean (remove_dc_offset) -> raw log energy
//   -> preemphasis x[j] -= k * x[j-1] (x[-1] = x[0]) -> window -> zero pad to a power of two
//   -> |rfft|^2 (or |rfft| when !use_power) -> triangular mel banks on Kaldi's mel scale
//      1127 ln(1 + f/700) -> log(max(x, float eps)) -> [energy column] -> [subtract column mean]
// MFCC: log-mel (power, log) -> orthonormal DCT-II (first num_ceps) -> lifter 1 + L/2 sin(pi i / L)
//   -> energy replaces C0 when use_energy -> htk_compat moves C0/energy last (C0 * sqrt(2)).
//
// Ref: pytorch/audio torchaudio/compliance/kaldi.py (0.13); kaldi src/feat/feature-fbank.cc,
//      feature-window.cc, mel-computations.cc.
// Tests: tests/data/features_kaldi_test.cpp (golden fixtures + torchaudio at test time).
// Bench: benchmarks/data/features_bench.cpp (BM_KaldiFbank10s).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::data {

struct KaldiFbankOptions {
  double frame_length_ms = 25.0;
  double frame_shift_ms = 10.0;
  double dither = 0.0;      // 0 = off; else N(0, dither^2) noise added per sample
  int64_t dither_seed = 0;  // seed of the generator used when no generator is passed
  double preemphasis_coefficient = 0.97;
  bool remove_dc_offset = true;
  std::string window_type = "povey";  // povey | hamming | hanning | rectangular | blackman
  double blackman_coeff = 0.42;
  bool round_to_power_of_two = true;
  bool snip_edges = true;
  int num_mel_bins = 23;
  double low_freq = 20.0;
  double high_freq = 0.0;     // <= 0: offset from Nyquist
  bool use_energy = false;    // prepend (append with htk_compat) the log energy column
  double energy_floor = 1.0;  // 0 = no floor (set it when dither is 0)
  bool raw_energy = true;     // energy before preemphasis and window
  bool use_log_fbank = true;
  bool use_power = true;
  bool htk_compat = false;
  bool subtract_mean = false;
};

struct KaldiMfccOptions {
  KaldiFbankOptions fbank;  // use_log_fbank / use_power / subtract_mean of this member are ignored
  int num_ceps = 13;
  double cepstral_lifter = 22.0;  // 0 = no liftering
  std::string dct = "ortho";      // ortho (Kaldi) | none (unnormalised DCT-II, 2 cos(...))
  bool subtract_mean = false;
};

// YAML keys are the field names (frame_length_ms, ...). KaldiMfccOptions reads the fbank keys and its
// own from one flat map. Both call r.finish().
void parse(config::Reader& r, KaldiFbankOptions& o);
void parse(config::Reader& r, KaldiMfccOptions& o);

// wave: (T) or (1, T) float/double on Kaldi's int16 scale. Returns (frames, num_mel_bins + use_energy).
// Throws mmref::Error for bad options or a wave shorter than one frame (snip_edges).
at::Tensor kaldi_fbank(const at::Tensor& wave, int sample_rate, const KaldiFbankOptions& o);
// The same with an explicit generator for dither (deterministic for a seeded generator).
at::Tensor kaldi_fbank(const at::Tensor& wave, int sample_rate, const KaldiFbankOptions& o,
                       at::Generator gen);
// (frames, num_ceps).
at::Tensor kaldi_mfcc(const at::Tensor& wave, int sample_rate, const KaldiMfccOptions& o);
at::Tensor kaldi_mfcc(const at::Tensor& wave, int sample_rate, const KaldiMfccOptions& o, at::Generator gen);

// Samples per frame and per shift as Kaldi computes them (truncating), and the number of frames:
// snip_edges: 1 + (T - size) / shift (0 when T < size); else (T + shift / 2) / shift.
int64_t kaldi_window_size(int sample_rate, double frame_length_ms);
int64_t kaldi_window_shift(int sample_rate, double frame_shift_ms);
int64_t kaldi_num_frames(int64_t num_samples, int64_t window_size, int64_t window_shift, bool snip_edges);

// Kaldi mel scale: 1127 ln(1 + f / 700) and its inverse.
double kaldi_mel_scale(double hz);
double kaldi_inverse_mel_scale(double mel);

// Triangular banks (num_bins, padded_window_size / 2 + 1) on the Kaldi mel scale (last column 0, as
// Kaldi ignores the Nyquist bin). high_freq <= 0 is an offset from Nyquist.
at::Tensor kaldi_mel_banks(int num_bins, int64_t padded_window_size, double sample_rate, double low_freq,
                           double high_freq);

// The frame window (window_size) of the given type (Kaldi's definitions, symmetric).
at::Tensor kaldi_window(const std::string& type, int64_t window_size, double blackman_coeff,
                        at::ScalarType dtype);

}  // namespace mmref::data
