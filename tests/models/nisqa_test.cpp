// Tests of the NISQA port (src/models/mos/nisqa*.{h,cpp}).
//   Nisqa           hand-computed front-end tables (Slaney mel scale, numpy reflect pad, STFT of a
//                   bin-centred sine, amplitude_to_db, segments), the resampler on tones, args parsing,
//                   both model variants through safetensors round trips, padded batches against one-by-one
//                   predictions, error messages and a sanity property; no Python needed.
//   NisqaReference  against tests/models/nisqa_reference.py, run once per process with /usr/bin/python3
//                   (skipped with the reason when numpy/torch are missing): a plain-PyTorch NISQA with the
//                   reference module names saved by torch.save as nisqa.tar is laid out, its predictions
//                   and a numpy re-derivation of librosa's mel front end; torchaudio's Kaiser resampler.
//   build/cpu/tests/mmref_models_tests --gtest_filter='Nisqa*'
#include <gtest/gtest.h>

#include <ATen/Functions.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <sys/wait.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "models/mos/nisqa.h"
#include "models/mos/nisqa_checkpoint.h"
#include "models/mos/nisqa_features.h"

namespace mmref::models {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;
using torch::Tensor;

constexpr double kPi = 3.14159265358979323846;

::testing::AssertionResult close(const Tensor& got, const Tensor& ref, double atol, double rtol) {
  if (got.sizes() != ref.sizes()) {
    std::ostringstream s;
    s << "shape " << got.sizes() << " vs reference " << ref.sizes();
    return ::testing::AssertionFailure() << s.str();
  }
  const Tensor a = got.to(at::kDouble), b = ref.to(at::kDouble);
  const Tensor diff = (a - b).abs();
  const double max_abs = diff.max().item<double>();
  const double excess = (diff - (atol + rtol * b.abs())).max().item<double>();
  if (excess > 0 || !std::isfinite(max_abs))
    return ::testing::AssertionFailure() << "max abs err " << max_abs << " exceeds atol " << atol
                                         << " + rtol " << rtol << "*|ref| by " << excess;
  return ::testing::AssertionSuccess() << "max abs err " << max_abs;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Tensor pred_tensor(const MosPrediction& p) {
  if (!p.noi) return at::tensor({p.mos}, at::kDouble);
  return at::tensor({p.mos, *p.noi, *p.dis, *p.col, *p.loud}, at::kDouble);
}

// A small NISQA at 16 kHz (hop 160, window 320, 1024-point FFT) so the unit tests run in milliseconds.
NisqaConfig tiny(const std::string& model) {
  NisqaConfig c;
  c.model = model;
  c.ms_n_fft = 1024;
  c.ms_n_mels = 24;
  c.ms_fmax = 8000;
  c.cnn_c_out_1 = 4, c.cnn_c_out_2 = 6, c.cnn_c_out_3 = 8;
  c.cnn_pool_1 = {12, 7}, c.cnn_pool_2 = {6, 5}, c.cnn_pool_3 = {3, 3};
  c.td_sa.d_model = 16, c.td_sa.nhead = 2, c.td_sa.h = 16;
  c.pool_att_h = 8;
  return c;
}

// Speech-like test audio: harmonics of a gliding f0 under a syllable envelope, plus a little noise.
Tensor voiced(double seconds, int64_t sr, double f0, uint64_t seed);

// Random biases (the five pools must differ), BatchNorm statistics calibrated on test audio in training
// mode and then perturbed, so activations stay O(1), the ReLUs do not all die and eval mode is not an
// identity.
Nisqa random_model(const NisqaConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  Nisqa m(c);
  torch::NoGradGuard ng;
  for (const auto& item : m->named_parameters()) {
    if (item.key().find("bias") != std::string::npos) item.value().uniform_(-0.2, 0.2);
  }
  const int64_t sr = c.ms_sr ? static_cast<int64_t>(*c.ms_sr) : 16000;
  const Tensor segs = m->segments(m->melspec(voiced(1.5, sr, 150, seed + 100), sr)).unsqueeze(0);
  m->train();
  for (int i = 0; i < 40; ++i) m->forward(segs, at::tensor({segs.size(1)}, at::kLong));  // momentum 0.1
  m->eval();
  for (const auto& item : m->named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos)
      item.value().add_(0.05 * at::randn_like(item.value()));
    if (item.key().find("running_var") != std::string::npos)
      item.value().mul_(at::empty_like(item.value()).uniform_(0.8, 1.25));
  }
  return m;
}

Tensor voiced(double seconds, int64_t sr, double f0, uint64_t seed) {
  torch::manual_seed(seed);
  const Tensor t = at::arange(static_cast<int64_t>(seconds * static_cast<double>(sr)), at::kDouble) /
                   static_cast<double>(sr);
  const Tensor phase =
      2 * kPi * at::cumsum(f0 * (1 + 0.1 * at::sin(2 * kPi * 2.0 * t)), 0) / static_cast<double>(sr);
  Tensor y = at::zeros_like(t);
  for (int k = 1; k * f0 < 0.45 * static_cast<double>(sr); ++k) y = y + at::sin(k * phase + k) / k;
  y = 0.2 * at::abs(at::sin(2 * kPi * 3.0 * t)) * y + 0.01 * at::randn_like(t);
  return y.to(at::kFloat);
}

// ---- front end: hand-computed tables ------------------------------------------------------------------

// Slaney mel scale (librosa htk=False): 200/3 Hz per mel below 1 kHz, then 27 mels per factor 6.4.
//   hz     mel
//   0      0
//   500    7.5
//   1000   15
//   6400   42      (15 + 27)
//   40960  69      (15 + 2 * 27)
TEST(Nisqa, SlaneyMelScaleTable) {
  const std::vector<std::pair<double, double>> table = {
      {0, 0}, {500, 7.5}, {1000, 15}, {6400, 42}, {40960, 69}};
  for (const auto& [hz, mel] : table) {
    EXPECT_NEAR(slaney_hz_to_mel(hz), mel, 1e-12) << hz;
    EXPECT_NEAR(slaney_mel_to_hz(mel), hz, 1e-9 * std::max(1.0, hz)) << mel;
  }
}

// Slaney-normalised triangles have unit area in Hz; filters beyond Nyquist (fmax > sr / 2) are empty.
TEST(Nisqa, MelFilterbankSlaneyAreaAndEmptyFilters) {
  const Tensor fb = slaney_mel_filterbank(/*sample_rate=*/16000, /*n_fft=*/4096, /*n_mels=*/20, 0.0, 8000.0);
  ASSERT_EQ(fb.sizes(), (std::vector<int64_t>{20, 2049}));
  EXPECT_GE(fb.min().item<double>(), 0.0);
  const double df = 16000.0 / 4096.0;
  EXPECT_TRUE(close(fb.sum(1) * df, at::ones({20}, at::kDouble), 0.0, 2e-3));
  // 16 kHz with fmax 20 kHz (NISQA's fmax on a narrowband file): bands above 8 kHz have no FFT bins.
  const Tensor wide = slaney_mel_filterbank(16000, 1024, 48, 0.0, 20000.0);
  int empty = 0;
  for (int64_t m = 0; m < 48; ++m) {
    const double lower_edge = slaney_mel_to_hz(static_cast<double>(m) * slaney_hz_to_mel(20000.0) / 49.0);
    const bool all_zero = wide[m].max().item<double>() == 0.0;
    if (lower_edge >= 8000.0) {
      EXPECT_TRUE(all_zero) << m;
    }
    if (lower_edge < 7000.0) {
      EXPECT_FALSE(all_zero) << m;
    }
    empty += all_zero;
  }
  EXPECT_GT(empty, 0);
}

// numpy.pad(x, p, mode="reflect"), written out by hand:
//   [1 2 3],   p=5  ->  2 1 2 3 2 | 1 2 3 | 2 1 2 3 2
//   [1 2 3 4], p=2  ->  3 2 | 1 2 3 4 | 3 2
TEST(Nisqa, ReflectPadMatchesNumpyTable) {
  const Tensor a = reflect_pad_numpy(at::tensor({1.0, 2.0, 3.0}), 5);
  EXPECT_TRUE(at::equal(a, at::tensor({2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 2.0})));
  const Tensor b = reflect_pad_numpy(at::tensor({1.0, 2.0, 3.0, 4.0}), 2);
  EXPECT_TRUE(at::equal(b, at::tensor({3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0})));
}

// A sine exactly on bin k (1 kHz = bin 32 of a 512-point FFT at 16 kHz) with amplitude A under a periodic
// Hann window of N = 400 samples: |X_k| = A / 2 * sum(w) = A / 2 * N / 2 = 0.5 / 2 * 200 = 50 (the mirror
// term at 2 kHz spans exactly 50 periods of the window and cancels).
TEST(Nisqa, StftOfBinCentredSineHasHalfWindowSumPeak) {
  const Tensor t = at::arange(8000, at::kDouble) / 16000.0;
  const Tensor x = 0.5 * at::sin(2 * kPi * 1000.0 * t);
  const Tensor s = stft_magnitude(x, /*n_fft=*/512, /*hop_length=*/160, /*win_length=*/400);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{257, 1 + 8000 / 160}));
  const Tensor interior = s.narrow(1, 5, 40);  // frames clear of the reflected edges
  EXPECT_TRUE(close(interior[32], at::full({40}, 50.0, at::kDouble), 1e-9, 0));
  EXPECT_TRUE((interior.argmax(0) == 32).all().item<bool>());
}

// amplitude_to_db(ref 1, amin 1e-4, top_db 80):
//   S      20 log10(max(1e-4, S))   after the floor at max - 80 = 20 - 80 = -60
//   1      0                        0
//   0.1    -20                      -20
//   1e-5   -80 (amin)               -60
//   10     20                       20
TEST(Nisqa, AmplitudeToDbTable) {
  const Tensor db = amplitude_to_db(at::tensor({1.0, 0.1, 1e-5, 10.0}));
  EXPECT_TRUE(close(db, at::tensor({0.0, -20.0, -60.0, 20.0}), 1e-12, 0));
  EXPECT_TRUE(close(amplitude_to_db(at::tensor({1e-5, 1.0}), 1.0, 1e-4, /*top_db=*/0),
                    at::tensor({-80.0, 0.0}), 1e-12, 0));
}

// segment_specs: T = 20 frames, seg 5, hop 4 -> windows start at 0, 4, 8, 12 (16 windows, every 4th).
TEST(Nisqa, SegmentsAreOverlappingSlices) {
  const Tensor spec = at::arange(60, at::kDouble).view({3, 20});
  const Tensor s = segment_spec(spec, /*seg_length=*/5, /*seg_hop=*/4);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{4, 1, 3, 5}));
  for (int64_t i = 0; i < 4; ++i) EXPECT_TRUE(at::equal(s[i][0], spec.narrow(1, 4 * i, 5))) << i;
  EXPECT_EQ(segment_spec(spec.narrow(1, 0, 5), 5, 4).size(0), 1);
  EXPECT_NE(error_of([&] { segment_spec(spec.narrow(1, 0, 4), 5, 4); }).find("fewer than one"),
            std::string::npos);
}

// Tones survive resampling (the pass band ends at 0.9476 x the lower Nyquist frequency); lengths are
// ceil(len * to / from); ratios without a useful common divisor are refused.
TEST(Nisqa, ResamplerKeepsTonesAndLengths) {
  for (const auto& [from, to] :
       std::vector<std::pair<int64_t, int64_t>>{{16000, 48000}, {48000, 16000}, {44100, 48000}}) {
    SCOPED_TRACE(std::to_string(from) + " -> " + std::to_string(to));
    const int64_t n = from / 2 + 7;
    const Tensor x = at::sin(2 * kPi * 1000.0 * at::arange(n, at::kDouble) / static_cast<double>(from));
    const Tensor y = resample_kaiser_best(x, from, to);
    const auto expect_len = static_cast<int64_t>(
        std::ceil(static_cast<double>(n) * static_cast<double>(to) / static_cast<double>(from)));
    ASSERT_EQ(y.size(0), expect_len);
    const Tensor ideal =
        at::sin(2 * kPi * 1000.0 * at::arange(expect_len, at::kDouble) / static_cast<double>(to));
    const int64_t edge = to / 50;  // 20 ms clear of the zero-padded ends
    EXPECT_TRUE(close(y.narrow(0, edge, expect_len - 2 * edge), ideal.narrow(0, edge, expect_len - 2 * edge),
                      1e-4, 0));
  }
  EXPECT_NE(
      error_of([] { resample_kaiser_best(at::zeros({100}), 44101, 48000); }).find("polyphase filter bank"),
      std::string::npos);
}

// ---- args ---------------------------------------------------------------------------------------------

TEST(Nisqa, ArgsParsingDefaultsChoicesAndErrors) {
  const NisqaConfig d = NisqaConfig::from_args(json::object(), "test");
  EXPECT_EQ(d.model, "NISQA");
  EXPECT_FALSE(d.ms_sr.has_value());
  EXPECT_EQ(d.ms_n_fft, 4096);
  EXPECT_EQ(d.ms_max_segments, 1300);
  EXPECT_EQ(d.cnn_pool_3, (std::array<int64_t, 2>{6, 3}));
  EXPECT_EQ(d.pool_att_h, std::optional<int64_t>(128));
  // Training keys are ignored; Python-style values are read as the reference reads them.
  json a = {{"model", "NISQA_DIM"},
            {"dim", true},
            {"tr_lr", 0.001},
            {"csv_db_train", {"A", "B"}},
            {"now", "<datetime.datetime>"},
            {"ms_sr", 48000.0},
            {"cnn_kernel_size", 3},
            {"cnn_fc_out_h", nullptr},
            {"td_sa_pos_enc", nullptr},
            {"td_2", "self_att"},
            {"td_2_sa_d_model", nullptr},
            {"pool_att_h", nullptr},
            {"ms_max_segments", 2000.0}};
  const NisqaConfig c = NisqaConfig::from_args(a, "test");
  EXPECT_TRUE(c.dim());
  EXPECT_EQ(c.num_outputs(), 5);
  EXPECT_EQ(c.ms_sr, std::optional<double>(48000.0));
  EXPECT_EQ(c.cnn_kernel_size, (std::array<int64_t, 2>{3, 3}));
  EXPECT_FALSE(c.td_sa.pos_enc);
  EXPECT_FALSE(c.pool_att_h.has_value());
  EXPECT_EQ(c.ms_max_segments, 2000);
  // to_args -> from_args is the identity on every option.
  EXPECT_EQ(NisqaConfig::from_args(c.to_args(), "round trip").to_args(), c.to_args());

  auto err = [](json j) {
    try {
      NisqaConfig::from_args(j, "'x.tar'");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err({{"ms_new_option", 1}}).find("'ms_new_option' is not a NISQA option"), std::string::npos);
  EXPECT_NE(err({{"cnn_model", "standard"}}).find("supported: adapt"), std::string::npos);
  EXPECT_NE(err({{"td", "lstm"}}).find("supported: self_att, skip"), std::string::npos);
  EXPECT_NE(err({{"model", "NISQA_DE"}}).find("NISQA_DE is not ported"), std::string::npos);
  EXPECT_NE(err({{"pool", "avg"}}).find("supported: att"), std::string::npos);
  EXPECT_NE(err({{"model", "NISQA"}, {"dim", true}}).find("'dim'"), std::string::npos);
  EXPECT_NE(err({{"ms_seg_length", 14}}).find("must be odd"), std::string::npos);
  EXPECT_NE(err({{"ms_n_mels", "48"}}).find("must be an integer"), std::string::npos);
  EXPECT_NE(err({{"cnn_pool_1", json::array({24})}}).find("[height, width]"), std::string::npos);
  EXPECT_NE(err({{"ms_seg_length", 14}}).find("'x.tar'"), std::string::npos);
}

// ---- the network --------------------------------------------------------------------------------------

// A scratch folder removed at the end of the test.
struct TempDir {
  std::string path = fs::make_temp_dir("mmref_nisqa_test");
  ~TempDir() { stdfs::remove_all(path); }
};

// The MOS-only layout (nisqa_tts.tar) and the MOS + dimensions layout (nisqa.tar) both save to and load
// from safetensors with the args in the metadata, bit for bit.
TEST(Nisqa, BothVariantsRoundTripThroughSafetensors) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  const Tensor wave = voiced(0.8, 16000, 140, 1);
  for (const std::string model : {"NISQA", "NISQA_DIM"}) {
    SCOPED_TRACE(model);
    Nisqa m = random_model(tiny(model), 3);
    const MosPrediction p = predict(m, wave, 16000);
    const std::string path = dir + "/" + model + ".safetensors";
    save_nisqa_safetensors(m, path);
    Nisqa back = load_nisqa(path);
    EXPECT_EQ(back->config().to_args(), m->config().to_args());
    const MosPrediction q = predict(back, wave, 16000);
    EXPECT_TRUE(at::equal(pred_tensor(p), pred_tensor(q)));
    EXPECT_TRUE(std::isfinite(p.mos));
    if (model == "NISQA") {
      EXPECT_FALSE(p.noi || p.col || p.dis || p.loud);
      EXPECT_EQ(module_state_dict(*m).count("pool.model.linear3.weight"), 1u);
    } else {
      ASSERT_TRUE(p.noi && p.col && p.dis && p.loud);
      EXPECT_EQ(module_state_dict(*m).count("pool_layers.4.model.linear3.weight"), 1u);
      const Tensor all = pred_tensor(p);
      EXPECT_EQ(std::get<0>(at::_unique(all)).numel(), 5) << "the five heads should differ";
    }
  }
}

// The args may also come from a JSON file next to a plain safetensors state dict.
TEST(Nisqa, ArgsFromASeparateJsonFile) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Nisqa m = random_model(tiny("NISQA_DIM"), 4);
  save_safetensors(dir + "/w.safetensors", module_state_dict(*m));
  fs::atomic_write(dir + "/args.json", m->config().to_args().dump());
  Nisqa back = load_nisqa(dir + "/w.safetensors", dir + "/args.json");
  const Tensor wave = voiced(0.5, 16000, 180, 2);
  EXPECT_TRUE(at::equal(pred_tensor(predict(m, wave, 16000)), pred_tensor(predict(back, wave, 16000))));
  EXPECT_NE(error_of([&] { load_nisqa(dir + "/w.safetensors"); }).find("no args JSON given"),
            std::string::npos);
}

// Padding: a padded batch gives each clip's one-by-one prediction (per-clip dB floor, packed CNN input,
// masked keys and pooling), for the vector and the padded-tensor overloads.
TEST(Nisqa, PaddedBatchEqualsOneByOne) {
  for (const std::string model : {"NISQA", "NISQA_DIM"}) {
    SCOPED_TRACE(model);
    Nisqa m = random_model(tiny(model), 5);
    const std::vector<Tensor> waves = {voiced(0.9, 16000, 120, 7), voiced(0.25, 16000, 200, 8),
                                       voiced(1.6, 16000, 95, 9)};
    const auto batch = predict_batch(m, waves, 16000);
    ASSERT_EQ(batch.size(), 3u);
    Tensor padded = at::zeros({3, waves[2].size(0)});
    Tensor lengths = at::empty({3}, at::kLong);
    for (int64_t i = 0; i < 3; ++i) {
      padded[i].narrow(0, 0, waves[static_cast<size_t>(i)].size(0)).copy_(waves[static_cast<size_t>(i)]);
      lengths[i] = waves[static_cast<size_t>(i)].size(0);
    }
    const auto from_padded = predict_batch(m, padded, lengths, 16000);
    // The clips differ, so the equalities below are not those of a constant function.
    EXPECT_GT(std::abs(batch[0].mos - batch[1].mos), 1e-3);
    EXPECT_GT(std::abs(batch[1].mos - batch[2].mos), 1e-3);
    for (size_t i = 0; i < 3; ++i) {
      const Tensor one = pred_tensor(predict(m, waves[i], 16000));
      EXPECT_TRUE(close(pred_tensor(batch[i]), one, 1e-5, 1e-5)) << i;
      EXPECT_TRUE(close(pred_tensor(from_padded[i]), one, 1e-5, 1e-5)) << i;
    }
  }
}

// Predictions are finite and follow the input: another clip, or the same clip with noise, moves them.
TEST(Nisqa, PredictionsAreFiniteAndFollowTheInput) {
  Nisqa m = random_model(tiny("NISQA_DIM"), 6);
  const Tensor clean = voiced(1.0, 16000, 130, 10);
  torch::manual_seed(11);
  const Tensor noisy = clean + 0.05 * at::randn_like(clean);
  const Tensor a = pred_tensor(predict(m, clean, 16000));
  const Tensor b = pred_tensor(predict(m, noisy, 16000));
  const Tensor c = pred_tensor(predict(m, voiced(1.0, 16000, 220, 12), 16000));
  EXPECT_TRUE(at::isfinite(a).all().item<bool>());
  EXPECT_TRUE(at::isfinite(b).all().item<bool>());
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-3);
  EXPECT_GT((a - c).abs().max().item<double>(), 1e-3);
  // The front end does not depend on the input dtype.
  EXPECT_TRUE(close(pred_tensor(predict(m, clean.to(at::kDouble), 16000)), a, 1e-6, 0));
}

// A model with ms_sr resamples its input: 16 kHz audio and the same tone rendered at 48 kHz agree.
TEST(Nisqa, FixedRateModelResamplesItsInput) {
  NisqaConfig c = tiny("NISQA");
  c.ms_sr = 48000;
  c.ms_n_fft = 2048;
  Nisqa m = random_model(c, 13);
  auto tone = [](int64_t sr) {
    const Tensor t = at::arange(sr, at::kDouble) / static_cast<double>(sr);
    return (0.3 * at::sin(2 * kPi * 440.0 * t) + 0.1 * at::sin(2 * kPi * 2500.0 * t)).to(at::kFloat);
  };
  const Tensor s16 = m->melspec(tone(16000), 16000);
  const Tensor s48 = m->melspec(tone(48000), 48000);
  ASSERT_EQ(s16.sizes(), s48.sizes());
  // Bands below 7 kHz (the 16 kHz file's pass band), frames away from the edges.
  const Tensor fb = slaney_mel_filterbank(48000, 2048, c.ms_n_mels, 0, c.ms_fmax);
  const int64_t bin_7k = 7000 * 2048 / 48000;
  int64_t bands = 0;
  while (bands < c.ms_n_mels && fb[bands].narrow(0, bin_7k, fb.size(1) - bin_7k).max().item<double>() == 0)
    ++bands;
  ASSERT_GT(bands, 10);
  EXPECT_TRUE(close(s16.narrow(0, 0, bands).narrow(1, 5, s16.size(1) - 10),
                    s48.narrow(0, 0, bands).narrow(1, 5, s48.size(1) - 10), 0.05, 0));
}

TEST(Nisqa, ErrorsNameTheProblem) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  Nisqa m = random_model(tiny("NISQA"), 14);
  // Missing file.
  const std::string missing = dir + "/nope.tar";
  const std::string e1 = error_of([&] { load_nisqa(missing); });
  EXPECT_NE(e1.find(missing), std::string::npos) << e1;
  EXPECT_NE(e1.find("not found"), std::string::npos) << e1;
  // Wrong keys: one renamed tensor is both missing and unexpected.
  auto sd = module_state_dict(*m);
  sd["pool.model.linear9.weight"] = sd.at("pool.model.linear3.weight");
  sd.erase("pool.model.linear3.weight");
  NisqaCheckpoint ck;
  ck.args = m->config().to_args();
  for (auto& [k, t] : sd) ck.state_dict[k] = t.detach();
  write_nisqa_safetensors(dir + "/renamed.safetensors", ck);
  const std::string e2 = error_of([&] { load_nisqa(dir + "/renamed.safetensors"); });
  EXPECT_NE(e2.find("pool.model.linear3.weight"), std::string::npos) << e2;
  EXPECT_NE(e2.find("pool.model.linear9.weight"), std::string::npos) << e2;
  // Args of the other variant: the weights do not fit.
  ck.args = tiny("NISQA_DIM").to_args();
  write_nisqa_safetensors(dir + "/mismatch.safetensors", ck);
  EXPECT_NE(
      error_of([&] { load_nisqa(dir + "/mismatch.safetensors"); }).find("do not fit the NISQA_DIM model"),
      std::string::npos);
  // A pre-1.6 torch.save file.
  {
    std::ofstream f(dir + "/legacy.tar", std::ios::binary);
    f << "\x80\x02\x8a\x0alegacy";
  }
  EXPECT_NE(error_of([&] { load_nisqa(dir + "/legacy.tar"); }).find("legacy (pre-1.6"), std::string::npos);
  // Too short: one 15-frame segment at hop 160 needs 14 * 160 = 2240 samples (0.14 s).
  const std::string e3 = error_of([&] { predict(m, at::zeros({2239}), 16000); });
  EXPECT_NE(e3.find("too short"), std::string::npos) << e3;
  EXPECT_NE(e3.find("0.1400 s"), std::string::npos) << e3;
  EXPECT_NO_THROW(predict(m, 0.1 * at::randn({2240}), 16000));
  // Too long for ms_max_segments; raising the limit lets it through.
  m->set_max_segments(10);
  const Tensor long_clip = voiced(0.5, 16000, 150, 15);  // 51 frames -> 37 windows -> 10 segments
  EXPECT_NO_THROW(predict(m, long_clip, 16000));
  const std::string e4 = error_of([&] { predict(m, voiced(0.6, 16000, 150, 15), 16000); });
  EXPECT_NE(e4.find("more than ms_max_segments 10"), std::string::npos) << e4;
  EXPECT_NE(error_of([&] {
              predict_batch(m, {long_clip, voiced(0.6, 16000, 150, 15)}, 16000);
            }).find("batch item 1"),
            std::string::npos);
  m->set_max_segments(1300);
  // Bad waves and rates.
  EXPECT_NE(error_of([&] { predict(m, at::zeros({2, 4000}), 16000); }).find("1-D wave"), std::string::npos);
  EXPECT_NE(error_of([&] { predict(m, at::zeros({4000}, at::kLong), 16000); }).find("floating-point"),
            std::string::npos);
  EXPECT_NE(error_of([&] { predict(m, at::zeros({4000}), 0); }).find("sample_rate must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { predict(m, at::zeros({40000}), 160000); }).find("ms_n_fft"), std::string::npos);
  EXPECT_NE(error_of([&] {
              predict_batch(m, at::zeros({2, 4000}), at::tensor({4000, 4001}), 16000);
            }).find("outside"),
            std::string::npos);
  m->train();
  EXPECT_NE(error_of([&] { predict(m, at::zeros({4000}), 16000); }).find("training mode"), std::string::npos);
}

// ---- against the Python reference ---------------------------------------------------------------------

struct Refs {
  std::string dir;
  std::string skip_reason;
};

const Refs& refs() {
  static const Refs r = [] {
    Refs out;
    const std::string py = "/usr/bin/python3";
    if (!stdfs::exists(py)) {
      out.skip_reason = "no " + py + " (the reference needs numpy + torch)";
      return out;
    }
    out.dir = fs::make_temp_dir("mmref_nisqa_ref");
    const std::string err = out.dir + "/stderr.txt";
    const std::string cmd = py + " " + std::string(MMREF_SOURCE_DIR) + "/tests/models/nisqa_reference.py " +
                            out.dir + " 2>" + err;
    const int st = std::system(cmd.c_str());
    const int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (rc == 3) {
      out.skip_reason = "numpy/torch unavailable: " + fs::read_file(err);
    } else if (rc != 0) {
      ADD_FAILURE() << cmd << " failed (rc " << rc << "): " << fs::read_file(err);
      out.dir.clear();
    }
    return out;
  }();
  // The generated files go when the process ends.
  static const struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) stdfs::remove_all(dir, ec);
    }
  } cleanup{r.dir};
  return r;
}

#define REQUIRE_REFS()                                          \
  const Refs& R = refs();                                       \
  if (!R.skip_reason.empty()) GTEST_SKIP() << R.skip_reason;    \
  ASSERT_FALSE(R.dir.empty()) << "reference generation failed"; \
  const auto F = SafetensorsFile::open(R.dir + "/ref.safetensors")

const std::vector<std::string> kModels = {"tts", "dim", "alt"};

// The torch.save checkpoints load through load_nisqa with their args (tuples, None, a datetime, nested
// training state and optimizer tensors around them).
TEST(NisqaReference, TorchSaveCheckpointsLoadWithTheirArgs) {
  REQUIRE_REFS();
  Nisqa tts = load_nisqa(R.dir + "/nisqa_tts.tar");
  EXPECT_EQ(tts->config().model, "NISQA");
  EXPECT_FALSE(tts->config().ms_sr.has_value());
  EXPECT_EQ(tts->config().cnn_kernel_size, (std::array<int64_t, 2>{3, 3}));
  EXPECT_EQ(tts->config().td_2, "skip");
  Nisqa dim = load_nisqa(R.dir + "/nisqa_dim.tar");
  EXPECT_TRUE(dim->config().dim());
  EXPECT_EQ(dim->config().pool_att_h, std::optional<int64_t>(128));
  Nisqa alt = load_nisqa(R.dir + "/nisqa_alt.tar");
  const NisqaConfig& a = alt->config();
  EXPECT_EQ(a.cnn_kernel_size, (std::array<int64_t, 2>{3, 1}));
  EXPECT_EQ(a.cnn_fc_out_h, std::optional<int64_t>(40));
  EXPECT_TRUE(a.td_sa.pos_enc);
  EXPECT_EQ(a.td_2, "self_att");
  EXPECT_EQ(a.td_2_sa.nhead, 4);
  EXPECT_FALSE(a.pool_att_h.has_value());
  EXPECT_DOUBLE_EQ(a.ms_win_length, 0.025);
  // A truncated archive is an error naming the file.
  const std::string bytes = fs::read_file(R.dir + "/nisqa_tts.tar");
  const std::string cut = R.dir + "/truncated.tar";
  fs::atomic_write(cut, bytes.substr(0, bytes.size() / 2));
  const std::string e = error_of([&] { load_nisqa(cut); });
  EXPECT_NE(e.find(cut), std::string::npos) << e;
}

// Mel features against the numpy librosa re-derivation (both float64): dB-relative 1e-4.
TEST(NisqaReference, MelFeaturesMatchLibrosaDefinition) {
  REQUIRE_REFS();
  const int64_t n_waves = std::stoll(F.metadata().at("n_waves"));
  const int64_t sr = std::stoll(F.metadata().at("sample_rate"));
  for (const auto& key : kModels) {
    Nisqa m = load_nisqa(R.dir + "/nisqa_" + key + ".tar");
    for (int64_t i = 0; i < n_waves; ++i) {
      SCOPED_TRACE(key + " wave " + std::to_string(i));
      const Tensor wave = F.get("input.wave." + std::to_string(i));
      const Tensor ref = F.get("output." + key + ".mel." + std::to_string(i));
      EXPECT_TRUE(close(m->melspec(wave, sr), ref, 1e-6, 1e-4));
    }
  }
}

// Predictions, one clip per forward and as one padded batch, against the reference network.
TEST(NisqaReference, PredictionsMatchReferenceNetwork) {
  REQUIRE_REFS();
  const int64_t n_waves = std::stoll(F.metadata().at("n_waves"));
  const int64_t sr = std::stoll(F.metadata().at("sample_rate"));
  for (const auto& key : kModels) {
    Nisqa m = load_nisqa(R.dir + "/nisqa_" + key + ".tar");
    std::vector<Tensor> waves;
    for (int64_t i = 0; i < n_waves; ++i) {
      SCOPED_TRACE(key + " wave " + std::to_string(i));
      waves.push_back(F.get("input.wave." + std::to_string(i)));
      const Tensor ref = F.get("output." + key + ".pred." + std::to_string(i));
      EXPECT_TRUE(close(pred_tensor(predict(m, waves.back(), sr)), ref, 1e-4, 1e-4));
    }
    SCOPED_TRACE(key + " batch");
    const auto batch = predict_batch(m, waves, sr);
    const Tensor ref = F.get("output." + key + ".batch");
    for (int64_t i = 0; i < n_waves; ++i)
      EXPECT_TRUE(close(pred_tensor(batch[static_cast<size_t>(i)]), ref[i], 1e-4, 1e-4));
    // The reference attention backend gives the same numbers.
    m->attention_backend = kernels::AttentionBackend::kReference;
    EXPECT_TRUE(close(pred_tensor(predict(m, waves[0], sr)), F.get("output." + key + ".pred.0"), 1e-4, 1e-4));
  }
}

// The resampler against torchaudio's sinc_interp_kaiser with resampy's kaiser_best parameters.
TEST(NisqaReference, ResamplerMatchesTorchaudioKaiser) {
  REQUIRE_REFS();
  if (F.metadata().at("torchaudio") != "1") GTEST_SKIP() << "torchaudio unavailable when the reference ran";
  int checked = 0;
  for (const auto& info : F.tensors()) {
    if (info.name.rfind("output.resample.", 0) != 0) continue;
    const std::string pair = info.name.substr(16);  // "<from>_<to>"
    const int64_t from = std::stoll(pair.substr(0, pair.find('_')));
    const int64_t to = std::stoll(pair.substr(pair.find('_') + 1));
    SCOPED_TRACE(pair);
    const Tensor x = F.get("input.resample." + std::to_string(from));
    EXPECT_TRUE(close(resample_kaiser_best(x, from, to), F.get(info.name), 1e-6, 0));
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace mmref::models
