// Log-mel spectrogram as Tacotron 2 / VITS / HiFi-GAN compute it, and the mel filterbank behind it.
//
//   mel_filterbank   (n_mels, n_fft / 2 + 1) triangles on the Slaney (librosa default) or HTK mel scale,
//                    optional Slaney area norm 2 / (f[i+2] - f[i]); same values as
//                    librosa.filters.mel(htk=..., norm='slaney') and torchaudio melscale_fbanks (which
//                    returns the transpose)
//   log_mel_spectrogram  wave (T) or (B, T) in [-1, 1]
//      -> padding: "hifigan" reflect-pads (n_fft - hop) / 2 each side, then STFT without centring
//                  (HiFi-GAN meldataset.py, VITS mel_processing.py); "center" = torch.stft center=True
//                  with reflect (NVIDIA Tacotron 2 stft.py)
//      -> |STFT| as sqrt(re^2 + im^2 + mag_eps) (HiFi-GAN 1e-9, VITS 1e-6, Tacotron 2 0), ^power
//      -> mel_filterbank @ spec -> log(clamp(x, min=log_clamp))      => (n_mels, frames) or (B, ...)
//
// Mel scales: HTK mel(f) = 2595 log10(1 + f/700) (mel(1000 Hz) = 1000.0); Slaney is linear below
// 1 kHz (f / (200/3)) and logarithmic above, break at 1000 Hz = 15 mel.
// Ref: jik876/hifi-gan meldataset.py; NVIDIA/tacotron2 layers.py + stft.py; librosa filters.mel;
//      torchaudio functional.melscale_fbanks (0.13).
// Tests: tests/data/features_mel_test.cpp (vs torchaudio at test time, hand-checked scale points).
#pragma once
#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::data {

struct LogMelOptions {
  int sample_rate = 22050;
  int64_t n_fft = 1024;
  int64_t hop_length = 256;
  int64_t win_length = 1024;
  int n_mels = 80;
  double fmin = 0.0;
  double fmax = 8000.0;              // <= 0: Nyquist
  std::string mel_scale = "slaney";  // slaney | htk
  std::string norm = "slaney";       // slaney | none
  std::string padding = "hifigan";   // hifigan | center
  double power = 1.0;                // 1 = magnitude (all three models), 2 = power
  double mag_eps = 1e-9;             // inside the sqrt; 0 = plain |STFT|
  double log_clamp = 1e-5;
};

void parse(config::Reader& r, LogMelOptions& o);

// Hz <-> mel on "slaney" or "htk" scales (as librosa hz_to_mel / mel_to_hz).
double hz_to_mel(double hz, const std::string& scale);
double mel_to_hz(double mel, const std::string& scale);

// (n_mels, n_freqs) filterbank for n_freqs STFT bins spanning 0..sample_rate/2 (float32).
at::Tensor mel_filterbank(int64_t n_freqs, double fmin, double fmax, int n_mels, int sample_rate,
                          const std::string& mel_scale = "slaney", const std::string& norm = "slaney");

// (n_mels, frames) for (T), (B, n_mels, frames) for (B, T).
at::Tensor log_mel_spectrogram(const at::Tensor& wave, const LogMelOptions& o);

// frames produced for T samples: hifigan: 1 + (T + 2 * ((n_fft - hop) / 2) - n_fft) / hop;
// center: 1 + T / hop.
int64_t log_mel_num_frames(int64_t num_samples, const LogMelOptions& o);

}  // namespace mmref::data
