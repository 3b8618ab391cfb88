// YIN F0 tracking and F0 RMSE / VDE / GPE (see pitch.h for the algorithm and the conventions).
#include "eval/pitch.h"

#include <ATen/Functions.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace mmref::eval {
namespace {

struct LagRange {
  int64_t tau_min = 0, tau_max = 0;
};

LagRange check_yin(const YinOptions& o, int sample_rate, int64_t frame_length, int64_t hop) {
  if (!(o.fmin > 0) || !(o.fmax > o.fmin))
    MMREF_FAIL("yin: need 0 < fmin < fmax, got fmin {} Hz, fmax {} Hz", o.fmin, o.fmax);
  if (!(o.threshold > 0)) MMREF_FAIL("yin: threshold must be > 0, got {}", o.threshold);
  if (frame_length < 4 || frame_length % 2 != 0)
    MMREF_FAIL("yin: frame_length must be even and >= 4, got {}", frame_length);
  if (hop < 1) MMREF_FAIL("yin: hop_length must be >= 1, got {}", hop);
  if (o.fmax >= sample_rate / 2.0)
    MMREF_FAIL("yin: fmax {} Hz must be below the Nyquist frequency ({} Hz at {} Hz)", o.fmax,
               sample_rate / 2.0, sample_rate);
  LagRange r;
  const int64_t w = frame_length / 2;
  r.tau_min = std::max<int64_t>(1, static_cast<int64_t>(std::floor(sample_rate / o.fmax)));
  r.tau_max = std::min<int64_t>(static_cast<int64_t>(std::ceil(sample_rate / o.fmin)), frame_length - w - 1);
  if (r.tau_max <= r.tau_min)
    MMREF_FAIL(
        "yin: frame_length {} at {} Hz leaves no lag range for fmin {} Hz .. fmax {} Hz; raise "
        "frame_length to at least {}",
        frame_length, sample_rate, o.fmin, o.fmax,
        2 * (static_cast<int64_t>(std::ceil(sample_rate / o.fmin)) + 2));
  return r;
}

}  // namespace

int64_t yin_frame_length(const YinOptions& o, int sample_rate) {
  if (o.frame_length > 0) return o.frame_length;
  return 2 * std::llround(512.0 * sample_rate / 22050.0);
}

int64_t yin_hop_length(const YinOptions& o, int sample_rate) {
  if (o.hop_length > 0) return o.hop_length;
  return std::max<int64_t>(1, std::llround(256.0 * sample_rate / 22050.0));
}

void parse(config::Reader& r, YinOptions& o) {
  r.opt("fmin", o.fmin, config::Range::positive());
  r.opt("fmax", o.fmax, config::Range::positive());
  r.opt("threshold", o.threshold, config::Range::positive());
  r.opt("frame_length", o.frame_length, config::Range::at_least(0));
  r.opt("hop_length", o.hop_length, config::Range::at_least(0));
  r.opt("silence_db", o.silence_db);
  if (o.fmax <= o.fmin) r.fail("fmax", fmt::format("must be > fmin ({})", o.fmin));
  if (o.frame_length % 2 != 0) r.fail("frame_length", "must be even (0 = scaled default)");
  r.finish();
}

void parse(config::Reader& r, F0MetricsOptions& o) {
  config::Reader y = r.child("yin");
  parse(y, o.yin);
  r.choice("alignment", o.alignment, {"dtw", "truncate"});
  config::Reader f = r.child("dtw_features");
  parse(f, o.dtw_features);
  r.opt("gross_error", o.gross_error, config::Range::positive());
  r.finish();
}

F0Track yin(const Waveform& w, const YinOptions& o) {
  at::Tensor x = mono_f64(w, "yin: input");
  const int sr = w.sample_rate;
  const int64_t frame = yin_frame_length(o, sr), hop = yin_hop_length(o, sr), win = frame / 2;
  const LagRange lags = check_yin(o, sr, frame, hop);
  const int64_t n_lags = lags.tau_max + 2;  // 0 .. tau_max + 1 (the right neighbour for interpolation)

  // Centred frames: frame i covers padded [i hop, i hop + frame), centred on sample i hop.
  at::Tensor padded = at::constant_pad_nd(x, {frame / 2, frame / 2}, 0.0);
  at::Tensor frames = padded.unfold(/*dimension=*/0, /*size=*/frame, /*step=*/hop).contiguous();  // (n, L)
  const int64_t n = frames.size(0);
  // r(tau) = sum_{j<W} x[j] x[j + tau]: circular correlation of size L has no wrap for tau <= L - W.
  at::Tensor spec = at::fft_rfft(frames, frame, /*dim=*/1);
  at::Tensor head = at::fft_rfft(frames.slice(/*dim=*/1, 0, win), frame, /*dim=*/1);
  at::Tensor acf = at::fft_irfft(spec * at::conj(head), frame, /*dim=*/1).slice(1, 0, n_lags).contiguous();

  F0Track t;
  t.sample_rate = sr;
  t.frame_length = frame;
  t.hop_length = hop;
  t.f0_hz.assign(n, 0.0);
  t.voiced.assign(n, 0);
  t.aperiodicity.assign(n, 1.0);
  const double* fp = frames.data_ptr<double>();
  const double* ap = acf.data_ptr<double>();
  std::vector<double> cum(frame + 1), d(n_lags), dn(n_lags);
  for (int64_t i = 0; i < n; ++i) {
    const double* xf = fp + i * frame;
    cum[0] = 0;
    for (int64_t k = 0; k < frame; ++k) cum[k + 1] = cum[k] + xf[k] * xf[k];
    const double rms = std::sqrt(cum[frame] / frame);
    if (!(rms > 0) || 20.0 * std::log10(rms) < o.silence_db) continue;  // silent: unvoiced
    // Step 2: difference function; step 3: cumulative mean normalised difference.
    const double e0 = cum[win];
    const double* r = ap + i * n_lags;
    dn[0] = 1.0;
    double running = 0;
    for (int64_t tau = 1; tau < n_lags; ++tau) {
      d[tau] = std::max(0.0, e0 + (cum[tau + win] - cum[tau]) - 2.0 * r[tau]);
      running += d[tau];
      dn[tau] = running > 0 ? d[tau] * static_cast<double>(tau) / running : 1.0;
    }
    // Step 4: absolute threshold (first dip below it, to its bottom), else the global minimum.
    int64_t best = -1;
    for (int64_t tau = lags.tau_min; tau <= lags.tau_max; ++tau) {
      if (dn[tau] < o.threshold) {
        while (tau + 1 <= lags.tau_max && dn[tau + 1] < dn[tau]) ++tau;
        best = tau;
        break;
      }
    }
    const bool voiced = best >= 0;
    if (!voiced) {
      best = lags.tau_min;
      for (int64_t tau = lags.tau_min + 1; tau <= lags.tau_max; ++tau)
        if (dn[tau] < dn[best]) best = tau;
    }
    t.aperiodicity[i] = dn[best];
    if (!voiced) continue;
    // Step 5: parabolic interpolation through (tau-1, tau, tau+1).
    const double a = dn[best - 1], b = dn[best], c = dn[best + 1];
    const double den = a - 2.0 * b + c;
    double delta = den > 0 ? 0.5 * (a - c) / den : 0.0;
    delta = std::clamp(delta, -1.0, 1.0);
    t.f0_hz[i] = sr / (static_cast<double>(best) + delta);
    t.voiced[i] = 1;
  }
  return t;
}

F0Metrics f0_metrics(const F0Track& ref, const F0Track& syn, const AlignmentPath& pairs, double gross_error) {
  if (ref.voiced.size() != ref.f0_hz.size() || syn.voiced.size() != syn.f0_hz.size())
    MMREF_FAIL("f0_metrics: a track's f0_hz and voiced lengths differ ({} / {} and {} / {})",
               ref.f0_hz.size(), ref.voiced.size(), syn.f0_hz.size(), syn.voiced.size());
  if (pairs.empty()) MMREF_FAIL("f0_metrics: no aligned frame pairs (empty track?)");
  if (!(gross_error > 0)) MMREF_FAIL("f0_metrics: gross_error must be > 0, got {}", gross_error);
  F0Metrics m;
  m.frames_ref = ref.size();
  m.frames_syn = syn.size();
  m.pairs = static_cast<int64_t>(pairs.size());
  int64_t differ = 0, gross = 0;
  double se_hz = 0, se_cents = 0;
  for (const auto& [i, j] : pairs) {
    if (i < 0 || i >= ref.size() || j < 0 || j >= syn.size())
      MMREF_FAIL("f0_metrics: pair ({}, {}) is outside the tracks ({} and {} frames)", i, j, ref.size(),
                 syn.size());
    const bool vr = ref.voiced[i] != 0, vs = syn.voiced[j] != 0;
    if (vr != vs) ++differ;
    if (!(vr && vs)) continue;
    const double fr = ref.f0_hz[i], fs = syn.f0_hz[j];
    if (!(fr > 0) || !(fs > 0))
      MMREF_FAIL("f0_metrics: voiced frame with f0 <= 0 (ref frame {}: {} Hz, syn frame {}: {} Hz)", i, fr, j,
                 fs);
    ++m.voiced_both;
    se_hz += (fs - fr) * (fs - fr);
    const double cents = 1200.0 * std::log2(fs / fr);
    se_cents += cents * cents;
    if (std::abs(fs / fr - 1.0) > gross_error) ++gross;
  }
  m.vde = static_cast<double>(differ) / static_cast<double>(m.pairs);
  if (m.voiced_both == 0) {
    m.rmse_hz = m.rmse_cents = m.gpe = std::numeric_limits<double>::quiet_NaN();
  } else {
    const double nv = static_cast<double>(m.voiced_both);
    m.rmse_hz = std::sqrt(se_hz / nv);
    m.rmse_cents = std::sqrt(se_cents / nv);
    m.gpe = static_cast<double>(gross) / nv;
  }
  return m;
}

F0Metrics f0_metrics(const Waveform& reference, const Waveform& synthesized, const F0MetricsOptions& o) {
  if (o.alignment != "dtw" && o.alignment != "truncate")
    MMREF_FAIL("f0_metrics: alignment must be 'dtw' or 'truncate', got '{}'", o.alignment);
  mono_f64(reference, "f0_metrics: reference");
  mono_f64(synthesized, "f0_metrics: synthesized");
  check_same_rate(reference, synthesized, "f0_metrics", "reference", "synthesized");
  const F0Track tr = yin(reference, o.yin);
  const F0Track ts = yin(synthesized, o.yin);
  AlignmentPath path;
  if (o.alignment == "dtw") {
    // Cepstra on the YIN frame grid, so path indices are YIN frames.
    MelCepstrumOptions c = o.dtw_features;
    c.n_fft = c.win_length = tr.frame_length;
    c.hop_length = tr.hop_length;
    c.center = true;
    at::Tensor cr = mel_cepstrum(reference, c), cs = mel_cepstrum(synthesized, c);
    MMREF_CHECK(cr.size(0) == tr.size() && cs.size(0) == ts.size(),
                "cepstrum frames {} / {} vs YIN frames {} / {}", cr.size(0), cs.size(0), tr.size(),
                ts.size());
    path = dtw(cr, cs).path;
  } else {
    path = truncate_alignment(tr.size(), ts.size());
  }
  return f0_metrics(tr, ts, path, o.gross_error);
}

}  // namespace mmref::eval
