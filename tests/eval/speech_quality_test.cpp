// Speech quality proxies (eval/speech_quality.h) against hand-checked cases and against numpy/scipy
// re-computations of the same arrays at test time (/usr/bin/python3; the reference code below is written
// from the formulas in the header, not copied from the implementations they follow). Speech comes from
// espeak-ng (22.05 kHz); tests that need it or numpy are skipped, with the reason, when they are absent.
//   build/cpu/tests/mmref_eval_tests --gtest_filter='SiSdr*:Mcd*:Lsd*:Stoi*:SpeechQuality*'
//
// Hand-checked SI-SDR case (zero-mean already, noise orthogonal to the reference):
//   s = [1, -1, 1, -1], e = s + [0.5, 0.5, -0.5, -0.5]:  alpha = <e,s>/<s,s> = 4/4 = 1,
//   |alpha s|^2 = 4, |alpha s - e|^2 = 4 * 0.25 = 1  =>  SI-SDR = 10 log10(4) = 6.0206 dB;
//   plain SDR is the same (no mean, no scale): 10 log10(4 / 1).
#include <gtest/gtest.h>

#include "eval_test_util.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"
#include "eval/speech_quality.h"

namespace mmref::eval {
namespace {

constexpr int kRate = 22050;

bool have_numpy() {
  static const bool ok = std::system(
                             "/usr/bin/python3 -c 'import numpy, scipy.signal, scipy.fft' "
                             ">/dev/null 2>&1") == 0;
  return ok;
}
bool have_espeak() {
  static const bool ok = std::system("espeak-ng --version >/dev/null 2>&1") == 0;
  return ok;
}

class TempDir {
 public:
  TempDir() : dir_(fs::make_temp_dir("mmref_speech_quality_")) {}
  ~TempDir() {
    if (!std::getenv("MMREF_KEEP_TMP")) std::filesystem::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

// Writes a 1-D tensor as raw little-endian float64 (np.fromfile(path)).
void write_f64(const std::string& path, const at::Tensor& t) {
  at::Tensor x = t.to(at::kDouble).contiguous().reshape({-1});
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(x.data_ptr<double>()), static_cast<std::streamsize>(x.numel() * 8));
  ASSERT_TRUE(f.good()) << path;
}

// numpy/scipy versions of the metrics, written from the formulas (see the header).
const char* kPyPrelude = R"PY(
import sys
import numpy as np
import scipy.fft, scipy.signal
D = sys.argv[1]
def load(name): return np.fromfile(D + '/' + name, dtype='<f8')
EPS = np.finfo(float).eps

def power_frames(x, n_fft, hop, pad):
    xp = np.pad(x, n_fft // 2, mode=pad)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)   # periodic hann
    n = 1 + (len(xp) - n_fft) // hop
    fr = np.stack([xp[i * hop:i * hop + n_fft] * w for i in range(n)])
    return np.abs(np.fft.rfft(fr, axis=1)) ** 2                     # (frames, bins)

def hz_to_mel(f):   # Slaney
    f = np.asarray(f, dtype=float)
    return np.where(f >= 1000, 15 + np.log(np.maximum(f, 1000) / 1000) / (np.log(6.4) / 27), f / (200 / 3))
def mel_to_hz(m):
    m = np.asarray(m, dtype=float)
    return np.where(m >= 15, 1000 * np.exp((np.log(6.4) / 27) * (m - 15)), m * (200 / 3))
def mel_fb(sr, n_fft, n_mels):
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    pts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.maximum(0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c))) * 2 / (hi - lo)
    return fb.astype(np.float32).astype(np.float64)

def mfcc(x, sr):   # librosa.feature.mfcc semantics, 1024/256, 80 mels, c1..c12
    p = power_frames(x, 1024, 256, 'constant')
    db = 10 * np.log10(np.maximum(p @ mel_fb(sr, 1024, 80).T, 1e-10))
    db = np.maximum(db, db.max() - 80)
    return scipy.fft.dct(db, type=2, norm='ortho', axis=1)[:, 1:13]

def dtw(a, b):
    dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = dist.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = dist[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    i, j, path = n, m, [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        c = [acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]]
        k = int(np.argmin(c))   # first minimum: diagonal, then (i-1, j), then (i, j-1)
        i, j = [(i - 1, j - 1), (i - 1, j), (i, j - 1)][k]
        path.append((i - 1, j - 1))
    return path[::-1], dist

def mcd(x, y, sr):
    path, dist = dtw(mfcc(x, sr), mfcc(y, sr))
    return 10 / np.log(10) * np.sqrt(2) * np.mean([dist[i, j] for i, j in path]), len(path)

def lsd(x, y):
    lx = 10 * np.log10(np.maximum(power_frames(x, 2048, 512, 'reflect'), 1e-10))
    ly = 10 * np.log10(np.maximum(power_frames(y, 2048, 512, 'reflect'), 1e-10))
    return np.mean(np.sqrt(np.mean((lx - ly) ** 2, axis=1)))

def resample_oct(x, p, q):
    g = np.gcd(p, q); p //= g; q //= g
    fc = 1 / (2 * max(p, q))
    half = int(np.ceil((60 - 8) / (28.714 * fc / 10)))
    t = np.arange(-half, half + 1)
    h = np.kaiser(2 * half + 1, 0.1102 * (60 - 8.7)) * np.sinc(2 * fc * t)
    return scipy.signal.resample_poly(x, p, q, window=h / h.sum())

def mhann(n): return 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, n + 1) / (n + 1)))
def frames256(x): return np.array([x[i:i + 256] for i in range(0, len(x) - 256, 128)])
def stoi(x, y, fs, extended=False):
    if fs != 10000:
        x, y = resample_oct(x, 10000, fs), resample_oct(y, 10000, fs)
    w = mhann(256)
    xf, yf = frames256(x) * w, frames256(y) * w
    e = 20 * np.log10(np.linalg.norm(xf, axis=1) + EPS)
    keep = e > e.max() - 40
    xf, yf = xf[keep], yf[keep]
    n = (len(xf) - 1) * 128 + 256
    xs, ys = np.zeros(n), np.zeros(n)
    for k in range(len(xf)):
        xs[k * 128:k * 128 + 256] += xf[k]; ys[k * 128:k * 128 + 256] += yf[k]
    f = np.arange(257) * 10000 / 512
    obm = np.zeros((15, 257))
    for k in range(15):
        lo = np.argmin((f - 150 * 2 ** ((2 * k - 1) / 6)) ** 2); hi = np.argmin((f - 150 * 2 ** ((2 * k + 1) / 6)) ** 2)
        obm[k, lo:hi] = 1
    tob = lambda s: np.sqrt(obm @ (np.abs(np.fft.rfft(frames256(s) * w, n=512, axis=1)) ** 2).T)
    X, Y = tob(xs), tob(ys)
    M = X.shape[1] - 30 + 1
    xseg = np.stack([X[:, m:m + 30] for m in range(M)]); yseg = np.stack([Y[:, m:m + 30] for m in range(M)])
    if not extended:
        a = np.linalg.norm(xseg, axis=2, keepdims=True) / (np.linalg.norm(yseg, axis=2, keepdims=True) + EPS)
        yp = np.minimum(yseg * a, xseg * (1 + 10 ** (15 / 20)))
        yp = yp - yp.mean(2, keepdims=True); xc = xseg - xseg.mean(2, keepdims=True)
        yp /= np.linalg.norm(yp, axis=2, keepdims=True) + EPS; xc /= np.linalg.norm(xc, axis=2, keepdims=True) + EPS
        return np.sum(xc * yp) / (M * 15)
    def rc(z):
        z = z - z.mean(2, keepdims=True); z = z / (np.linalg.norm(z, axis=2, keepdims=True) + EPS)
        z = z - z.mean(1, keepdims=True); return z / (np.linalg.norm(z, axis=1, keepdims=True) + EPS)
    return np.sum(rc(xseg) * rc(yseg)) / (30 * M)
)PY";

// Runs kPyPrelude + `body` with the temp dir as argv[1]; returns the whitespace-separated numbers printed.
std::vector<double> run_python(const TempDir& dir, const std::string& body) {
  const std::string script = dir.path("ref.py");
  {
    std::ofstream f(script);
    f << kPyPrelude << "\n" << body << "\n";
  }
  const std::string cmd = "/usr/bin/python3 " + script + " " + dir.path("") + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << "python reference failed:\n" << out;
  std::vector<double> v;
  std::istringstream in(out);
  double d;
  while (in >> d) v.push_back(d);
  return v;
}

// espeak-ng speech as a (T) float tensor at 22.05 kHz.
at::Tensor speak(const TempDir& dir, const std::string& name, const std::string& text,
                 const std::string& args = "") {
  const std::string wav = dir.path(name + ".wav");
  const std::string cmd = "espeak-ng -w " + wav + " " + args + " \"" + text + "\" >/dev/null 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  data::AudioOptions o;
  o.channels = 1;
  int sr = 0;
  at::Tensor w = data::load_audio(wav, o, &sr);
  EXPECT_EQ(sr, kRate);
  return w[0].contiguous();
}

at::Tensor noise_like(const at::Tensor& x, double snr_db, uint64_t seed) {
  at::Generator gen = at::detail::createCPUGenerator(seed);
  at::Tensor n = at::randn(x.sizes(), gen, at::TensorOptions().dtype(at::kDouble));
  const double px = x.to(at::kDouble).square().mean().item<double>();
  const double pn = n.square().mean().item<double>();
  return n * std::sqrt(px / pn / std::pow(10.0, snr_db / 10.0));
}

at::Tensor sine(double hz, double seconds, int rate, double amp = 0.5) {
  at::Tensor t = at::arange(static_cast<int64_t>(seconds * rate), at::kDouble) / rate;
  return at::sin(t * (2 * M_PI * hz)) * amp;
}


// ---------------------------------------------------------------- SI-SDR
TEST(SiSdr, HandCheckedTable) {
  at::Tensor s = at::tensor({1.0, -1.0, 1.0, -1.0}, at::kDouble);
  at::Tensor e = s + at::tensor({0.5, 0.5, -0.5, -0.5}, at::kDouble);
  EXPECT_NEAR(si_sdr({s, 8000}, {e, 8000}), 10 * std::log10(4.0), 1e-9);
  EXPECT_NEAR(sdr({s, 8000}, {e, 8000}), 10 * std::log10(4.0), 1e-9);
  // Scale invariance: SI-SDR ignores a gain on the estimate, plain SDR does not.
  EXPECT_NEAR(si_sdr({s, 8000}, {e * 3.0, 8000}), 10 * std::log10(4.0), 1e-9);
  EXPECT_LT(sdr({s, 8000}, {e * 3.0, 8000}), 0.0);
}

TEST(SiSdr, ScaledCopyIsVeryLarge) {
  at::Tensor x = sine(220, 1.0, kRate).to(at::kFloat) + 0.1f;
  const double v = si_sdr({x, kRate}, {x * 2.0f, kRate});
  // 10 log10(4 |x|^2 / eps_float32) with |x|^2 ~ 2.9e3: ~ 110 dB; finite by construction (torchmetrics eps).
  EXPECT_GT(v, 90.0);
  EXPECT_TRUE(std::isfinite(v));
}

TEST(SiSdr, NoisyMatchesNumpy) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy and scipy not available";
  TempDir dir;
  at::Tensor x = (sine(220, 0.5, kRate) + sine(555, 0.5, kRate, 0.2) + 0.05).to(at::kFloat);
  at::Tensor n = noise_like(x, 5.0, 7).to(at::kFloat);
  at::Tensor y = x * 0.7f + n + 0.01f;
  write_f64(dir.path("x.f64"), x);
  write_f64(dir.path("y.f64"), y);
  const std::vector<double> ref = run_python(dir, R"PY(
x, y = load('x.f64'), load('y.f64')
e = float(np.finfo(np.float32).eps)
xs, ys = x - x.mean(), y - y.mean()
a = (ys @ xs + e) / (xs @ xs + e)
print(10 * np.log10((np.sum((a * xs) ** 2) + e) / (np.sum((a * xs - ys) ** 2) + e)))
print(10 * np.log10((np.sum(x ** 2) + e) / (np.sum((x - y) ** 2) + e)))
)PY");
  ASSERT_EQ(ref.size(), 2u);
  EXPECT_NEAR(si_sdr({x, kRate}, {y, kRate}), ref[0], 1e-9);
  EXPECT_NEAR(sdr({x, kRate}, {y, kRate}), ref[1], 1e-9);
  // Roughly the 5 dB of added noise (the 0.7 gain is scale-invariant).
  EXPECT_NEAR(ref[0], 5.0 + 20 * std::log10(0.7), 0.5);
}

// ---------------------------------------------------------------- MCD
TEST(Mcd, CepstrumShapeAndIdentity) {
  at::Tensor x = sine(200, 1.0, kRate) + noise_like(sine(200, 1.0, kRate), 20, 1);
  at::Tensor c = mel_cepstrum({x, kRate});
  EXPECT_EQ(c.size(0), 1 + x.numel() / 256);
  EXPECT_EQ(c.size(1), 12);
  MelCepstrumOptions with_c0;
  with_c0.include_c0 = true;
  EXPECT_EQ(mel_cepstrum({x, kRate}, with_c0).size(1), 13);
  McdResult r = mcd({x, kRate}, {x, kRate});
  EXPECT_NEAR(r.mcd, 0.0, 1e-12);
  EXPECT_EQ(r.path_length, c.size(0));  // the diagonal
}

TEST(Mcd, DtwHandChecked) {
  // a = [0, 1, 2], b = [0, 1, 1, 2] (1-D features): the path (0,0) (1,1) (1,2) (2,3) costs 0.
  at::Tensor a = at::tensor({0.0, 1.0, 2.0}, at::kDouble).reshape({3, 1});
  at::Tensor b = at::tensor({0.0, 1.0, 1.0, 2.0}, at::kDouble).reshape({4, 1});
  DtwResult d = dtw(a, b);
  EXPECT_EQ(d.cost, 0.0);
  EXPECT_EQ(d.path, (AlignmentPath{{0, 0}, {1, 1}, {1, 2}, {2, 3}}));
  // MCD on those "cepstra": 0 with DTW; truncation pairs (2,2): |2 - 1| = 1 over 3 pairs.
  EXPECT_EQ(mcd_from_cepstra(a, b).mcd, 0.0);
  McdResult t = mcd_from_cepstra(a, b, "truncate");
  EXPECT_EQ(t.path_length, 3);
  EXPECT_NEAR(t.mcd, 10 / std::log(10.0) * std::sqrt(2.0) / 3.0, 1e-12);
}

TEST(Mcd, StretchedCopyBeatsOtherTextAndMatchesNumpy) {
  if (!have_espeak()) GTEST_SKIP() << "espeak-ng not installed";
  TempDir dir;
  at::Tensor ref = speak(dir, "ref", "the quick brown fox jumps over the lazy dog", "-s 175");
  at::Tensor slow = speak(dir, "slow", "the quick brown fox jumps over the lazy dog", "-s 140");
  at::Tensor other = speak(dir, "other", "please call stella and ask her to bring these things", "-s 175");
  const McdResult stretched = mcd({ref, kRate}, {slow, kRate});
  const McdResult different = mcd({ref, kRate}, {other, kRate});
  EXPECT_LT(stretched.mcd, 0.7 * different.mcd) << stretched.mcd << " vs " << different.mcd;
  // The path covers both sequences: max(N, M) <= length <= N + M - 1.
  EXPECT_GE(stretched.path_length, std::max(stretched.frames_ref, stretched.frames_syn));
  EXPECT_LE(stretched.path_length, stretched.frames_ref + stretched.frames_syn - 1);
  EXPECT_GT(stretched.frames_syn, stretched.frames_ref);
  // DTW does better than truncation on the stretched copy.
  McdOptions trunc;
  trunc.alignment = "truncate";
  EXPECT_LT(stretched.mcd, mcd({ref, kRate}, {slow, kRate}, trunc).mcd);
  // log10 cepstra are the dB ones / 10: the same path, MCD / 10.
  McdOptions l10;
  l10.cepstrum.log = "log10";
  const McdResult r10 = mcd({ref, kRate}, {slow, kRate}, l10);
  EXPECT_NEAR(r10.mcd, stretched.mcd / 10, 1e-9 * stretched.mcd);
  EXPECT_EQ(r10.path_length, stretched.path_length);

  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy and scipy not available";
  write_f64(dir.path("ref.f64"), ref);
  write_f64(dir.path("slow.f64"), slow);
  const std::vector<double> py = run_python(dir, R"PY(
m, n = mcd(load('ref.f64'), load('slow.f64'), 22050)
print(m, n)
)PY");
  ASSERT_EQ(py.size(), 2u);
  EXPECT_NEAR(stretched.mcd, py[0], 1e-6 * py[0]);
  EXPECT_EQ(stretched.path_length, static_cast<int64_t>(py[1]));
}

// ---------------------------------------------------------------- LSD
TEST(Lsd, IdentityGainAndNumpy) {
  at::Tensor x = sine(300, 1.0, kRate) + noise_like(sine(300, 1.0, kRate), 10, 3);
  EXPECT_NEAR(lsd({x, kRate}, {x, kRate}), 0.0, 1e-12);
  // A gain g shifts every bin by 20 log10 g dB (away from the floor).
  EXPECT_NEAR(lsd({x, kRate}, {x * 2.0, kRate}), 20 * std::log10(2.0), 1e-9);
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy and scipy not available";
  TempDir dir;
  at::Tensor y = at::roll(x, 37) * 0.8 + noise_like(x, 0, 4);
  y.slice(0, 5000, 8000).zero_();  // exercise the floor
  write_f64(dir.path("x.f64"), x);
  write_f64(dir.path("y.f64"), y);
  const std::vector<double> py = run_python(dir, "print(lsd(load('x.f64'), load('y.f64')))");
  ASSERT_EQ(py.size(), 1u);
  EXPECT_NEAR(lsd({x, kRate}, {y, kRate}), py[0], 1e-9 * py[0]);
}

TEST(Lsd, LengthPolicy) {
  at::Tensor x = sine(300, 1.0, kRate);
  EXPECT_ERROR_HAS(lsd({x, kRate}, {x.slice(0, 0, 20000), kRate}), "truncate = true");
  LsdOptions o;
  o.truncate = true;
  EXPECT_NEAR(lsd({x, kRate}, {x.slice(0, 0, 20000), kRate}, o), 0.0, 1e-12);
}

// ---------------------------------------------------------------- STOI
TEST(Stoi, CleanIsOneAndNoiseIsMonotonic) {
  if (!have_espeak()) GTEST_SKIP() << "espeak-ng not installed";
  TempDir dir;
  at::Tensor x = speak(dir, "s", "speech intelligibility is predicted from short time envelopes");
  EXPECT_NEAR(stoi({x, kRate}, {x, kRate}), 1.0, 1e-9);
  StoiOptions ext;
  ext.extended = true;
  EXPECT_NEAR(stoi({x, kRate}, {x, kRate}, ext), 1.0, 1e-9);
  double prev = -1, prev_e = -1;
  for (double snr : {-10.0, -5.0, 0.0, 5.0, 10.0, 20.0}) {
    at::Tensor y = x + noise_like(x, snr, 11).to(at::kFloat);
    const double d = stoi({x, kRate}, {y, kRate});
    const double de = stoi({x, kRate}, {y, kRate}, ext);
    EXPECT_GT(d, prev) << "SNR " << snr;
    EXPECT_GT(de, prev_e) << "SNR " << snr;
    EXPECT_LT(d, 1.0);
    prev = d, prev_e = de;
  }
  EXPECT_GT(prev, 0.9);  // 20 dB
}

TEST(Stoi, MatchesNumpyReference) {
  if (!have_espeak()) GTEST_SKIP() << "espeak-ng not installed";
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy and scipy not available";
  TempDir dir;
  at::Tensor x = speak(dir, "s", "the birch canoe slid on the smooth planks");
  at::Tensor y = x + noise_like(x, 0.0, 5).to(at::kFloat);
  write_f64(dir.path("x.f64"), x);
  write_f64(dir.path("y.f64"), y);
  // 22.05 kHz -> 10 kHz (p/q = 200/441), and a native 10 kHz pair (no resampling).
  at::Tensor x10 = resample_octave(x.to(at::kDouble), 10000, kRate);
  at::Tensor y10 = resample_octave(y.to(at::kDouble), 10000, kRate);
  write_f64(dir.path("x10.f64"), x10);
  const std::vector<double> py = run_python(dir, R"PY(
x, y = load('x.f64'), load('y.f64')
r = resample_oct(x, 10000, 22050)
print(np.max(np.abs(r - load('x10.f64'))), len(r))
print(stoi(x, y, 22050), stoi(x, y, 22050, True))
x10, y10 = resample_oct(x, 10000, 22050), resample_oct(y, 10000, 22050)
print(stoi(x10, y10, 10000), stoi(x10, y10, 10000, True))
)PY");
  ASSERT_EQ(py.size(), 6u);
  EXPECT_LT(py[0], 1e-12);
  EXPECT_EQ(x10.numel(), static_cast<int64_t>(py[1]));
  StoiOptions ext;
  ext.extended = true;
  EXPECT_NEAR(stoi({x, kRate}, {y, kRate}), py[2], 1e-9);
  EXPECT_NEAR(stoi({x, kRate}, {y, kRate}, ext), py[3], 1e-9);
  EXPECT_NEAR(stoi({x10, 10000}, {y10, 10000}), py[4], 1e-9);
  EXPECT_NEAR(stoi({x10, 10000}, {y10, 10000}, ext), py[5], 1e-9);
}

TEST(Stoi, ResampleOctaveMatchesScipyAt16k) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy and scipy not available";
  TempDir dir;
  at::Tensor x = sine(440, 0.3, 16000) + noise_like(sine(440, 0.3, 16000), 10, 9);
  write_f64(dir.path("x.f64"), x);
  at::Tensor r = resample_octave(x, 10000, 16000);
  write_f64(dir.path("r.f64"), r);
  const std::vector<double> py = run_python(
      dir, "r = resample_oct(load('x.f64'), 10000, 16000)\nprint(np.max(np.abs(r - load('r.f64'))), len(r))");
  ASSERT_EQ(py.size(), 2u);
  EXPECT_LT(py[0], 1e-12);
  EXPECT_EQ(r.numel(), static_cast<int64_t>(py[1]));
}

// ---------------------------------------------------------------- bad input
TEST(SpeechQualityBadInput, ErrorsNameTheProblem) {
  at::Tensor x = sine(220, 1.0, kRate).to(at::kFloat);
  at::Tensor empty = at::empty({0}, at::kFloat);
  at::Tensor nan = x.clone();
  nan[100] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_ERROR_HAS(si_sdr({empty, kRate}, {x, kRate}), "si_sdr: reference: empty waveform");
  EXPECT_ERROR_HAS(si_sdr({x, kRate}, {nan, kRate}), "si_sdr: estimate: sample 100 of 22050 is nan");
  EXPECT_ERROR_HAS(si_sdr({x, kRate}, {x, 16000}), "reference is at 22050 Hz but estimate at 16000 Hz");
  EXPECT_ERROR_HAS(si_sdr({x, kRate}, {x.slice(0, 0, 100), kRate}), "has 22050 samples but estimate has 100");
  EXPECT_ERROR_HAS(si_sdr({at::Tensor(), kRate}, {x, kRate}), "undefined tensor");
  EXPECT_ERROR_HAS(si_sdr({at::stack({x, x}), kRate}, {x, kRate}), "got shape (2, 22050); downmix");
  EXPECT_ERROR_HAS(si_sdr({(x * 1000).to(at::kShort), kRate}, {x, kRate}), "must be floating point");
  EXPECT_ERROR_HAS(si_sdr({x, 0}, {x, 0}), "sample rate must be > 0");
  EXPECT_ERROR_HAS(mcd({x, kRate}, {x, 24000}), "mcd: reference is at 22050 Hz but synthesized at 24000 Hz");
  EXPECT_ERROR_HAS(mcd({x, kRate}, {empty, kRate}), "mcd: synthesized: empty waveform");
  EXPECT_ERROR_HAS(mcd({nan, kRate}, {x, kRate}), "mcd: reference: sample 100");
  EXPECT_ERROR_HAS(lsd({x, kRate}, {nan, kRate}), "lsd: synthesized: sample 100");
  EXPECT_ERROR_HAS(lsd({x, kRate}, {x, 16000}), "lsd: reference is at 22050 Hz");
  EXPECT_ERROR_HAS(lsd({x.slice(0, 0, 500), kRate}, {x.slice(0, 0, 500), kRate}), "too short");
  EXPECT_ERROR_HAS(stoi({x, kRate}, {x, 16000}), "stoi: clean is at 22050 Hz but processed at 16000 Hz");
  EXPECT_ERROR_HAS(stoi({x, kRate}, {x.slice(0, 0, 1000), kRate}), "stoi: clean has 22050 samples");
  EXPECT_ERROR_HAS(stoi({x.slice(0, 0, 2000), kRate}, {x.slice(0, 0, 2000), kRate}), "only");
  EXPECT_ERROR_HAS(stoi({empty, kRate}, {empty, kRate}), "stoi: clean: empty waveform");
  McdOptions bad;
  bad.alignment = "fastdtw";
  EXPECT_ERROR_HAS(mcd({x, kRate}, {x, kRate}, bad), "alignment must be 'dtw' or 'truncate'");
  MelCepstrumOptions nm;
  nm.n_mfcc = 100;
  EXPECT_ERROR_HAS(mel_cepstrum({x, kRate}, nm), "n_mfcc must be in [1, n_mels=80]");
  EXPECT_ERROR_HAS(dtw(at::zeros({3, 2}), at::zeros({4, 3})), "feature dims differ");
}

TEST(SpeechQualityConfig, ParsesOptionsAndRejectsUnknownKeys) {
  const config::Node n =
      config::parse_yaml("cepstrum: {n_mfcc: 25, log: ln}\nalignment: truncate\n", "mcd.yaml");
  config::Reader r(&n, "", nullptr);
  McdOptions o;
  parse(r, o);
  EXPECT_EQ(o.cepstrum.n_mfcc, 25);
  EXPECT_EQ(o.cepstrum.log, "ln");
  EXPECT_EQ(o.alignment, "truncate");
  EXPECT_EQ(o.cepstrum.n_mels, 80);  // default kept
  const config::Node bad = config::parse_yaml("n_fft: 1024\nhop: 256\n", "lsd.yaml");
  config::Reader rb(&bad, "lsd", nullptr);
  LsdOptions l;
  EXPECT_THROW(parse(rb, l), ConfigError);
}

}  // namespace
}  // namespace mmref::eval
