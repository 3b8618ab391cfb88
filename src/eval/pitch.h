// F0 tracking with YIN and the F0 metrics TTS papers report (F0 RMSE in Hz and cents, voicing decision
// error, gross pitch error), on Waveforms (eval/speech_quality.h).
//
//   yin(w)  -> F0Track: per frame f0 in Hz (0 = unvoiced), voiced flag, aperiodicity d'(tau*)
//     Frames are centred (zero padding of frame_length / 2 each side, librosa.yin center=True), so frame i
//     is centred on sample i * hop and there are 1 + T / hop frames. Per frame x[0, L), integration
//     window W = L / 2 (librosa's default win_length), lags tau in [0, tau_max]:
//       d(tau)  = sum_{j=0}^{W-1} (x[j] - x[j + tau])^2           (step 2, difference function;
//                 = E[0,W) + E[tau,tau+W) - 2 r(tau), r by FFT of size L, clamped >= 0)
//       d'(0) = 1, d'(tau) = d(tau) / ((1/tau) sum_{k=1}^{tau} d(k))   (step 3, CMND)
//       tau_min = max(1, floor(sr / fmax)), tau_max = min(ceil(sr / fmin), L - W - 1)
//       step 4, absolute threshold: the first tau in [tau_min, tau_max] with d'(tau) < threshold, moved
//         down to the bottom of that dip; if none, the global minimum of d' there (and the frame is
//         unvoiced)
//       step 5, parabolic interpolation of d' at tau*-1, tau*, tau*+1 (shift |delta| <= 1)
//       f0 = sr / (tau* + delta)
//     voiced = a dip below the threshold exists AND the frame's RMS is above silence_db dBFS (YIN has no
//     silence model: digital silence has d' = 0/0). Defaults fmin 50 Hz, fmax 500 Hz, threshold 0.1,
//     frame 1024 / hop 256 at 22.05 kHz, scaled to the rate: L = 2 round(512 sr / 22050), hop =
//     round(256 sr / 22050) (743 -> 744 / 186 at 16 kHz, 1114 / 279 at 24 kHz).
//     Not implemented: the paper's step 6 (best local estimate) and pYIN's HMM voicing.
//
//   f0_metrics(ref, syn)  over aligned frame pairs (i, j):
//     alignment "dtw" (default): the DTW path (speech_quality.h dtw) between the two signals' mel cepstra,
//       computed with the YIN frame grid (n_fft = win = L, hop as YIN, centred) so path indices are YIN
//       frames; "truncate": (i, i) for i < min(N, M).
//     rmse_hz    = sqrt(mean over pairs voiced in both of (f_syn - f_ref)^2)
//     rmse_cents = sqrt(mean of (1200 log2(f_syn / f_ref))^2) over the same pairs
//     vde        = fraction of ALL pairs whose voiced flags differ (Nakatani et al. 2008)
//     gpe        = fraction of voiced-both pairs with |f_syn / f_ref - 1| > gross_error (0.2)
//     rmse_* and gpe are NaN when no pair is voiced in both (voiced_both == 0).
//
// Ref: de Cheveigne & Kawahara, "YIN, a fundamental frequency estimator for speech and music", JASA 111(4)
//      2002; librosa core/pitch.py yin (framing and lag range); Nakatani et al., "A method for fundamental
//      frequency estimation and voicing decision", Speech Communication 2008 (VDE, GPE).
// Tests: tests/eval/pitch_test.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "eval/speech_quality.h"

namespace mmref::eval {

struct YinOptions {
  double fmin = 50;
  double fmax = 500;
  double threshold = 0.1;    // absolute threshold on d'
  int64_t frame_length = 0;  // 0 = 2 round(512 sr / 22050); must be even
  int64_t hop_length = 0;    // 0 = round(256 sr / 22050)
  double silence_db = -60;   // frames with RMS below this (dBFS, full scale 1) are unvoiced
};

struct F0Track {
  std::vector<double> f0_hz;         // 0 where unvoiced
  std::vector<uint8_t> voiced;       // 1 = voiced
  std::vector<double> aperiodicity;  // d'(tau*) (1 for silent frames)
  int sample_rate = 0;
  int64_t frame_length = 0, hop_length = 0;
  int64_t size() const { return static_cast<int64_t>(f0_hz.size()); }
};

struct F0MetricsOptions {
  YinOptions yin;
  std::string alignment = "dtw";    // dtw | truncate
  MelCepstrumOptions dtw_features;  // DTW features; n_fft, win_length, hop_length, center come from yin
  double gross_error = 0.2;
};

struct F0Metrics {
  double rmse_hz = 0, rmse_cents = 0, vde = 0, gpe = 0;
  int64_t pairs = 0;        // aligned frame pairs
  int64_t voiced_both = 0;  // pairs voiced in both tracks
  int64_t frames_ref = 0, frames_syn = 0;
};

void parse(config::Reader& r, YinOptions& o);
void parse(config::Reader& r, F0MetricsOptions& o);

// The frame length and hop YIN uses at `sample_rate` (the defaults resolved).
int64_t yin_frame_length(const YinOptions& o, int sample_rate);
int64_t yin_hop_length(const YinOptions& o, int sample_rate);

F0Track yin(const Waveform& w, const YinOptions& o = {});

// On tracks and an alignment path of (ref frame, syn frame) pairs (indices must be in range).
F0Metrics f0_metrics(const F0Track& ref, const F0Track& syn, const AlignmentPath& pairs,
                     double gross_error = 0.2);
F0Metrics f0_metrics(const Waveform& reference, const Waveform& synthesized, const F0MetricsOptions& o = {});

}  // namespace mmref::eval
