// Signal-based speech quality proxies as TTS, vocoder and enhancement papers report them. Every metric
// takes mono waveforms with their sample rates (Waveform) and computes in float64. F0 (YIN) metrics are
// in eval/pitch.h.
//
//   si_sdr(ref, est)        scale-invariant SDR in dB (Le Roux et al. 2019), both signals zero-mean:
//                             alpha = (<est, ref> + eps) / (<ref, ref> + eps),  s = alpha * ref,
//                             SI-SDR = 10 log10((|s|^2 + eps) / (|s - est|^2 + eps))
//                           eps = finfo(dtype of est).eps as torchmetrics
//                           scale_invariant_signal_distortion_ratio(zero_mean=True) (asteroid's "sisdr"
//                           with zero_mean); est = c * ref gives about 10 log10(c^2 |ref|^2 / eps)
//                           (~ +110 dB for 10 s of float32 speech at -20 dBFS), not +inf.
//   sdr(ref, est)           plain SDR = 10 log10((|ref|^2 + eps) / (|ref - est|^2 + eps)) (no scaling, no
//                           mean removal: asteroid "snr"). NOT the BSS-eval SDR with a 512-tap distortion
//                           filter that torchmetrics signal_distortion_ratio / mir_eval compute.
//   mel_cepstrum(w)         (frames, K) MFCC-style mel cepstrum, librosa.feature.mfcc semantics at TTS
//                           STFT settings (a WORLD/SPTK mcep analysis is not available here):
//                             |STFT|^2 (1024 fft, 256 hop, periodic hann, centred, zero padded)
//                             -> 80-band Slaney mel filterbank (librosa.filters.mel defaults, fmax sr/2)
//                             -> 10 log10(max(S, 1e-10)), clamped to max - 80 dB (librosa power_to_db;
//                                log = "log10" / "ln" rescale this to log10 S / ln S after the clamp)
//                             -> DCT-II ortho over the mel axis, c0..c12, c0 dropped => K = 12
//   dtw(a, b)               exact DTW, Euclidean local distance, symmetric steps (i-1,j-1), (i-1,j),
//                           (i,j-1) with weight 1 each: D(i,j) = d(i,j) + min(D(i-1,j-1), D(i-1,j),
//                           D(i,j-1)); ties prefer the diagonal, then (i-1,j). O(N M) time, O(N M) bytes.
//   mcd(ref, syn)           MCD = (10 / ln 10) * sqrt(2) * mean over aligned pairs (i,j) of
//                             sqrt(sum_k (c_k[i] - c'_k[j])^2)
//                           over the DTW path (default) or frame-by-frame after truncating to the shorter.
//                           Note: on dB-scaled DCT-ortho MFCCs the numbers are NOT on the scale of
//                           SPTK-mcep MCD (typically ~4-8 dB for TTS): the same sentence from espeak-ng
//                           at 175 vs 140 words/min gives 80.7 (log = "log10": 8.07), another sentence
//                           521. Compare like with like and record the options (they are all here).
//                           Exact DTW, not the fastdtw approximation several MCD scripts use.
//   lsd(ref, syn)           LSD = mean over frames of sqrt(mean over bins of
//                             (10 log10 max(P_ref, eps) - 10 log10 max(P_syn, eps))^2)
//                           P = |STFT|^2 (2048 fft, 512 hop, hann, torch.stft center reflect default),
//                           eps = 1e-10 (power floor, -100 dB). Equal lengths (or truncate = true).
//   stoi(clean, processed)  STOI (Taal et al. 2011) as pystoi 0.3 computes it: resample to 10 kHz with the
//                           Octave-compatible Kaiser-windowed sinc (pystoi utils.resample_oct: 60 dB
//                           rejection, rolloff 1/10 of the cutoff, scipy resample_poly framing); drop
//                           frames of the clean signal more than 40 dB below its loudest (256-sample
//                           MATLAB-hanning frames, hop 128, overlap-add of the kept frames); 512-point
//                           STFT; 15 one-third octave bands from 150 Hz; 30-frame (384 ms) segments,
//                           clipping at beta = -15 dB; mean correlation. extended = true gives ESTOI
//                           (Jensen & Taal 2016, pystoi extended=True) without pystoi's eps-sized random
//                           dither before each normalisation (a +eps in the norms instead; they differ
//                           only on constant rows/columns, e.g. digital silence in a band). pystoi returns
//                           1e-5 when fewer than 30 frames survive; here that throws.
//
// Bad input (empty, NaN/Inf, multi-channel, non-float, rate <= 0, mismatched rates or lengths where
// the metric needs them equal) throws mmref::Error naming the metric, the signal and what to do.
// Ref: Le Roux et al., "SDR - half-baked or well done?", ICASSP 2019; torchmetrics functional/audio/sdr.py;
//      librosa feature/spectral.py mfcc, core/spectrum.py power_to_db; Kubichek, "Mel-cepstral distance
//      measure for objective speech quality assessment", 1993; Taal et al., IEEE TASLP 19(7) 2011;
//      Jensen & Taal, IEEE/ACM TASLP 24(11) 2016; mpariente/pystoi stoi.py, utils.py (0.3.3).
// Tests: tests/eval/speech_quality_test.cpp (numpy/scipy references at test time via /usr/bin/python3).
// Bench: benchmarks/eval/speech_quality_bench.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/config.h"

namespace mmref::eval {

// A mono waveform and its sample rate: (T) or (1, T) floating point (float32 or float64), any scale.
struct Waveform {
  at::Tensor samples;
  int sample_rate = 0;
};

// Validates `w` and returns its samples as a contiguous float64 (T) CPU tensor. `what` names the signal in
// messages ("si_sdr: reference"). Throws mmref::Error for undefined/empty tensors, non-floating dtypes,
// more than one channel, NaN/Inf samples or a sample rate <= 0.
at::Tensor mono_f64(const Waveform& w, const std::string& what);
// Throws mmref::Error "<metric>: <a_name> is at A Hz but <b_name> at B Hz; ..." when the rates differ.
void check_same_rate(const Waveform& a, const Waveform& b, const std::string& metric, const char* a_name,
                     const char* b_name);

struct SiSdrOptions {
  bool zero_mean = true;
  double eps = 0;  // 0 = machine epsilon of the estimate's dtype (torchmetrics)
};

double si_sdr(const Waveform& reference, const Waveform& estimate, const SiSdrOptions& o = {});
double sdr(const Waveform& reference, const Waveform& estimate, double eps = 0);

struct MelCepstrumOptions {
  int64_t n_fft = 1024;
  int64_t hop_length = 256;
  int64_t win_length = 1024;          // periodic hann, zero padded to n_fft
  bool center = true;                 // pad n_fft / 2 each side with pad_mode
  std::string pad_mode = "constant";  // librosa >= 0.10 default; reflect | constant
  int n_mels = 80;
  double fmin = 0;
  double fmax = 0;                   // <= 0: Nyquist (librosa default)
  std::string mel_scale = "slaney";  // slaney | htk
  std::string norm = "slaney";       // slaney | none
  double amin = 1e-10;               // power floor before the log
  double top_db = 80;                // clamp at (max dB - top_db) over the utterance; <= 0: off
  // Log of the mel power before the DCT: "db" 10 log10 (librosa power_to_db, the default), "log10"
  // (the mel-cepstral-distance package), "ln" (natural log). MCD scales with it: db = 10 x log10.
  std::string log = "db";
  int n_mfcc = 13;          // DCT coefficients c0 .. c_{n_mfcc-1}
  bool include_c0 = false;  // MCD conventionally excludes the energy term c0
};

struct McdOptions {
  MelCepstrumOptions cepstrum;
  std::string alignment = "dtw";  // dtw | truncate (frame i with frame i, up to the shorter)
};

struct LsdOptions {
  int64_t n_fft = 2048;
  int64_t hop_length = 512;
  int64_t win_length = 2048;
  bool center = true;
  std::string pad_mode = "reflect";  // torch.stft default; reflect needs T > n_fft / 2
  double eps = 1e-10;                // power floor
  bool truncate = false;             // false: lengths must match; true: cut both to the shorter
};

struct StoiOptions {
  bool extended = false;  // ESTOI
};

void parse(config::Reader& r, MelCepstrumOptions& o);
void parse(config::Reader& r, McdOptions& o);
void parse(config::Reader& r, LsdOptions& o);
void parse(config::Reader& r, StoiOptions& o);

// (frames, K) float64, frames = 1 + T / hop with center (else 1 + (T - n_fft) / hop).
at::Tensor mel_cepstrum(const Waveform& w, const MelCepstrumOptions& o = {});

using AlignmentPath = std::vector<std::pair<int64_t, int64_t>>;

struct DtwResult {
  AlignmentPath path;  // (i, j) from (0, 0) to (N-1, M-1)
  double cost = 0;     // sum of local distances along the path
};

// a (N, D), b (M, D) -> the minimum-cost monotone alignment (see the top of this file).
DtwResult dtw(const at::Tensor& a, const at::Tensor& b);

// Matches (i, i) for i < min(n_a, n_b).
AlignmentPath truncate_alignment(int64_t n_a, int64_t n_b);

struct McdResult {
  double mcd = 0;           // dB
  int64_t path_length = 0;  // aligned frame pairs averaged over
  int64_t frames_ref = 0, frames_syn = 0;
  double dtw_cost = 0;  // sum of sqrt(sum_k diff^2) along the path (before the dB constant)
};

// MCD from cepstra computed elsewhere: (N, K) and (M, K) with the same K.
McdResult mcd_from_cepstra(const at::Tensor& ref_cep, const at::Tensor& syn_cep,
                           const std::string& alignment = "dtw");
McdResult mcd(const Waveform& reference, const Waveform& synthesized, const McdOptions& o = {});

double lsd(const Waveform& reference, const Waveform& synthesized, const LsdOptions& o = {});

// clean and processed must have the same rate and length (pystoi raises otherwise).
double stoi(const Waveform& clean, const Waveform& processed, const StoiOptions& o = {});

// pystoi utils.resample_oct(x, p, q) on (T) float64: out length ceil(T * p' / q') for the gcd-reduced
// rates. Exposed for the tests.
at::Tensor resample_octave(const at::Tensor& x, int64_t up, int64_t down);

}  // namespace mmref::eval
