// NISQA's mel-spectrogram front end and resampler; see nisqa_features.h.
#include "models/mos/nisqa_features.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include <ATen/Functions.h>

#include "core/error.h"

namespace mmref::models {
namespace {

constexpr double kPi = 3.14159265358979323846;
// librosa's Slaney scale constants (core/convert.py).
constexpr double kFSp = 200.0 / 3.0;             // Hz per mel below 1 kHz
constexpr double kMinLogHz = 1000.0;             // start of the log region
constexpr double kMinLogMel = kMinLogHz / kFSp;  // 15

double log_step() { return std::log(6.4) / 27.0; }

// numpy.linspace(start, stop, n): start + i * step, the last point exactly stop.
std::vector<double> linspace(double start, double stop, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  const double step = n > 1 ? (stop - start) / static_cast<double>(n - 1) : 0.0;
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + static_cast<double>(i) * step;
  if (n > 1) v.back() = stop;
  return v;
}

void check_wave(const at::Tensor& wave, const char* what) {
  if (wave.dim() != 1)
    MMREF_FAIL("{}: expected a 1-D wave, got {} dims (mix or pick a channel first)", what, wave.dim());
  if (!at::isFloatingType(wave.scalar_type()))
    MMREF_FAIL("{}: expected a floating-point wave in [-1, 1], got {}", what,
               c10::toString(wave.scalar_type()));
}

}  // namespace

double slaney_hz_to_mel(double hz) {
  if (hz >= kMinLogHz) return kMinLogMel + std::log(hz / kMinLogHz) / log_step();
  return hz / kFSp;
}

double slaney_mel_to_hz(double mel) {
  if (mel >= kMinLogMel) return kMinLogHz * std::exp(log_step() * (mel - kMinLogMel));
  return kFSp * mel;
}

at::Tensor slaney_mel_filterbank(double sample_rate, int64_t n_fft, int64_t n_mels, double fmin,
                                 double fmax) {
  if (sample_rate <= 0 || n_fft < 2 || n_mels < 1 || fmin < 0 || fmax <= fmin) {
    MMREF_FAIL(
        "mel filterbank: need sample_rate > 0, n_fft >= 2, n_mels >= 1 and 0 <= fmin < fmax (got {}, {}, "
        "{}, {}, {})",
        sample_rate, n_fft, n_mels, fmin, fmax);
  }
  const int64_t n_bins = 1 + n_fft / 2;
  const std::vector<double> fft_hz = linspace(0.0, sample_rate / 2.0, n_bins);
  std::vector<double> mel_hz = linspace(slaney_hz_to_mel(fmin), slaney_hz_to_mel(fmax), n_mels + 2);
  for (double& m : mel_hz) m = slaney_mel_to_hz(m);
  at::Tensor w = at::zeros({n_mels, n_bins}, at::kDouble);
  double* p = w.data_ptr<double>();
  for (int64_t m = 0; m < n_mels; ++m) {
    const auto i = static_cast<size_t>(m);
    const double lo = mel_hz[i], mid = mel_hz[i + 1], hi = mel_hz[i + 2];
    const double enorm = 2.0 / (hi - lo);  // Slaney: constant energy per band
    for (int64_t k = 0; k < n_bins; ++k) {
      const double f = fft_hz[static_cast<size_t>(k)];
      const double lower = (f - lo) / (mid - lo);  // -ramps[i] / fdiff[i]
      const double upper = (hi - f) / (hi - mid);  // ramps[i + 2] / fdiff[i + 1]
      p[m * n_bins + k] = std::max(0.0, std::min(lower, upper)) * enorm;
    }
  }
  return w;
}

at::Tensor reflect_pad_numpy(const at::Tensor& x, int64_t pad) {
  check_wave(x, "reflect pad");
  const int64_t n = x.size(0);
  if (pad < 0) MMREF_FAIL("reflect pad: negative pad {}", pad);
  if (pad == 0) return x;
  if (n < 2) MMREF_FAIL("reflect pad: needs at least 2 samples, got {}", n);
  // Reflection without repeating the edge has period 2 (n - 1); numpy applies it again for long pads.
  const int64_t period = 2 * (n - 1);
  at::Tensor j = at::arange(-pad, n + pad, at::TensorOptions().dtype(at::kLong).device(x.device()));
  j = at::remainder(j, period);
  j = at::where(j >= n, period - j, j);
  return x.index_select(0, j);
}

at::Tensor stft_magnitude(const at::Tensor& wave, int64_t n_fft, int64_t hop_length, int64_t win_length) {
  check_wave(wave, "STFT");
  if (n_fft < 2 || hop_length < 1 || win_length < 1 || win_length > n_fft) {
    MMREF_FAIL("STFT: need n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft (got {}, {}, {})", n_fft,
               hop_length, win_length);
  }
  const at::Tensor x = reflect_pad_numpy(wave.to(at::kDouble).contiguous(), n_fft / 2);  // center=True
  const int64_t n_frames = 1 + (x.size(0) - n_fft) / hop_length;
  if (n_frames < 1) MMREF_FAIL("STFT: a wave of {} samples is shorter than one frame", wave.size(0));
  // The periodic Hann window (scipy get_window(fftbins=True)) sits at offset (n_fft - win) / 2 inside the
  // zero-padded n_fft frame (librosa pad_center). A shift inside the frame only rotates the phase, so the
  // magnitude is the n_fft-point FFT of the win_length windowed samples.
  const int64_t offset = (n_fft - win_length) / 2;
  const at::Tensor window = 0.5 - 0.5 * at::cos(at::arange(win_length, x.options()) *
                                                (2.0 * kPi / static_cast<double>(win_length)));
  at::Tensor out = at::empty({1 + n_fft / 2, n_frames}, x.options());
  constexpr int64_t kChunk = 256;  // frames per FFT call: bounds the complex buffer to ~8 MB
  for (int64_t f0 = 0; f0 < n_frames; f0 += kChunk) {
    const int64_t nf = std::min(kChunk, n_frames - f0);
    const at::Tensor frames = x.as_strided({nf, win_length}, {hop_length, 1}, f0 * hop_length + offset);
    const at::Tensor spec = at::fft_rfft(frames * window, n_fft, /*dim=*/1);  // (nf, 1 + n_fft/2)
    out.narrow(1, f0, nf).copy_(spec.abs().t());
  }
  return out;
}

at::Tensor amplitude_to_db(const at::Tensor& s, double ref, double amin, double top_db) {
  if (amin <= 0) MMREF_FAIL("amplitude_to_db: amin must be > 0, got {}", amin);
  // librosa: power_to_db(S**2, ref=ref**2, amin=amin**2, top_db).
  const double a2 = amin * amin;
  at::Tensor db = 10.0 * at::log10(at::clamp_min(s.abs().square(), a2));
  db = db - 10.0 * std::log10(std::max(a2, ref * ref));
  if (top_db > 0 && db.numel() > 0) db = at::clamp_min(db, db.max().item<double>() - top_db);
  return db;
}

at::Tensor mel_spectrogram_db(const at::Tensor& wave, const NisqaMelOptions& o) {
  const at::Tensor mag = stft_magnitude(wave, o.n_fft, o.hop_length, o.win_length);  // (bins, frames)
  const at::Tensor fb = slaney_mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, 0.0, o.fmax).to(mag.device());
  return amplitude_to_db(at::matmul(fb, mag));  // (n_mels, frames)
}

at::Tensor segment_spec(const at::Tensor& spec, int64_t seg_length, int64_t seg_hop) {
  if (spec.dim() != 2)
    MMREF_FAIL("segment_spec: expected an (n_mels, frames) spectrogram, got {} dims", spec.dim());
  if (seg_length < 1 || seg_hop < 1) MMREF_FAIL("segment_spec: seg_length and seg_hop must be >= 1");
  if (spec.size(1) < seg_length)
    MMREF_FAIL("segment_spec: {} frames are fewer than one {}-frame segment", spec.size(1), seg_length);
  // unfold: (H, n, seg) with n = floor((T - seg) / hop) + 1 = ceil((T - seg + 1) / hop), as segment_specs.
  return spec.unfold(/*dimension=*/1, seg_length, seg_hop).permute({1, 0, 2}).unsqueeze(1).contiguous();
}

at::Tensor resample_kaiser_best(const at::Tensor& wave, int64_t from_hz, int64_t to_hz) {
  check_wave(wave, "resample");
  if (from_hz <= 0 || to_hz <= 0)
    MMREF_FAIL("resample: sample rates must be > 0 (got {} -> {})", from_hz, to_hz);
  const at::Tensor x = wave.to(at::kDouble).contiguous();
  if (from_hz == to_hz) return x;
  constexpr double kWidth = 64;  // zero crossings per side (lowpass_filter_width)
  constexpr double kRolloff = 0.9475937167399596;
  constexpr double kBeta = 14.769656459379492;
  const int64_t g = std::gcd(from_hz, to_hz);
  const int64_t orig = from_hz / g, dest = to_hz / g;
  const double base = static_cast<double>(std::min(orig, dest)) * kRolloff;
  const auto width = static_cast<int64_t>(std::ceil(kWidth * static_cast<double>(orig) / base));
  const int64_t taps = 2 * width + orig;
  if (static_cast<double>(dest) * static_cast<double>(taps) > 64.0 * 1024 * 1024) {
    MMREF_FAIL(
        "resample {} -> {} Hz: the reduced ratio {}:{} needs a {} x {} polyphase filter bank; resample to a "
        "rate with a larger common divisor first",
        from_hz, to_hz, orig, dest, dest, taps);
  }
  const auto opt = x.options();
  const at::Tensor idx = at::arange(-width, width + orig, opt).unsqueeze(0) / static_cast<double>(orig);
  at::Tensor t =
      at::arange(0, -dest, -1, opt).unsqueeze(1) / static_cast<double>(dest) + idx;  // (dest, taps)
  t = at::clamp(t * base, -kWidth, kWidth);
  const at::Tensor window =
      at::i0(kBeta * at::sqrt(1.0 - (t / kWidth).square())) / std::cyl_bessel_i(0.0, kBeta);
  t = t * kPi;
  const at::Tensor sinc = at::where(t == 0, at::ones_like(t), at::sin(t) / t);
  const at::Tensor kernel =
      (sinc * window * (base / static_cast<double>(orig))).unsqueeze(1);  // (dest, 1, taps)
  const at::Tensor padded = at::constant_pad_nd(x, {width, width + orig}).view({1, 1, -1});
  const at::Tensor y = at::conv1d(padded, kernel, {}, /*stride=*/orig);  // (1, dest, frames)
  const at::Tensor flat = y.squeeze(0).t().reshape({-1});
  const auto target = static_cast<int64_t>(
      std::ceil(static_cast<double>(dest) * static_cast<double>(x.size(0)) / static_cast<double>(orig)));
  return flat.narrow(0, 0, std::min(target, flat.size(0))).contiguous();
}

}  // namespace mmref::models
