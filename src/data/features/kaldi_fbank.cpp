// Kaldi-compatible fbank / MFCC (see kaldi_fbank.h for the pipeline).
// Ref: pytorch/audio torchaudio/compliance/kaldi.py (0.13) -- same order of operations, so float32
// results agree with torchaudio's to round-off.
#include "data/features/kaldi_fbank.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <cmath>
#include <vector>
#include <limits>

#include "core/error.h"

namespace mmref::data {
namespace {

constexpr double kPi = 3.14159265358979323846;
// numeric_limits<float>::epsilon(): Kaldi's floor for log(), whatever the dtype (torchaudio too).
constexpr double kFloatEps = 1.1920928955078125e-07;

void check_options(const KaldiFbankOptions& o, int sample_rate) {
  if (sample_rate <= 0) MMREF_FAIL("kaldi_fbank: sample_rate must be > 0, got {}", sample_rate);
  if (!(o.frame_shift_ms > 0)) MMREF_FAIL("kaldi_fbank: frame_shift_ms must be > 0");
  if (o.preemphasis_coefficient < 0 || o.preemphasis_coefficient > 1)
    MMREF_FAIL("kaldi_fbank: preemphasis_coefficient must be in [0, 1], got {}", o.preemphasis_coefficient);
  if (o.num_mel_bins < 3) MMREF_FAIL("kaldi_fbank: num_mel_bins must be >= 3, got {}", o.num_mel_bins);
  if (o.dither < 0) MMREF_FAIL("kaldi_fbank: dither must be >= 0, got {}", o.dither);
}

int64_t next_power_of_two(int64_t x) {
  int64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

// (T) from (T) or (1, T); floating dtype.
at::Tensor mono_wave(const at::Tensor& wave) {
  if (!wave.defined()) MMREF_FAIL("kaldi_fbank: wave is undefined");
  at::Tensor w = wave;
  if (w.dim() == 2) {
    if (w.size(0) != 1)
      MMREF_FAIL("kaldi_fbank: wave must be (T) or (1, T), got ({}, {}); pick one channel first", w.size(0),
                 w.size(1));
    w = w[0];
  }
  if (w.dim() != 1) MMREF_FAIL("kaldi_fbank: wave must be (T) or (1, T), got {} dims", w.dim());
  if (!w.is_floating_point()) w = w.to(at::kFloat);
  return w.contiguous();
}

struct Framed {
  at::Tensor frames;      // (m, padded) windowed frames, zero padded for the FFT
  at::Tensor log_energy;  // (m)
  int64_t padded = 0;
};

at::Tensor log_energy_of(const at::Tensor& frames, double energy_floor) {
  at::Tensor e = at::clamp_min(frames.pow(2).sum(1), kFloatEps).log();
  if (energy_floor != 0.0) e = at::clamp_min(e, std::log(energy_floor));
  return e;
}

// Frames, dither, DC removal, energy, preemphasis and window (kaldi.py _get_window).
Framed frame_signal(const at::Tensor& wave_in, int sample_rate, const KaldiFbankOptions& o,
                    at::Generator* gen) {
  check_options(o, sample_rate);
  at::Tensor wave = mono_wave(wave_in);
  const int64_t size = kaldi_window_size(sample_rate, o.frame_length_ms);
  const int64_t shift = kaldi_window_shift(sample_rate, o.frame_shift_ms);
  const int64_t padded = o.round_to_power_of_two ? next_power_of_two(size) : size;
  const int64_t n = wave.size(0);
  if (size < 2 || size > n)
    MMREF_FAIL("kaldi_fbank: window of {} samples ({} ms at {} Hz) must be in [2, {}] (the wave length)",
               size, o.frame_length_ms, sample_rate, n);
  if (shift <= 0) MMREF_FAIL("kaldi_fbank: frame shift of {} ms is under one sample", o.frame_shift_ms);
  if (padded % 2 != 0)
    MMREF_FAIL(
        "kaldi_fbank: padded window size {} is odd; set round_to_power_of_two or change "
        "frame_length_ms",
        padded);

  const int64_t m = kaldi_num_frames(n, size, shift, o.snip_edges);
  at::Tensor src = wave;
  if (!o.snip_edges) {
    // Reflect with the edge sample repeated, as Kaldi does: [2, 1, 0 | 0, 1, 2, ...]
    at::Tensor rev = at::flip(wave, {0});
    const int64_t pad = size / 2 - shift / 2;
    if (pad > 0) {
      src = at::cat({rev.slice(0, n - pad, n), wave, rev}, 0);
    } else {
      src = at::cat({wave.slice(0, -pad, n), rev}, 0);
    }
  }
  at::Tensor frames = src.as_strided({m, size}, {shift, 1});  // (m, size), a view

  if (o.dither != 0.0) {
    at::Tensor noise = at::randn({m, size}, gen ? c10::optional<at::Generator>(*gen) : c10::nullopt,
                                 frames.options().device(at::kCPU))
                           .to(frames.device());
    frames = frames + noise * o.dither;
  }
  if (o.remove_dc_offset) frames = frames - frames.mean(1, /*keepdim=*/true);
  at::Tensor log_energy;
  if (o.raw_energy) log_energy = log_energy_of(frames, o.energy_floor);
  // Preemphasis and window are written straight into the zero-padded FFT input (m, padded). Measured
  // on 10 s at 16 kHz (80 mels, one thread, 2-core Xeon VM): this and the power step in fbank_impl
  // took fbank from 4.9 ms (torchaudio's op sequence: cat + sub + mul + pad, |.|^2 via a size-2
  // reduction) to 3.3 ms; preemphasis alone went from 1.0 ms to ~0.3 ms.
  at::Tensor out = at::empty({m, padded}, frames.options());
  if (padded > size) out.slice(1, size, padded).zero_();
  at::Tensor body = out.slice(1, 0, size);
  const at::Tensor window =
      kaldi_window(o.window_type, size, o.blackman_coeff, frames.scalar_type()).to(frames.device());
  const double k = o.preemphasis_coefficient;
  if (k != 0.0) {
    // x[j] -= k * x[j - 1] with x[-1] = x[0]  =>  x[0] * (1 - k) for the first sample.
    at::Tensor tail = body.slice(1, 1, size);
    at::sub_out(tail, frames.slice(1, 1, size), frames.slice(1, 0, size - 1), k);
    body.select(1, 0).copy_(frames.select(1, 0) * (1.0 - k));
    body.mul_(window);
  } else {
    at::mul_out(body, frames, window.unsqueeze(0));
  }
  // Zero padding does not change the energy, so the windowed energy is taken on the body.
  if (!o.raw_energy) log_energy = log_energy_of(body, o.energy_floor);
  return {out, log_energy, padded};
}

at::Tensor subtract_column_mean(const at::Tensor& x) { return x - x.mean(0, /*keepdim=*/true); }

// mel[t, b] = sum_{k in [lo_b, hi_b)} banks[b, k] * |X_t[k]|^2 (power) or |X_t[k]|, where [lo_b, hi_b) is
// the nonzero range of bank b; ri (m, bins, 2) holds (re, im).
template <typename T>
void apply_banks(const at::Tensor& ri, const at::Tensor& banks, bool power, at::Tensor& mel) {
  const int64_t m = ri.size(0), bins = ri.size(1), nb = banks.size(0);
  const at::Tensor bc = banks.contiguous();
  const T* w = bc.data_ptr<T>();
  std::vector<int64_t> lo(nb, 0), hi(nb, 0);
  for (int64_t b = 0; b < nb; ++b) {
    int64_t k0 = 0, k1 = bins;
    while (k0 < bins && w[b * bins + k0] == T(0)) ++k0;
    while (k1 > k0 && w[b * bins + k1 - 1] == T(0)) --k1;
    lo[b] = k0, hi[b] = k1;
  }
  const T* x = ri.data_ptr<T>();
  T* out = mel.data_ptr<T>();
  std::vector<T> mag(bins);
  for (int64_t t = 0; t < m; ++t) {
    const T* row = x + t * bins * 2;
    for (int64_t k = 0; k < bins; ++k) {
      const T p = row[2 * k] * row[2 * k] + row[2 * k + 1] * row[2 * k + 1];
      mag[k] = power ? p : std::sqrt(p);
    }
    for (int64_t b = 0; b < nb; ++b) {
      T acc = 0;
      for (int64_t k = lo[b]; k < hi[b]; ++k) acc += w[b * bins + k] * mag[k];
      out[t * nb + b] = acc;
    }
  }
}

at::Tensor fbank_impl(const at::Tensor& wave, int sample_rate, const KaldiFbankOptions& o,
                      at::Generator* gen) {
  Framed f = frame_signal(wave, sample_rate, o, gen);
  at::Tensor banks = kaldi_mel_banks(o.num_mel_bins, f.padded, sample_rate, o.low_freq, o.high_freq)
                         .to(f.frames.options());                           // (num_mel_bins, padded / 2 + 1)
  const at::Tensor spec = at::fft_rfft(f.frames, c10::nullopt, /*dim=*/1);  // (m, padded / 2 + 1)
  // sum_k B[b, k] (re_k^2 + im_k^2) (or sqrt of it) over each triangle's nonzero range only: a triangle
  // spans a few FFT bins, so this is ~80x fewer multiply-adds than the dense matmul and calls no BLAS --
  // whose idle worker threads spin on sched_yield after every small gemm and took a whole core from the
  // DataLoader's workers (measured with `mmref bench loader`, see apply_banks).
  const at::Tensor ri = at::view_as_real(spec).contiguous();  // (m, padded / 2 + 1, 2)
  at::Tensor mel = at::empty({spec.size(0), banks.size(0)}, f.frames.options());
  if (f.frames.scalar_type() == at::kDouble) {
    apply_banks<double>(ri, banks, o.use_power, mel);
  } else {
    apply_banks<float>(ri, banks.to(at::kFloat), o.use_power, mel);
  }
  if (o.use_log_fbank) mel = at::clamp_min(mel, kFloatEps).log();
  if (o.use_energy) {
    at::Tensor e = f.log_energy.unsqueeze(1);
    mel = o.htk_compat ? at::cat({mel, e}, 1) : at::cat({e, mel}, 1);
  }
  if (o.subtract_mean) mel = subtract_column_mean(mel);
  return mel;
}

// (num_mel_bins, num_ceps) right-multiplied DCT (torchaudio create_dct layout).
at::Tensor dct_matrix(int num_ceps, int num_mel_bins, const std::string& norm) {
  at::Tensor n = at::arange(num_mel_bins, at::kDouble).unsqueeze(1);
  at::Tensor k = at::arange(num_ceps, at::kDouble).unsqueeze(0);
  at::Tensor d = at::cos((n + 0.5) * k * (kPi / num_mel_bins));
  if (norm == "ortho") {
    d = d * std::sqrt(2.0 / num_mel_bins);
    d.select(1, 0).fill_(std::sqrt(1.0 / num_mel_bins));  // Kaldi: C0 = sum * sqrt(1/N)
  } else {
    d = d * 2.0;
  }
  return d;
}

at::Tensor mfcc_impl(const at::Tensor& wave, int sample_rate, const KaldiMfccOptions& o, at::Generator* gen) {
  if (o.num_ceps < 1 || o.num_ceps > o.fbank.num_mel_bins)
    MMREF_FAIL("kaldi_mfcc: num_ceps must be in [1, num_mel_bins={}], got {}", o.fbank.num_mel_bins,
               o.num_ceps);
  if (o.dct != "ortho" && o.dct != "none")
    MMREF_FAIL("kaldi_mfcc: dct must be 'ortho' or 'none', got '{}'", o.dct);
  KaldiFbankOptions fo = o.fbank;
  fo.use_log_fbank = true;
  fo.use_power = true;
  fo.subtract_mean = false;
  at::Tensor feat = fbank_impl(wave, sample_rate, fo, gen);
  const int nb = fo.num_mel_bins;
  at::Tensor energy;
  if (fo.use_energy) {
    energy = feat.select(1, fo.htk_compat ? nb : 0).clone();
    const int off = fo.htk_compat ? 0 : 1;
    feat = feat.slice(1, off, off + nb);
  }
  feat = at::mm(feat, dct_matrix(o.num_ceps, nb, o.dct).to(feat.options()));  // (m, num_ceps)
  if (o.cepstral_lifter != 0.0) {
    at::Tensor i = at::arange(o.num_ceps, at::kDouble);
    at::Tensor lifter = 1.0 + 0.5 * o.cepstral_lifter * at::sin(i * (kPi / o.cepstral_lifter));
    feat = feat * lifter.to(feat.options()).unsqueeze(0);
  }
  if (fo.use_energy) feat.select(1, 0).copy_(energy);
  if (fo.htk_compat) {
    at::Tensor c0 = feat.slice(1, 0, 1);
    if (!fo.use_energy) c0 = c0 * std::sqrt(2.0);
    feat = at::cat({feat.slice(1, 1, o.num_ceps), c0}, 1);
  }
  if (o.subtract_mean) feat = subtract_column_mean(feat);
  return feat;
}

void parse_fbank_keys(config::Reader& r, KaldiFbankOptions& o) {
  r.opt("frame_length_ms", o.frame_length_ms, config::Range::positive());
  r.opt("frame_shift_ms", o.frame_shift_ms, config::Range::positive());
  r.opt("dither", o.dither, config::Range::at_least(0));
  r.opt("dither_seed", o.dither_seed);
  r.opt("preemphasis_coefficient", o.preemphasis_coefficient, config::Range::between(0, 1));
  r.opt("remove_dc_offset", o.remove_dc_offset);
  r.choice("window_type", o.window_type, {"povey", "hamming", "hanning", "rectangular", "blackman"});
  r.opt("blackman_coeff", o.blackman_coeff);
  r.opt("round_to_power_of_two", o.round_to_power_of_two);
  r.opt("snip_edges", o.snip_edges);
  r.opt("num_mel_bins", o.num_mel_bins, config::Range::at_least(3));
  r.opt("low_freq", o.low_freq, config::Range::at_least(0));
  r.opt("high_freq", o.high_freq);
  r.opt("use_energy", o.use_energy);
  r.opt("energy_floor", o.energy_floor, config::Range::at_least(0));
  r.opt("raw_energy", o.raw_energy);
  r.opt("use_log_fbank", o.use_log_fbank);
  r.opt("use_power", o.use_power);
  r.opt("htk_compat", o.htk_compat);
}

}  // namespace

void parse(config::Reader& r, KaldiFbankOptions& o) {
  parse_fbank_keys(r, o);
  r.opt("subtract_mean", o.subtract_mean);
  r.finish();
}

void parse(config::Reader& r, KaldiMfccOptions& o) {
  parse_fbank_keys(r, o.fbank);
  r.opt("num_ceps", o.num_ceps, config::Range::at_least(1));
  r.opt("cepstral_lifter", o.cepstral_lifter, config::Range::at_least(0));
  r.choice("dct", o.dct, {"ortho", "none"});
  r.opt("subtract_mean", o.subtract_mean);
  if (o.num_ceps > o.fbank.num_mel_bins)
    r.fail("num_ceps", fmt::format("must be <= num_mel_bins ({})", o.fbank.num_mel_bins));
  r.finish();
}

int64_t kaldi_window_size(int sample_rate, double frame_length_ms) {
  return static_cast<int64_t>(sample_rate * frame_length_ms * 0.001);
}

int64_t kaldi_window_shift(int sample_rate, double frame_shift_ms) {
  return static_cast<int64_t>(sample_rate * frame_shift_ms * 0.001);
}

int64_t kaldi_num_frames(int64_t num_samples, int64_t window_size, int64_t window_shift, bool snip_edges) {
  if (snip_edges) return num_samples < window_size ? 0 : 1 + (num_samples - window_size) / window_shift;
  return (num_samples + window_shift / 2) / window_shift;
}

double kaldi_mel_scale(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }
double kaldi_inverse_mel_scale(double mel) { return 700.0 * (std::exp(mel / 1127.0) - 1.0); }

at::Tensor kaldi_mel_banks(int num_bins, int64_t padded_window_size, double sample_rate, double low_freq,
                           double high_freq) {
  if (padded_window_size % 2 != 0) MMREF_FAIL("kaldi_mel_banks: padded window size must be even");
  const double nyquist = 0.5 * sample_rate;
  if (high_freq <= 0.0) high_freq += nyquist;
  if (!(low_freq >= 0.0 && low_freq < nyquist && high_freq > 0.0 && high_freq <= nyquist &&
        low_freq < high_freq))
    MMREF_FAIL("kaldi_mel_banks: bad low_freq {} / high_freq {} for Nyquist {}", low_freq, high_freq,
               nyquist);
  const int64_t num_fft_bins = padded_window_size / 2;
  const double bin_width = sample_rate / static_cast<double>(padded_window_size);
  const double mel_low = kaldi_mel_scale(low_freq);
  const double mel_high = kaldi_mel_scale(high_freq);
  const double delta = (mel_high - mel_low) / (num_bins + 1);

  at::Tensor b = at::arange(num_bins, at::kDouble).unsqueeze(1);
  at::Tensor left = mel_low + b * delta;
  at::Tensor center = mel_low + (b + 1.0) * delta;
  at::Tensor right = mel_low + (b + 2.0) * delta;
  at::Tensor mel = (1.0 + at::arange(num_fft_bins, at::kDouble) * (bin_width / 700.0)).log() * 1127.0;
  mel = mel.unsqueeze(0);
  at::Tensor up = (mel - left) / (center - left);
  at::Tensor down = (right - mel) / (right - center);
  at::Tensor banks = at::clamp_min(at::min(up, down), 0.0);  // (num_bins, num_fft_bins)
  return at::constant_pad_nd(banks, {0, 1}, 0.0);            // Nyquist column = 0
}

at::Tensor kaldi_window(const std::string& type, int64_t n, double blackman_coeff, at::ScalarType dtype) {
  const auto opts = at::TensorOptions().dtype(dtype);
  if (type == "hanning") return at::hann_window(n, /*periodic=*/false, opts);
  if (type == "hamming") return at::hamming_window(n, /*periodic=*/false, 0.54, 0.46, opts);
  if (type == "povey")
    return at::hann_window(n, /*periodic=*/false, opts.dtype(at::kDouble)).pow(0.85).to(dtype);
  if (type == "rectangular") return at::ones({n}, opts);
  if (type == "blackman") {
    const double a = 2 * kPi / static_cast<double>(n - 1);
    at::Tensor i = at::arange(n, at::kDouble);
    return (blackman_coeff - 0.5 * at::cos(a * i) + (0.5 - blackman_coeff) * at::cos(2 * a * i)).to(dtype);
  }
  MMREF_FAIL("kaldi_window: unknown window_type '{}' (povey, hamming, hanning, rectangular, blackman)", type);
}

at::Tensor kaldi_fbank(const at::Tensor& wave, int sample_rate, const KaldiFbankOptions& o) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(o.dither_seed));
  return fbank_impl(wave, sample_rate, o, &gen);
}

at::Tensor kaldi_fbank(const at::Tensor& wave, int sample_rate, const KaldiFbankOptions& o,
                       at::Generator gen) {
  return fbank_impl(wave, sample_rate, o, &gen);
}

at::Tensor kaldi_mfcc(const at::Tensor& wave, int sample_rate, const KaldiMfccOptions& o) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(o.fbank.dither_seed));
  return mfcc_impl(wave, sample_rate, o, &gen);
}

at::Tensor kaldi_mfcc(const at::Tensor& wave, int sample_rate, const KaldiMfccOptions& o, at::Generator gen) {
  return mfcc_impl(wave, sample_rate, o, &gen);
}

}  // namespace mmref::data
