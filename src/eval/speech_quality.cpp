// SI-SDR, SDR, mel-cepstral distortion with DTW, log-spectral distance and STOI / ESTOI (see
// speech_quality.h for the formulas and the implementations each one follows).
#include "eval/speech_quality.h"

#include <ATen/Functions.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "data/features/mel.h"
#include "data/features/stft.h"

namespace mmref::eval {
namespace {

constexpr double kLn10 = 2.302585092994046;
constexpr double kNumpyEps = DBL_EPSILON;  // np.finfo(float).eps, pystoi's EPS

std::string shape_str(const at::Tensor& t) { return fmt::format("({})", fmt::join(t.sizes(), ", ")); }

double dtype_eps(at::ScalarType t) {
  switch (t) {
    case at::kDouble:
      return DBL_EPSILON;
    case at::kHalf:
      return 0.0009765625;  // torch.finfo(float16).eps
    case at::kBFloat16:
      return 0.0078125;  // torch.finfo(bfloat16).eps
    default:
      return FLT_EPSILON;
  }
}

void check_same_length(const at::Tensor& a, const at::Tensor& b, const std::string& metric,
                       const char* a_name, const char* b_name, const char* why) {
  if (a.numel() != b.numel())
    MMREF_FAIL("{}: {} has {} samples but {} has {}; {}", metric, a_name, a.numel(), b_name, b.numel(), why);
}

data::StftOptions stft_options(int64_t n_fft, int64_t hop, int64_t win, bool center,
                               const std::string& pad_mode) {
  data::StftOptions so;
  so.n_fft = n_fft;
  so.hop_length = hop;
  so.win_length = win;
  so.window = "hann";
  so.center = center;
  so.pad_mode = pad_mode;
  return so;
}

// Checks that an STFT of `len` samples is possible and gives at least one frame.
void check_stft_input(int64_t len, const data::StftOptions& so, const std::string& what) {
  if (so.n_fft < 2 || so.hop_length < 1 || so.win_length < 1 || so.win_length > so.n_fft)
    MMREF_FAIL("{}: need n_fft >= 2, hop_length >= 1, 1 <= win_length <= n_fft (got {}, {}, {})", what,
               so.n_fft, so.hop_length, so.win_length);
  if (so.pad_mode != "reflect" && so.pad_mode != "constant")
    MMREF_FAIL("{}: pad_mode must be 'reflect' or 'constant', got '{}'", what, so.pad_mode);
  if (so.center && so.pad_mode == "reflect" && len <= so.n_fft / 2)
    MMREF_FAIL(
        "{}: {} samples is too short for a reflect-padded {}-point STFT (needs > {}); use longer audio "
        "or pad_mode 'constant'",
        what, len, so.n_fft, so.n_fft / 2);
  if (!so.center && len < so.n_fft)
    MMREF_FAIL("{}: {} samples is shorter than one {}-point STFT frame; use longer audio or center = true",
               what, len, so.n_fft);
}

// |STFT(x)|^2 as (F, frames) float64.
at::Tensor power_spectrogram(const at::Tensor& x, const data::StftOptions& so) {
  at::Tensor spec = data::stft(x, so);
  return at::real(spec).square() + at::imag(spec).square();
}

// scipy.fft.dct(type=2, norm="ortho") as an (n_out, n) matrix acting on the last axis of length n.
at::Tensor dct_ortho_matrix(int64_t n_out, int64_t n) {
  at::Tensor m = at::empty({n_out, n}, at::kDouble);
  double* p = m.data_ptr<double>();
  for (int64_t k = 0; k < n_out; ++k) {
    const double scale = k == 0 ? std::sqrt(1.0 / n) : std::sqrt(2.0 / n);
    for (int64_t i = 0; i < n; ++i) p[k * n + i] = scale * std::cos(M_PI * k * (2 * i + 1) / (2.0 * n));
  }
  return m;
}

void check_cepstrum_options(const MelCepstrumOptions& o) {
  if (o.n_mels < 1) MMREF_FAIL("mel_cepstrum: n_mels must be >= 1, got {}", o.n_mels);
  if (o.n_mfcc < 1 || o.n_mfcc > o.n_mels)
    MMREF_FAIL("mel_cepstrum: n_mfcc must be in [1, n_mels={}], got {}", o.n_mels, o.n_mfcc);
  if (!o.include_c0 && o.n_mfcc < 2)
    MMREF_FAIL("mel_cepstrum: n_mfcc {} without c0 leaves no coefficients; use n_mfcc >= 2", o.n_mfcc);
  if (!(o.amin > 0)) MMREF_FAIL("mel_cepstrum: amin must be > 0, got {}", o.amin);
  if (o.log != "db" && o.log != "log10" && o.log != "ln")
    MMREF_FAIL("mel_cepstrum: log must be 'db', 'log10' or 'ln', got '{}'", o.log);
}

at::Tensor mel_cepstrum_impl(const at::Tensor& x, int sample_rate, const MelCepstrumOptions& o,
                             const std::string& what) {
  check_cepstrum_options(o);
  const data::StftOptions so = stft_options(o.n_fft, o.hop_length, o.win_length, o.center, o.pad_mode);
  check_stft_input(x.numel(), so, what);
  at::Tensor power = power_spectrogram(x, so);  // (F, frames)
  // librosa.filters.mel computes in float64 and returns float32 (its default dtype); so does ours.
  at::Tensor fb =
      data::mel_filterbank(power.size(0), o.fmin, o.fmax, o.n_mels, sample_rate, o.mel_scale, o.norm)
          .to(at::kDouble);
  at::Tensor db = at::log10(at::clamp_min(at::matmul(fb, power), o.amin)) * 10.0;  // (n_mels, frames)
  if (o.top_db > 0) db = at::clamp_min(db, db.max().item<double>() - o.top_db);
  if (o.log == "log10") db = db / 10.0;
  if (o.log == "ln") db = db * (kLn10 / 10.0);
  at::Tensor cep = at::matmul(dct_ortho_matrix(o.n_mfcc, o.n_mels), db).t();  // (frames, n_mfcc)
  if (!o.include_c0) cep = cep.slice(/*dim=*/1, /*start=*/1);
  return cep.contiguous();
}

// ---- STOI pieces (pystoi 0.3.3 utils.py, written from the algorithm description) ----
constexpr int64_t kStoiRate = 10000;
constexpr int64_t kStoiFrame = 256;
constexpr int64_t kStoiHop = 128;
constexpr int64_t kStoiFft = 512;
constexpr int kStoiBands = 15;
constexpr double kStoiMinFreq = 150;
constexpr int64_t kStoiSegment = 30;  // N
constexpr double kStoiBeta = -15;     // dB, lower SDR bound
constexpr double kStoiDynRange = 40;  // dB

// MATLAB hanning(n): 0.5 (1 - cos(2 pi k / (n + 1))), k = 1..n (numpy hanning(n + 2)[1:-1]).
std::vector<double> matlab_hanning(int64_t n) {
  std::vector<double> w(n);
  for (int64_t k = 0; k < n; ++k) w[k] = 0.5 * (1.0 - std::cos(2.0 * M_PI * (k + 1) / (n + 1)));
  return w;
}

// Start samples of the frames pystoi takes: range(0, len - frame, hop).
int64_t stoi_num_frames(int64_t len) {
  return len > kStoiFrame ? (len - kStoiFrame + kStoiHop - 1) / kStoiHop : 0;
}

// Drops frames of x more than dyn_range below its loudest frame; overlap-adds the kept (windowed) frames
// of x and y with the same hop.
void remove_silent_frames(const std::vector<double>& x, const std::vector<double>& y, std::vector<double>* xs,
                          std::vector<double>* ys) {
  const int64_t n = stoi_num_frames(static_cast<int64_t>(x.size()));
  if (n == 0)
    MMREF_FAIL(
        "stoi: {} samples at 10 kHz is too short (needs more than {} samples, and 30 frames of speech "
        "for one segment)",
        x.size(), kStoiFrame);
  const std::vector<double> w = matlab_hanning(kStoiFrame);
  std::vector<double> energy(n);
  for (int64_t f = 0; f < n; ++f) {
    double s = 0;
    for (int64_t k = 0; k < kStoiFrame; ++k) {
      const double v = w[k] * x[f * kStoiHop + k];
      s += v * v;
    }
    energy[f] = 20.0 * std::log10(std::sqrt(s) + kNumpyEps);
  }
  const double top = *std::max_element(energy.begin(), energy.end());
  std::vector<int64_t> kept;
  for (int64_t f = 0; f < n; ++f)
    if (top - kStoiDynRange - energy[f] < 0) kept.push_back(f);
  const int64_t out_len = (static_cast<int64_t>(kept.size()) - 1) * kStoiHop + kStoiFrame;
  xs->assign(out_len, 0.0);
  ys->assign(out_len, 0.0);
  for (size_t c = 0; c < kept.size(); ++c) {
    const int64_t src = kept[c] * kStoiHop, dst = static_cast<int64_t>(c) * kStoiHop;
    for (int64_t k = 0; k < kStoiFrame; ++k) {
      (*xs)[dst + k] += w[k] * x[src + k];
      (*ys)[dst + k] += w[k] * y[src + k];
    }
  }
}

// One-third octave band energies sqrt(OBM @ |X|^2): (bands, frames) row-major, frames from the
// 256-sample MATLAB-hanning frames at hop 128, 512-point rfft.
std::vector<double> third_octave_bands(const std::vector<double>& x, int64_t* frames_out) {
  const int64_t n = stoi_num_frames(static_cast<int64_t>(x.size()));
  *frames_out = n;
  if (n == 0) return {};
  const std::vector<double> w = matlab_hanning(kStoiFrame);
  at::Tensor frames = at::empty({n, kStoiFrame}, at::kDouble);
  double* fp = frames.data_ptr<double>();
  for (int64_t f = 0; f < n; ++f)
    for (int64_t k = 0; k < kStoiFrame; ++k) fp[f * kStoiFrame + k] = w[k] * x[f * kStoiHop + k];
  at::Tensor spec = at::fft_rfft(frames, kStoiFft, /*dim=*/1);  // (n, 257)
  at::Tensor power = (at::real(spec).square() + at::imag(spec).square()).contiguous();
  const int64_t nbins = kStoiFft / 2 + 1;
  const double* pp = power.data_ptr<double>();

  // Band edges matched to the nearest FFT bin (first on ties, as argmin), [lo, hi) per band.
  std::vector<int64_t> lo(kStoiBands), hi(kStoiBands);
  auto nearest_bin = [&](double hz) {
    int64_t best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    for (int64_t b = 0; b < nbins; ++b) {
      const double d = std::pow(static_cast<double>(b) * kStoiRate / kStoiFft - hz, 2);
      if (d < best_d) best_d = d, best = b;
    }
    return best;
  };
  for (int k = 0; k < kStoiBands; ++k) {
    lo[k] = nearest_bin(kStoiMinFreq * std::pow(2.0, (2.0 * k - 1) / 6));
    hi[k] = nearest_bin(kStoiMinFreq * std::pow(2.0, (2.0 * k + 1) / 6));
  }
  std::vector<double> out(static_cast<size_t>(kStoiBands) * n);
  for (int k = 0; k < kStoiBands; ++k)
    for (int64_t f = 0; f < n; ++f) {
      double s = 0;
      for (int64_t b = lo[k]; b < hi[k]; ++b) s += pp[f * nbins + b];
      out[k * n + f] = std::sqrt(s);
    }
  return out;
}

double norm_of(const double* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += v[i] * v[i];
  return std::sqrt(s);
}

// Subtracts the mean of v[0, n) (stride `stride`) and divides by (norm + eps).
void center_normalize(double* v, int64_t n, int64_t stride) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += v[i * stride];
  mean /= n;
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) {
    v[i * stride] -= mean;
    ss += v[i * stride] * v[i * stride];
  }
  const double inv = 1.0 / (std::sqrt(ss) + kNumpyEps);
  for (int64_t i = 0; i < n; ++i) v[i * stride] *= inv;
}

}  // namespace

// ---- inputs ----
at::Tensor mono_f64(const Waveform& w, const std::string& what) {
  if (!w.samples.defined())
    MMREF_FAIL("{}: no samples (undefined tensor); pass a mono (T) float waveform", what);
  if (!at::isFloatingType(w.samples.scalar_type()))
    MMREF_FAIL("{}: samples must be floating point, got {}; convert PCM first (e.g. int16 / 32768.0)", what,
               c10::toString(w.samples.scalar_type()));
  at::Tensor x = w.samples;
  if (x.dim() == 2 && x.size(0) == 1) x = x[0];
  if (x.dim() != 1)
    MMREF_FAIL(
        "{}: expected a mono (T) or (1, T) waveform, got shape {}; downmix to mono first "
        "(data::AudioOptions channels = 1)",
        what, shape_str(w.samples));
  if (x.numel() == 0) MMREF_FAIL("{}: empty waveform (0 samples)", what);
  if (w.sample_rate <= 0) MMREF_FAIL("{}: sample rate must be > 0 Hz, got {}", what, w.sample_rate);
  x = x.to(at::kCPU, at::kDouble).contiguous();
  const double* p = x.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i)
    if (!std::isfinite(p[i]))
      MMREF_FAIL("{}: sample {} of {} is {}; remove NaN/Inf from the audio before scoring", what, i,
                 x.numel(), p[i]);
  return x;
}

void check_same_rate(const Waveform& a, const Waveform& b, const std::string& metric, const char* a_name,
                     const char* b_name) {
  if (a.sample_rate != b.sample_rate)
    MMREF_FAIL("{}: {} is at {} Hz but {} at {} Hz; resample one to the other's rate (data::resample) first",
               metric, a_name, a.sample_rate, b_name, b.sample_rate);
}

// ---- SI-SDR / SDR ----
double si_sdr(const Waveform& reference, const Waveform& estimate, const SiSdrOptions& o) {
  at::Tensor s = mono_f64(reference, "si_sdr: reference");
  at::Tensor e = mono_f64(estimate, "si_sdr: estimate");
  check_same_rate(reference, estimate, "si_sdr", "reference", "estimate");
  check_same_length(s, e, "si_sdr", "reference", "estimate",
                    "SI-SDR compares sample by sample; trim or pad one");
  const double eps = o.eps > 0 ? o.eps : dtype_eps(estimate.samples.scalar_type());
  const int64_t n = s.numel();
  const double* sp = s.data_ptr<double>();
  const double* ep = e.data_ptr<double>();
  double ms = 0, me = 0;
  if (o.zero_mean) {
    for (int64_t i = 0; i < n; ++i) ms += sp[i], me += ep[i];
    ms /= n, me /= n;
  }
  double dot = 0, ss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = sp[i] - ms, b = ep[i] - me;
    dot += a * b;
    ss += a * a;
  }
  const double alpha = (dot + eps) / (ss + eps);
  double target = 0, noise = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double t = alpha * (sp[i] - ms);
    const double d = t - (ep[i] - me);
    target += t * t;
    noise += d * d;
  }
  return 10.0 * std::log10((target + eps) / (noise + eps));
}

double sdr(const Waveform& reference, const Waveform& estimate, double eps) {
  at::Tensor s = mono_f64(reference, "sdr: reference");
  at::Tensor e = mono_f64(estimate, "sdr: estimate");
  check_same_rate(reference, estimate, "sdr", "reference", "estimate");
  check_same_length(s, e, "sdr", "reference", "estimate", "SDR compares sample by sample; trim or pad one");
  if (!(eps > 0)) eps = dtype_eps(estimate.samples.scalar_type());
  const double* sp = s.data_ptr<double>();
  const double* ep = e.data_ptr<double>();
  double ss = 0, nn = 0;
  for (int64_t i = 0; i < s.numel(); ++i) {
    ss += sp[i] * sp[i];
    nn += (sp[i] - ep[i]) * (sp[i] - ep[i]);
  }
  return 10.0 * std::log10((ss + eps) / (nn + eps));
}

// ---- options ----
void parse(config::Reader& r, MelCepstrumOptions& o) {
  r.opt("n_fft", o.n_fft, config::Range::at_least(2));
  r.opt("hop_length", o.hop_length, config::Range::at_least(1));
  r.opt("win_length", o.win_length, config::Range::at_least(1));
  r.opt("center", o.center);
  r.choice("pad_mode", o.pad_mode, {"constant", "reflect"});
  r.opt("n_mels", o.n_mels, config::Range::at_least(1));
  r.opt("fmin", o.fmin, config::Range::at_least(0));
  r.opt("fmax", o.fmax);
  r.choice("mel_scale", o.mel_scale, {"slaney", "htk"});
  r.choice("norm", o.norm, {"slaney", "none"});
  r.opt("amin", o.amin, config::Range::positive());
  r.opt("top_db", o.top_db);
  r.choice("log", o.log, {"db", "log10", "ln"});
  r.opt("n_mfcc", o.n_mfcc, config::Range::at_least(1));
  r.opt("include_c0", o.include_c0);
  if (o.win_length > o.n_fft) r.fail("win_length", fmt::format("must be <= n_fft ({})", o.n_fft));
  if (o.n_mfcc > o.n_mels) r.fail("n_mfcc", fmt::format("must be <= n_mels ({})", o.n_mels));
  r.finish();
}

void parse(config::Reader& r, McdOptions& o) {
  config::Reader c = r.child("cepstrum");
  parse(c, o.cepstrum);
  r.choice("alignment", o.alignment, {"dtw", "truncate"});
  r.finish();
}

void parse(config::Reader& r, LsdOptions& o) {
  r.opt("n_fft", o.n_fft, config::Range::at_least(2));
  r.opt("hop_length", o.hop_length, config::Range::at_least(1));
  r.opt("win_length", o.win_length, config::Range::at_least(1));
  r.opt("center", o.center);
  r.choice("pad_mode", o.pad_mode, {"reflect", "constant"});
  r.opt("eps", o.eps, config::Range::positive());
  r.opt("truncate", o.truncate);
  if (o.win_length > o.n_fft) r.fail("win_length", fmt::format("must be <= n_fft ({})", o.n_fft));
  r.finish();
}

void parse(config::Reader& r, StoiOptions& o) {
  r.opt("extended", o.extended);
  r.finish();
}

// ---- mel cepstrum, DTW, MCD ----
at::Tensor mel_cepstrum(const Waveform& w, const MelCepstrumOptions& o) {
  return mel_cepstrum_impl(mono_f64(w, "mel_cepstrum: input"), w.sample_rate, o, "mel_cepstrum");
}

DtwResult dtw(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined() || !b.defined() || a.dim() != 2 || b.dim() != 2)
    MMREF_FAIL("dtw: inputs must be (frames, dim) matrices, got {} and {}",
               a.defined() ? shape_str(a) : "undefined", b.defined() ? shape_str(b) : "undefined");
  if (a.size(1) != b.size(1))
    MMREF_FAIL("dtw: feature dims differ ({} vs {}); compute both with the same options", a.size(1),
               b.size(1));
  if (a.size(0) == 0 || b.size(0) == 0)
    MMREF_FAIL("dtw: empty sequence ({} and {} frames)", a.size(0), b.size(0));
  at::Tensor A = a.to(at::kCPU, at::kDouble).contiguous(), B = b.to(at::kCPU, at::kDouble).contiguous();
  if (!at::isfinite(A).all().item<bool>() || !at::isfinite(B).all().item<bool>())
    MMREF_FAIL("dtw: features contain NaN/Inf");
  const int64_t n = A.size(0), m = B.size(0), d = A.size(1);
  const double* ap = A.data_ptr<double>();
  const double* bp = B.data_ptr<double>();
  // dir: 0 = diagonal, 1 = from (i-1, j), 2 = from (i, j-1). Two rows of accumulated cost.
  std::vector<uint8_t> dir(static_cast<size_t>(n) * m);
  std::vector<double> prev(m), cur(m);
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double diff = ap[i * d + k] - bp[j * d + k];
        s += diff * diff;
      }
      const double local = std::sqrt(s);
      if (i == 0 && j == 0) {
        cur[0] = local;
        dir[0] = 0;
        continue;
      }
      const double diag = (i > 0 && j > 0) ? prev[j - 1] : inf;
      const double up = i > 0 ? prev[j] : inf;
      const double left = j > 0 ? cur[j - 1] : inf;
      double best = diag;
      uint8_t step = 0;
      if (up < best) best = up, step = 1;
      if (left < best) best = left, step = 2;
      cur[j] = local + best;
      dir[i * m + j] = step;
    }
    std::swap(prev, cur);
  }
  DtwResult r;
  r.cost = prev[m - 1];
  int64_t i = n - 1, j = m - 1;
  r.path.emplace_back(i, j);
  while (i > 0 || j > 0) {
    const uint8_t step = dir[i * m + j];
    if (step == 0)
      --i, --j;
    else if (step == 1)
      --i;
    else
      --j;
    r.path.emplace_back(i, j);
  }
  std::reverse(r.path.begin(), r.path.end());
  return r;
}

AlignmentPath truncate_alignment(int64_t n_a, int64_t n_b) {
  AlignmentPath p;
  for (int64_t i = 0; i < std::min(n_a, n_b); ++i) p.emplace_back(i, i);
  return p;
}

McdResult mcd_from_cepstra(const at::Tensor& ref_cep, const at::Tensor& syn_cep,
                           const std::string& alignment) {
  if (alignment != "dtw" && alignment != "truncate")
    MMREF_FAIL("mcd: alignment must be 'dtw' or 'truncate', got '{}'", alignment);
  if (!ref_cep.defined() || !syn_cep.defined() || ref_cep.dim() != 2 || syn_cep.dim() != 2 ||
      ref_cep.size(1) != syn_cep.size(1) || ref_cep.size(0) == 0 || syn_cep.size(0) == 0)
    MMREF_FAIL("mcd: cepstra must be non-empty (frames, K) matrices with the same K, got {} and {}",
               ref_cep.defined() ? shape_str(ref_cep) : "undefined",
               syn_cep.defined() ? shape_str(syn_cep) : "undefined");
  McdResult r;
  r.frames_ref = ref_cep.size(0);
  r.frames_syn = syn_cep.size(0);
  at::Tensor A = ref_cep.to(at::kCPU, at::kDouble).contiguous(),
             B = syn_cep.to(at::kCPU, at::kDouble).contiguous();
  AlignmentPath path;
  if (alignment == "dtw") {
    DtwResult d = dtw(A, B);
    path = std::move(d.path);
  } else {
    path = truncate_alignment(r.frames_ref, r.frames_syn);
  }
  const int64_t k = A.size(1);
  const double* ap = A.data_ptr<double>();
  const double* bp = B.data_ptr<double>();
  double sum = 0;
  for (const auto& [i, j] : path) {
    double s = 0;
    for (int64_t c = 0; c < k; ++c) {
      const double diff = ap[i * k + c] - bp[j * k + c];
      s += diff * diff;
    }
    sum += std::sqrt(s);
  }
  r.path_length = static_cast<int64_t>(path.size());
  r.dtw_cost = sum;
  r.mcd = 10.0 / kLn10 * std::sqrt(2.0) * sum / static_cast<double>(r.path_length);
  return r;
}

McdResult mcd(const Waveform& reference, const Waveform& synthesized, const McdOptions& o) {
  at::Tensor x = mono_f64(reference, "mcd: reference");
  at::Tensor y = mono_f64(synthesized, "mcd: synthesized");
  check_same_rate(reference, synthesized, "mcd", "reference", "synthesized");
  at::Tensor cx = mel_cepstrum_impl(x, reference.sample_rate, o.cepstrum, "mcd: reference");
  at::Tensor cy = mel_cepstrum_impl(y, synthesized.sample_rate, o.cepstrum, "mcd: synthesized");
  return mcd_from_cepstra(cx, cy, o.alignment);
}

// ---- LSD ----
double lsd(const Waveform& reference, const Waveform& synthesized, const LsdOptions& o) {
  at::Tensor x = mono_f64(reference, "lsd: reference");
  at::Tensor y = mono_f64(synthesized, "lsd: synthesized");
  check_same_rate(reference, synthesized, "lsd", "reference", "synthesized");
  if (!(o.eps > 0)) MMREF_FAIL("lsd: eps must be > 0, got {}", o.eps);
  if (x.numel() != y.numel()) {
    if (!o.truncate)
      check_same_length(x, y, "lsd", "reference", "synthesized",
                        "LSD compares frame by frame; set truncate = true to cut both to the shorter");
    const int64_t n = std::min(x.numel(), y.numel());
    x = x.slice(0, 0, n);
    y = y.slice(0, 0, n);
  }
  const data::StftOptions so = stft_options(o.n_fft, o.hop_length, o.win_length, o.center, o.pad_mode);
  check_stft_input(x.numel(), so, "lsd");
  at::Tensor lx = at::log10(at::clamp_min(power_spectrogram(x, so), o.eps)) * 10.0;
  at::Tensor ly = at::log10(at::clamp_min(power_spectrogram(y, so), o.eps)) * 10.0;
  // (F, frames): mean over bins, sqrt, mean over frames.
  return (lx - ly).square().mean(/*dim=*/0).sqrt().mean().item<double>();
}

// ---- STOI ----
namespace {

// Modified Bessel function I0 by its power series sum_k ((x/2)^k / k!)^2 (np.i0 to round-off for the
// beta ~ 5.65 used here: within 3.3e-15 of std::cyl_bessel_i, 1.0 ms instead of 8.8 ms for 31947 taps).
double bessel_i0(double x) {
  const double q = x * x / 4.0;
  double term = 1.0, sum = 1.0;
  for (int k = 1; k < 500 && term > 1e-17 * sum; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
  }
  return sum;
}

// The Octave resample.m filter pystoi uses for the gcd-reduced rates p/q, scaled for resample_poly:
// h / sum(h) * p. Kaiser-windowed ideal lowpass, 60 dB rejection, transition 1/10 of the cutoff.
std::vector<double> octave_filter(int64_t p, int64_t q, int64_t* half_out) {
  const double fc = 1.0 / (2.0 * static_cast<double>(std::max(p, q)));
  const double roll_off = fc / 10.0;
  const double rejection_db = 60.0;
  const int64_t half = static_cast<int64_t>(std::ceil((rejection_db - 8.0) / (28.714 * roll_off)));
  const double beta = 0.1102 * (rejection_db - 8.7);  // the rejection > 50 dB branch
  const int64_t taps = 2 * half + 1;
  std::vector<double> h(taps);
  const double i0_beta = bessel_i0(beta);
  double sum = 0;
  for (int64_t t = 0; t < taps; ++t) {
    const double arg = 2.0 * fc * static_cast<double>(t - half);
    const double sinc = arg == 0.0 ? 1.0 : std::sin(M_PI * arg) / (M_PI * arg);
    const double r = 2.0 * static_cast<double>(t) / static_cast<double>(taps - 1) - 1.0;
    h[t] = bessel_i0(beta * std::sqrt(std::max(0.0, 1.0 - r * r))) / i0_beta * sinc;  // 2 p fc cancels below
    sum += h[t];
  }
  for (double& v : h) v *= static_cast<double>(p) / sum;
  *half_out = half;
  return h;
}

// resample_poly(x, p, q, window): output n is centred on upsampled position n q, i.e.
// y[n] = sum_i h[i] u[n q + half - i] with u the zero-stuffed input (u[k p] = x[k]); ceil(T p / q) samples.
at::Tensor apply_polyphase(const at::Tensor& x, const std::vector<double>& h, int64_t half, int64_t p,
                           int64_t q) {
  const int64_t taps = static_cast<int64_t>(h.size());
  const int64_t n_in = x.numel();
  const int64_t n_out = (n_in * p + q - 1) / q;
  at::Tensor out = at::zeros({n_out}, at::kDouble);
  const double* xp = x.data_ptr<double>();
  double* op = out.data_ptr<double>();
  for (int64_t n = 0; n < n_out; ++n) {
    const int64_t c = n * q + half;  // tap i reads u[c - i], nonzero when (c - i) % p == 0
    int64_t i = c % p;
    const int64_t i_min = c - (n_in - 1) * p;  // taps below this read past the end of x
    if (i < i_min) i += ((i_min - i + p - 1) / p) * p;
    double acc = 0;
    for (int64_t src = (c - i) / p; i < taps && src >= 0; i += p, --src) acc += h[i] * xp[src];
    op[n] = acc;
  }
  return out;
}

}  // namespace

at::Tensor resample_octave(const at::Tensor& x_in, int64_t up, int64_t down) {
  if (up < 1 || down < 1) MMREF_FAIL("resample_octave: rates must be >= 1, got {} / {}", up, down);
  at::Tensor x = x_in.to(at::kCPU, at::kDouble).contiguous();
  const int64_t g = std::gcd(up, down);
  const int64_t p = up / g, q = down / g;
  if (p == 1 && q == 1) return x.clone();
  int64_t half = 0;
  const std::vector<double> h = octave_filter(p, q, &half);
  return apply_polyphase(x, h, half, p, q);
}

double stoi(const Waveform& clean, const Waveform& processed, const StoiOptions& o) {
  at::Tensor x = mono_f64(clean, "stoi: clean");
  at::Tensor y = mono_f64(processed, "stoi: processed");
  check_same_rate(clean, processed, "stoi", "clean", "processed");
  check_same_length(x, y, "stoi", "clean", "processed",
                    "STOI compares time-aligned signals; trim or pad one (as pystoi requires)");
  if (clean.sample_rate != kStoiRate) {
    const int64_t g = std::gcd<int64_t>(kStoiRate, clean.sample_rate);
    const int64_t p = kStoiRate / g, q = clean.sample_rate / g;
    int64_t half = 0;
    const std::vector<double> h = octave_filter(p, q, &half);
    x = apply_polyphase(x, h, half, p, q);
    y = apply_polyphase(y, h, half, p, q);
  }
  std::vector<double> xv(x.data_ptr<double>(), x.data_ptr<double>() + x.numel());
  std::vector<double> yv(y.data_ptr<double>(), y.data_ptr<double>() + y.numel());
  std::vector<double> xs, ys;
  remove_silent_frames(xv, yv, &xs, &ys);
  int64_t frames = 0, frames_y = 0;
  std::vector<double> xb = third_octave_bands(xs, &frames);
  std::vector<double> yb = third_octave_bands(ys, &frames_y);
  if (frames < kStoiSegment)
    MMREF_FAIL(
        "stoi: only {} STFT frames of speech remain after silence removal (needs {} = 384 ms); the clean "
        "signal is too short or nearly silent (pystoi would return 1e-5)",
        frames, kStoiSegment);
  const int64_t segments = frames - kStoiSegment + 1;
  double total = 0;
  std::vector<double> xseg(kStoiBands * kStoiSegment), yseg(kStoiBands * kStoiSegment);
  if (!o.extended) {
    const double clip = std::pow(10.0, -kStoiBeta / 20.0);
    for (int64_t m = 0; m < segments; ++m)
      for (int j = 0; j < kStoiBands; ++j) {
        double* xr = xseg.data();
        double* yr = yseg.data();
        for (int64_t t = 0; t < kStoiSegment; ++t) {
          xr[t] = xb[j * frames + m + t];
          yr[t] = yb[j * frames + m + t];
        }
        const double alpha = norm_of(xr, kStoiSegment) / (norm_of(yr, kStoiSegment) + kNumpyEps);
        for (int64_t t = 0; t < kStoiSegment; ++t) yr[t] = std::min(alpha * yr[t], xr[t] * (1.0 + clip));
        center_normalize(xr, kStoiSegment, 1);
        center_normalize(yr, kStoiSegment, 1);
        double c = 0;
        for (int64_t t = 0; t < kStoiSegment; ++t) c += xr[t] * yr[t];
        total += c;
      }
    return total / static_cast<double>(segments * kStoiBands);
  }
  // ESTOI: per segment, normalise each band row over time, then each frame column over bands.
  for (int64_t m = 0; m < segments; ++m) {
    for (int j = 0; j < kStoiBands; ++j)
      for (int64_t t = 0; t < kStoiSegment; ++t) {
        xseg[j * kStoiSegment + t] = xb[j * frames + m + t];
        yseg[j * kStoiSegment + t] = yb[j * frames + m + t];
      }
    for (int j = 0; j < kStoiBands; ++j) {
      center_normalize(&xseg[j * kStoiSegment], kStoiSegment, 1);
      center_normalize(&yseg[j * kStoiSegment], kStoiSegment, 1);
    }
    for (int64_t t = 0; t < kStoiSegment; ++t) {
      center_normalize(&xseg[t], kStoiBands, kStoiSegment);
      center_normalize(&yseg[t], kStoiBands, kStoiSegment);
    }
    double c = 0;
    for (size_t i = 0; i < xseg.size(); ++i) c += xseg[i] * yseg[i];
    total += c / kStoiSegment;
  }
  return total / static_cast<double>(segments);
}

}  // namespace mmref::eval
