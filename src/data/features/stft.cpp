// STFT / ISTFT wrappers and Griffin-Lim (see stft.h).
// Ref: pytorch/audio torchaudio/functional/functional.py griffinlim (0.13).
#include "data/features/stft.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <cmath>

#include "core/error.h"

namespace mmref::data {
namespace {

void check_stft(const StftOptions& o) {
  if (o.n_fft < 2) MMREF_FAIL("stft: n_fft must be >= 2, got {}", o.n_fft);
  if (o.hop_length < 1) MMREF_FAIL("stft: hop_length must be >= 1, got {}", o.hop_length);
  if (o.win_length < 1 || o.win_length > o.n_fft)
    MMREF_FAIL("stft: win_length must be in [1, n_fft={}], got {}", o.n_fft, o.win_length);
}

at::ScalarType real_dtype(const at::Tensor& t) {
  if (t.is_complex()) return t.scalar_type() == at::kComplexDouble ? at::kDouble : at::kFloat;
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

at::Tensor griffin_lim_impl(const at::Tensor& magnitude, const StftOptions& so, const GriffinLimOptions& o,
                            std::optional<int64_t> length, at::Generator* gen) {
  check_stft(so);
  if (!(o.momentum >= 0 && o.momentum < 1))
    MMREF_FAIL("griffin_lim: momentum must be in [0, 1), got {}", o.momentum);
  if (!(o.power > 0)) MMREF_FAIL("griffin_lim: power must be > 0, got {}", o.power);
  if (o.n_iter < 0) MMREF_FAIL("griffin_lim: n_iter must be >= 0, got {}", o.n_iter);
  if (magnitude.dim() != 2 && magnitude.dim() != 3)
    MMREF_FAIL("griffin_lim: magnitude must be (F, frames) or (B, F, frames), got {} dims", magnitude.dim());
  if (magnitude.size(-2) != so.n_fft / 2 + 1)
    MMREF_FAIL("griffin_lim: magnitude has {} bins, n_fft {} needs {}", magnitude.size(-2), so.n_fft,
               so.n_fft / 2 + 1);
  const at::ScalarType rdt = real_dtype(magnitude);
  const at::ScalarType cdt = rdt == at::kDouble ? at::kComplexDouble : at::kComplexFloat;
  at::Tensor mag = magnitude.to(rdt);
  if (o.power != 1.0) mag = mag.pow(1.0 / o.power);
  const double m = o.momentum / (1.0 + o.momentum);

  at::Tensor angles;
  if (o.rand_init) {
    // torch.rand on a complex dtype: real and imaginary parts independently uniform in [0, 1).
    std::vector<int64_t> shape = mag.sizes().vec();
    shape.push_back(2);
    // Drawn on the CPU (the generator's device), so results do not depend on where mag lives.
    angles = at::view_as_complex(
        at::rand(shape, c10::optional<at::Generator>(*gen), mag.options().device(at::kCPU)).to(mag.device()));
  } else {
    angles = at::ones(mag.sizes(), mag.options().dtype(cdt));
  }
  at::Tensor window = make_window(so.window, so.win_length, rdt).to(mag.device());
  const c10::optional<int64_t> len = length ? c10::optional<int64_t>(*length) : c10::nullopt;
  at::Tensor tprev;
  for (int i = 0; i < o.n_iter; ++i) {
    at::Tensor inverse = at::istft(mag * angles, so.n_fft, so.hop_length, so.win_length, window, so.center,
                                   so.normalized, /*onesided=*/true, len);
    at::Tensor rebuilt = at::stft(inverse, so.n_fft, so.hop_length, so.win_length, window, so.center,
                                  so.pad_mode, so.normalized, /*onesided=*/true,
                                  /*return_complex=*/true);
    angles = rebuilt;
    if (m != 0.0 && tprev.defined()) angles = angles - tprev * m;
    angles = angles / (angles.abs() + 1e-16);
    tprev = rebuilt;
  }
  return at::istft(mag * angles, so.n_fft, so.hop_length, so.win_length, window, so.center, so.normalized,
                   /*onesided=*/true, len);
}

}  // namespace

void parse(config::Reader& r, StftOptions& o) {
  r.opt("n_fft", o.n_fft, config::Range::at_least(2));
  r.opt("hop_length", o.hop_length, config::Range::at_least(1));
  r.opt("win_length", o.win_length, config::Range::at_least(1));
  r.choice("window", o.window, {"hann", "hamming", "blackman", "rectangular"});
  r.opt("center", o.center);
  r.choice("pad_mode", o.pad_mode, {"reflect", "constant", "replicate", "circular"});
  r.opt("normalized", o.normalized);
  if (o.win_length > o.n_fft) r.fail("win_length", fmt::format("must be <= n_fft ({})", o.n_fft));
  r.finish();
}

void parse(config::Reader& r, GriffinLimOptions& o) {
  r.opt("n_iter", o.n_iter, config::Range::at_least(0));
  r.opt("momentum", o.momentum, config::Range::between(0, 0.999999));
  r.opt("power", o.power, config::Range::positive());
  r.opt("rand_init", o.rand_init);
  r.opt("seed", o.seed);
  r.finish();
}

at::Tensor make_window(const std::string& name, int64_t length, at::ScalarType dtype) {
  const auto opts = at::TensorOptions().dtype(dtype);
  if (name == "hann") return at::hann_window(length, /*periodic=*/true, opts);
  if (name == "hamming") return at::hamming_window(length, /*periodic=*/true, opts);
  if (name == "blackman") return at::blackman_window(length, /*periodic=*/true, opts);
  if (name == "rectangular") return at::ones({length}, opts);
  MMREF_FAIL("make_window: unknown window '{}' (hann, hamming, blackman, rectangular)", name);
}

at::Tensor stft(const at::Tensor& x, const StftOptions& o) {
  check_stft(o);
  if (x.dim() != 1 && x.dim() != 2) MMREF_FAIL("stft: input must be (T) or (B, T), got {} dims", x.dim());
  if (x.is_complex()) MMREF_FAIL("stft: input must be real");
  at::Tensor xr = x.scalar_type() == at::kDouble ? x : x.to(at::kFloat);
  at::Tensor window = make_window(o.window, o.win_length, xr.scalar_type()).to(xr.device());
  return at::stft(xr, o.n_fft, o.hop_length, o.win_length, window, o.center, o.pad_mode, o.normalized,
                  /*onesided=*/true, /*return_complex=*/true);
}

at::Tensor istft(const at::Tensor& spec, const StftOptions& o, std::optional<int64_t> length) {
  check_stft(o);
  if (!spec.is_complex()) MMREF_FAIL("istft: spec must be complex (from stft)");
  if (spec.dim() != 2 && spec.dim() != 3)
    MMREF_FAIL("istft: spec must be (F, frames) or (B, F, frames), got {} dims", spec.dim());
  at::Tensor window = make_window(o.window, o.win_length, real_dtype(spec)).to(spec.device());
  return at::istft(spec, o.n_fft, o.hop_length, o.win_length, window, o.center, o.normalized,
                   /*onesided=*/true, length ? c10::optional<int64_t>(*length) : c10::nullopt);
}

at::Tensor griffin_lim(const at::Tensor& magnitude, const StftOptions& stft_options,
                       const GriffinLimOptions& o, std::optional<int64_t> length) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(o.seed));
  return griffin_lim_impl(magnitude, stft_options, o, length, &gen);
}

at::Tensor griffin_lim(const at::Tensor& magnitude, const StftOptions& stft_options,
                       const GriffinLimOptions& o, std::optional<int64_t> length, at::Generator gen) {
  return griffin_lim_impl(magnitude, stft_options, o, length, &gen);
}

double spectral_convergence(const at::Tensor& x, const at::Tensor& magnitude, const StftOptions& o) {
  at::Tensor s = stft(x, o).abs();
  at::Tensor ref = magnitude.to(s.scalar_type());
  const int64_t frames = std::min(s.size(-1), ref.size(-1));
  s = s.narrow(-1, 0, frames);
  ref = ref.narrow(-1, 0, frames);
  return (s - ref).norm().item<double>() / std::max(ref.norm().item<double>(), 1e-30);
}

}  // namespace mmref::data
