// Windowed-sinc resampling, speed perturbation and loudness normalisation (see resample.h).
// Ref: pytorch/audio torchaudio/functional/functional.py _get_sinc_resample_kernel and
//      _apply_sinc_resample_kernel (0.13).
#include "data/features/resample.h"

#include <ATen/Functions.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace mmref::data {
namespace {
constexpr double kPi = 3.14159265358979323846;
}  // namespace

void parse(config::Reader& r, ResampleOptions& o) {
  r.opt("lowpass_filter_width", o.lowpass_filter_width, config::Range::at_least(1));
  r.opt("rolloff", o.rolloff, config::Range{0.0, 1.0, true});
  r.finish();
}

void parse(config::Reader& r, LoudnessOptions& o) {
  r.opt("target_dbfs", o.target_dbfs, config::Range::between(-120, 0));
  r.opt("peak_limit", o.peak_limit);
  r.opt("peak_dbfs", o.peak_dbfs, config::Range::between(-120, 0));
  r.opt("full_scale", o.full_scale, config::Range::positive());
  r.finish();
}

at::Tensor resample_kernel(int64_t orig_freq, int64_t new_freq, const ResampleOptions& o,
                           at::ScalarType dtype, int64_t* width) {
  if (orig_freq <= 0 || new_freq <= 0)
    MMREF_FAIL("resample: rates must be > 0, got {} -> {}", orig_freq, new_freq);
  if (o.lowpass_filter_width <= 0) MMREF_FAIL("resample: lowpass_filter_width must be > 0");
  if (!(o.rolloff > 0 && o.rolloff <= 1)) MMREF_FAIL("resample: rolloff must be in (0, 1]");
  const int64_t g = std::gcd(orig_freq, new_freq);
  const int64_t of = orig_freq / g, nf = new_freq / g;
  const double base = static_cast<double>(std::min(of, nf)) * o.rolloff;
  const double lw = o.lowpass_filter_width;
  const int64_t w = static_cast<int64_t>(std::ceil(lw * of / base));
  // t[j, i] = (i - w) / of - j / nf, for output phase j in [0, nf) and tap i in [0, 2w + of).
  at::Tensor idx = at::arange(-w, w + of, at::kDouble).unsqueeze(0) / static_cast<double>(of);
  at::Tensor phase = at::arange(0, nf, at::kDouble).unsqueeze(1) / static_cast<double>(nf);
  at::Tensor t = ((idx - phase) * base).clamp(-lw, lw);
  at::Tensor window = at::cos(t * (kPi / lw / 2)).pow(2);
  t = t * kPi;
  at::Tensor sinc = at::where(t == 0, at::ones_like(t), at::sin(t) / t);
  at::Tensor kernel = sinc * window * (base / of);  // (nf, 2w + of)
  if (width) *width = w;
  return kernel.unsqueeze(1).to(dtype);  // (nf, 1, 2w + of)
}

at::Tensor resample(const at::Tensor& wave, int64_t orig_freq, int64_t new_freq, const ResampleOptions& o) {
  if (orig_freq <= 0 || new_freq <= 0)
    MMREF_FAIL("resample: rates must be > 0, got {} -> {}", orig_freq, new_freq);
  if (wave.dim() < 1) MMREF_FAIL("resample: wave must have a time axis");
  if (orig_freq == new_freq) return wave;
  at::Tensor x = wave.is_floating_point() ? wave : wave.to(at::kFloat);
  const int64_t g = std::gcd(orig_freq, new_freq);
  const int64_t of = orig_freq / g, nf = new_freq / g;
  int64_t width = 0;
  at::Tensor kernel = resample_kernel(orig_freq, new_freq, o, x.scalar_type(), &width).to(x.device());
  const auto shape = x.sizes().vec();
  const int64_t length = shape.back();
  at::Tensor flat = x.reshape({-1, length});
  const int64_t n = flat.size(0);
  flat = at::constant_pad_nd(flat, {width, width + of}, 0.0);
  at::Tensor y = at::conv1d(flat.unsqueeze(1), kernel, /*bias=*/{}, /*stride=*/of);  // (n, nf, L')
  y = y.transpose(1, 2).reshape({n, -1});
  const int64_t target = (nf * length + of - 1) / of;  // ceil(nf * length / of)
  y = y.slice(1, 0, target);
  std::vector<int64_t> out_shape(shape.begin(), shape.end() - 1);
  out_shape.push_back(y.size(1));
  return y.reshape(out_shape);
}

at::Tensor speed_perturb(const at::Tensor& wave, double factor, const ResampleOptions& o) {
  if (!(factor > 0)) MMREF_FAIL("speed_perturb: factor must be > 0, got {}", factor);
  const int64_t num = std::llround(factor * 1000.0);
  if (num == 1000) return wave;
  // Faster playback: treat `num` input samples as `1000` output samples.
  return resample(wave, num, 1000, o);
}

double rms_dbfs(const at::Tensor& wave, double full_scale) {
  const double rms = std::sqrt(wave.to(at::kDouble).pow(2).mean().item<double>());
  if (rms <= 0) return -std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(rms / full_scale);
}

double peak_dbfs(const at::Tensor& wave, double full_scale) {
  const double peak = wave.to(at::kDouble).abs().max().item<double>();
  if (peak <= 0) return -std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(peak / full_scale);
}

at::Tensor normalize_loudness(const at::Tensor& wave, const LoudnessOptions& o) {
  if (wave.numel() == 0) MMREF_FAIL("normalize_loudness: empty wave");
  if (!(o.full_scale > 0)) MMREF_FAIL("normalize_loudness: full_scale must be > 0");
  const double rms = rms_dbfs(wave, o.full_scale);
  if (!std::isfinite(rms)) return wave.clone();
  double gain_db = o.target_dbfs - rms;
  if (o.peak_limit) {
    const double peak_after = peak_dbfs(wave, o.full_scale) + gain_db;
    if (peak_after > o.peak_dbfs) gain_db -= peak_after - o.peak_dbfs;
  }
  at::Tensor x = wave.is_floating_point() ? wave : wave.to(at::kFloat);
  return x * std::pow(10.0, gain_db / 20.0);
}

}  // namespace mmref::data
