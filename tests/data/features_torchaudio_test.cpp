// Features against their reference implementations:
//   KaldiFbankGolden      fixtures in <golden>/kaldi_fbank (torchaudio 0.13 kaldi.fbank/mfcc); options
//                         come from case.json's kwargs, tolerance from its suggested_tolerance
//   KaldiFbankTorchaudio, KaldiMfccTorchaudio, LogMelTorchaudio, ResampleTorchaudio
//                         fresh references from tests/data/make_feature_refs.py, run once per process
//                         with /usr/bin/python3 (skipped, with the reason, when torchaudio is absent)
// Golden root: $MMREF_GOLDEN_DIR, else <MMREF_SOURCE_DIR>/../shared/golden. Only key names and layout
// are assumed (twin fixtures with other values run in CI).
//   MMREF_GOLDEN_DIR=/path build/<dir>/tests/mmref_data_tests --gtest_filter='KaldiFbankGolden*'
#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>

#include <sys/wait.h>

#include "core/fs.h"
#include "core/safetensors.h"
#include "data/features/kaldi_fbank.h"
#include "data/features/mel.h"
#include "data/features/resample.h"

namespace mmref::data {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

std::string golden_root() {
  const char* env = std::getenv("MMREF_GOLDEN_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(MMREF_SOURCE_DIR) + "/../shared/golden";
}

// torchaudio kaldi kwargs -> our options; returns the sample rate. Unknown keys fail the test.
int apply_kwargs(const json& kw, KaldiFbankOptions& o, KaldiMfccOptions* m) {
  int sr = 16000;
  for (const auto& [k, v] : kw.items()) {
    if (k == "sample_frequency")
      sr = static_cast<int>(v.get<double>());
    else if (k == "frame_length")
      o.frame_length_ms = v.get<double>();
    else if (k == "frame_shift")
      o.frame_shift_ms = v.get<double>();
    else if (k == "dither")
      o.dither = v.get<double>();
    else if (k == "preemphasis_coefficient")
      o.preemphasis_coefficient = v.get<double>();
    else if (k == "remove_dc_offset")
      o.remove_dc_offset = v.get<bool>();
    else if (k == "window_type")
      o.window_type = v.get<std::string>();
    else if (k == "blackman_coeff")
      o.blackman_coeff = v.get<double>();
    else if (k == "round_to_power_of_two")
      o.round_to_power_of_two = v.get<bool>();
    else if (k == "snip_edges")
      o.snip_edges = v.get<bool>();
    else if (k == "num_mel_bins")
      o.num_mel_bins = v.get<int>();
    else if (k == "low_freq")
      o.low_freq = v.get<double>();
    else if (k == "high_freq")
      o.high_freq = v.get<double>();
    else if (k == "use_energy")
      o.use_energy = v.get<bool>();
    else if (k == "energy_floor")
      o.energy_floor = v.get<double>();
    else if (k == "raw_energy")
      o.raw_energy = v.get<bool>();
    else if (k == "use_log_fbank")
      o.use_log_fbank = v.get<bool>();
    else if (k == "use_power")
      o.use_power = v.get<bool>();
    else if (k == "htk_compat")
      o.htk_compat = v.get<bool>();
    else if (k == "subtract_mean")
      (m ? m->subtract_mean : o.subtract_mean) = v.get<bool>();
    else if (m && k == "num_ceps")
      m->num_ceps = v.get<int>();
    else if (m && k == "cepstral_lifter")
      m->cepstral_lifter = v.get<double>();
    else if ((k == "channel" && v.get<int>() <= 0) || (k == "min_duration" && v.get<double>() == 0.0) ||
             (k == "vtln_warp" && v.get<double>() == 1.0) || k == "vtln_low" || k == "vtln_high") {
      // defaults with no effect here (no VTLN)
    } else {
      ADD_FAILURE() << "unsupported kwarg " << k << "=" << v.dump();
    }
  }
  return sr;
}

// |a - b| <= atol + rtol |b| everywhere (b is the reference).
::testing::AssertionResult close(const at::Tensor& got, const at::Tensor& ref, double atol, double rtol) {
  if (got.sizes() != ref.sizes()) {
    std::ostringstream s;
    s << "shape " << got.sizes() << " vs reference " << ref.sizes();
    return ::testing::AssertionFailure() << s.str();
  }
  at::Tensor a = got.to(at::kDouble), b = ref.to(at::kDouble);
  at::Tensor diff = (a - b).abs();
  at::Tensor bound = atol + rtol * b.abs();
  const double max_abs = diff.max().item<double>();
  const double excess = (diff - bound).max().item<double>();
  if (excess > 0 || !std::isfinite(max_abs))
    return ::testing::AssertionFailure() << "max abs err " << max_abs << " exceeds atol " << atol
                                         << " + rtol " << rtol << "*|ref| by " << excess;
  return ::testing::AssertionSuccess() << "max abs err " << max_abs;
}

// ---------------------------------------------------------------------------------------------------
// Golden fixtures.

TEST(KaldiFbankGolden, MatchesTorchaudioFixtures) {
  const std::string dir = golden_root() + "/kaldi_fbank";
  if (!stdfs::exists(dir + "/io.safetensors") || !stdfs::exists(dir + "/case.json"))
    GTEST_SKIP() << "no kaldi_fbank fixture at '" << dir << "' (set MMREF_GOLDEN_DIR)";
  const json c = json::parse(fs::read_file(dir + "/case.json"));
  const auto io = SafetensorsFile::open(dir + "/io.safetensors");
  const json& tol = c.at("suggested_tolerance");
  int checked = 0;
  for (const auto& info : io.tensors()) {
    if (info.name.rfind("input.", 0) != 0) continue;
    const std::string sig = info.name.substr(6);  // speech | noise
    const at::Tensor wave = io.get(info.name, at::kFloat);
    for (const auto& [cfg_name, cfg] : c.at("configs").items()) {
      const std::string key = "output." + sig + "." + cfg_name;
      SCOPED_TRACE(key);
      ASSERT_TRUE(io.contains(key)) << "fixture lacks " << key;
      const at::Tensor ref = io.get(key, at::kFloat);
      const std::string fn = cfg.at("function").get<std::string>();
      at::Tensor got;
      if (fn == "mfcc") {
        KaldiMfccOptions m;
        const int sr = apply_kwargs(cfg.at("kwargs"), m.fbank, &m);
        got = kaldi_mfcc(wave, sr, m);
        EXPECT_TRUE(close(got, ref, tol.at("mfcc").at("atol").get<double>(),
                          tol.at("mfcc").at("rtol").get<double>()));
      } else {
        ASSERT_EQ(fn, "fbank");
        KaldiFbankOptions o;
        const int sr = apply_kwargs(cfg.at("kwargs"), o, nullptr);
        got = kaldi_fbank(wave, sr, o);
        EXPECT_TRUE(close(got, ref, tol.at("fbank").at("atol").get<double>(),
                          tol.at("fbank").at("rtol").get<double>()));
      }
      if (got.sizes() == ref.sizes()) {
        const double err = (got.to(at::kDouble) - ref.to(at::kDouble)).abs().max().item<double>();
        RecordProperty("max_abs." + sig + "." + cfg_name, std::to_string(err));
        std::printf("  %s: max abs err %.3g\n", key.c_str(), err);
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 0) << "no input.* tensors in the fixture";
}

// ---------------------------------------------------------------------------------------------------
// Fresh torchaudio references.

struct Refs {
  std::string path;
  std::string skip_reason;  // non-empty: torchaudio (or python) unavailable
};

const Refs& refs() {
  static const Refs r = [] {
    Refs out;
    const std::string py = "/usr/bin/python3";
    if (!stdfs::exists(py)) {
      out.skip_reason = "no " + py + " (needs torch + torchaudio)";
      return out;
    }
    const std::string dir = fs::make_temp_dir("mmref_feature_refs");
    out.path = dir + "/refs.safetensors";
    const std::string err = dir + "/stderr.txt";
    const std::string cmd = py + " " + std::string(MMREF_SOURCE_DIR) + "/tests/data/make_feature_refs.py " +
                            out.path + " 2>" + err;
    const int st = std::system(cmd.c_str());
    const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc == 3) {
      out.skip_reason = "torchaudio unavailable: " + fs::read_file(err);
    } else if (rc != 0) {
      out.skip_reason.clear();
      out.path.clear();
      ADD_FAILURE() << cmd << " failed (rc " << rc << "): " << fs::read_file(err);
    }
    return out;
  }();
  return r;
}

#define REQUIRE_REFS()                                           \
  const Refs& R = refs();                                        \
  if (!R.skip_reason.empty()) GTEST_SKIP() << R.skip_reason;     \
  ASSERT_FALSE(R.path.empty()) << "reference generation failed"; \
  const auto F = SafetensorsFile::open(R.path)

// Runs every `<kind>.<case>` in the file through ours and compares.
template <typename Fn>
int for_each_case(const SafetensorsFile& f, const std::string& kind, Fn fn) {
  int n = 0;
  for (const auto& info : f.tensors()) {
    if (info.name.rfind(kind + ".", 0) != 0) continue;
    SCOPED_TRACE(info.name);
    const auto it = f.metadata().find("kwargs." + info.name);
    const json kw = it == f.metadata().end() ? json::object() : json::parse(it->second);
    fn(info.name, kw, f.get(info.name));
    ++n;
  }
  return n;
}

TEST(KaldiFbankTorchaudio, OptionCombosMatch) {
  REQUIRE_REFS();
  const int n = for_each_case(F, "fbank", [&](const std::string&, const json& kw, const at::Tensor& ref) {
    KaldiFbankOptions o;
    const int sr = apply_kwargs(kw, o, nullptr);
    const at::Tensor wave = F.get(sr == 8000 ? "wave8k" : "wave16k");
    EXPECT_TRUE(close(kaldi_fbank(wave, sr, o), ref, 2e-3, 1e-4)) << kw.dump();
  });
  EXPECT_GE(n, 5);
}

TEST(KaldiMfccTorchaudio, OptionCombosMatch) {
  REQUIRE_REFS();
  const int n = for_each_case(F, "mfcc", [&](const std::string&, const json& kw, const at::Tensor& ref) {
    KaldiMfccOptions m;
    const int sr = apply_kwargs(kw, m.fbank, &m);
    const at::Tensor wave = F.get(sr == 8000 ? "wave8k" : "wave16k");
    EXPECT_TRUE(close(kaldi_mfcc(wave, sr, m), ref, 5e-3, 1e-4)) << kw.dump();
  });
  EXPECT_GE(n, 4);
}

TEST(LogMelTorchaudio, FilterbankMatchesMelscaleFbanks) {
  REQUIRE_REFS();
  const int n = for_each_case(F, "mel", [&](const std::string&, const json& kw, const at::Tensor& ref) {
    const at::Tensor fb = mel_filterbank(
        kw.at("n_freqs").get<int64_t>(), kw.at("f_min").get<double>(), kw.at("f_max").get<double>(),
        kw.at("n_mels").get<int>(), kw.at("sample_rate").get<int>(), kw.at("mel_scale").get<std::string>(),
        kw.at("norm").get<std::string>());
    // torchaudio builds the bank in float32: a bin frequency of ~8 kHz is off by ~5e-4 Hz, which the
    // triangle slopes (1 / ~100 Hz) turn into ~3e-6 on weights <= 1 (observed 2.6e-6, norm none).
    EXPECT_TRUE(close(fb, ref, 1e-5, 1e-4)) << kw.dump();
  });
  EXPECT_GE(n, 3);
}

TEST(LogMelTorchaudio, HifiGanMelSpectrogramMatches) {
  REQUIRE_REFS();
  LogMelOptions o;  // defaults are HiFi-GAN's V1 config at 22.05 kHz
  const at::Tensor wave = F.get("logmel.wave");
  const at::Tensor got = log_mel_spectrogram(wave[0], o);
  const at::Tensor ref = F.get("logmel.hifigan");
  EXPECT_EQ(got.size(1), log_mel_num_frames(wave.size(1), o));
  EXPECT_TRUE(close(got, ref, 1e-3, 1e-4));
}

TEST(ResampleTorchaudio, MatchesFunctionalResample) {
  REQUIRE_REFS();
  const at::Tensor in = F.get("resample.input");
  const int n =
      for_each_case(F, "resample", [&](const std::string& name, const json&, const at::Tensor& ref) {
        if (name == "resample.input") return;
        int64_t a = 0, b = 0;
        ASSERT_EQ(std::sscanf(name.c_str(), "resample.%ld_%ld", &a, &b), 2);
        const bool f64 = name.size() > 4 && name.substr(name.size() - 4) == ".f64";
        const at::Tensor got = resample(f64 ? in.to(at::kDouble) : in, a, b);
        EXPECT_EQ(got.scalar_type(), f64 ? at::kDouble : at::kFloat);
        // float64: both sides exact to ~1e-12. float32: torchaudio evaluates its sinc kernel in float32
        // (observed 2.4e-5 off the float64 result for 22050 -> 16000); ours builds it in float64.
        EXPECT_TRUE(close(got, ref, f64 ? 1e-9 : 5e-5, f64 ? 0.0 : 1e-4)) << a << " -> " << b;
        if (!f64) {
          EXPECT_TRUE(close(got, F.get(name + ".f64"), 2e-6, 0.0)) << "float32 vs float64 reference";
        }
      });
  EXPECT_GE(n, 10);
}

}  // namespace
}  // namespace mmref::data
