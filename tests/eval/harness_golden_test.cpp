// `mmref eval` end to end on small sets: FID/KID from the FID Inception golden weights, the CLIP score from
// the CLIP golden weights and vocabulary, WER/CER from transcript files and the speech proxies from
// espeak-ng recordings; results.json / results.md / per-sample CSVs; values cross-checked against the
// metric functions called directly; a failing metric is recorded while the others still run.
#include <gtest/gtest.h>

#include "../golden_test_util.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"
#include "eval/frechet.h"
#include "eval/harness.h"
#include "eval/image_set.h"
#include "eval/inception_features.h"
#include "eval/wer.h"
#include "models/inception/fid_inception.h"
#include "models/mos/nisqa.h"

namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// n images 64x64: smooth colour fields whose statistics depend on `kind`.
void make_images(const std::string& dir, int n, int kind) {
  mmref::fs::make_dirs(dir);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + kind);
  for (int i = 0; i < n; ++i) {
    at::Tensor low = at::rand({1, 3, 4, 4}, gen);
    if (kind == 1) low = low.pow(3);
    at::Tensor img = at::upsample_bilinear2d(low, {64, 64}, false).squeeze(0).clamp(0, 1);
    mmref::data::save_image(fmt::format("{}/img_{:03d}.png", dir, i), img);
  }
}

const mmref::eval::MetricResult* dummy = nullptr;

nlohmann::json find(const nlohmann::json& results, const std::string& name, const std::string& metric) {
  for (const auto& r : results) {
    if (r.value("name", "") == name && r.value("metric", "") == metric) return r;
  }
  return nullptr;
}

TEST(EvalHarnessGolden, AllMetricKindsWriteResultsAndMatchDirectCalls) {
  (void)dummy;
  MMREF_REQUIRE_GOLDEN(mmref::test::golden_path("fid_inception"));
  MMREF_REQUIRE_GOLDEN(mmref::test::golden_path("clip"));
  const std::string d = mmref::fs::make_temp_dir("mmref_eval_");
  make_images(d + "/real", 6, 0);
  make_images(d + "/fake", 5, 1);
  {
    std::ofstream caps(d + "/captions.txt");
    for (int i = 0; i < 5; ++i) caps << (i % 2 ? "a red square" : "a photo of a cat") << "\n";
  }
  std::ofstream(d + "/ref.txt") << "the cat sat on the mat\nhello world\nit is 21 degrees\n";
  std::ofstream(d + "/hyp.txt") << "the cat sat on mat\nhello word\nit is twenty one degrees\n";
  std::ofstream(d + "/hyp_short.txt") << "only one line\n";
  mmref::fs::make_dirs(d + "/wav_ref"), mmref::fs::make_dirs(d + "/wav_syn");
  ASSERT_EQ(std::system(("espeak-ng -w '" + d + "/wav_ref/a.wav' 'the quick brown fox' && espeak-ng -s 140 -w '" + d +
                         "/wav_syn/a.wav' 'the quick brown fox'").c_str()),
            0);
  {
    int sr = 0;
    const at::Tensor w = mmref::data::load_audio(d + "/wav_ref/a.wav", {}, &sr);
    mmref::fs::make_dirs(d + "/wav_noisy");
    auto g = at::make_generator<at::CPUGeneratorImpl>(5);
    mmref::data::save_audio(d + "/wav_noisy/a.wav", w + 0.01 * at::randn(w.sizes(), g), sr);
  }
  const std::string fid_w = mmref::test::golden_path("fid_inception/weights.safetensors");
  const std::string clip_w = mmref::test::golden_path("clip/weights.safetensors"), vocab = mmref::test::golden_path("clip/bpe_simple_vocab_16e6.txt.gz");
  std::ofstream(d + "/eval.yaml") << "eval: {out: '" << d << "/res', bootstrap: 200, batch_size: 4}\n"
                                  << "metrics:\n"
                                  << "  fid: {real: '" << d << "/real', fake: '" << d << "/fake', weights: '" << fid_w
                                  << "', save_real_stats: '" << d << "/real_stats.npz'}\n"
                                  << "  fid_from_stats: {metric: fid, real: '" << d << "/real_stats.npz', fake: '" << d
                                  << "/fake', weights: '" << fid_w << "'}\n"
                                  << "  kid: {real: '" << d << "/real', fake: '" << d << "/fake', weights: '" << fid_w
                                  << "', subsets: 10, subset_size: 4}\n"
                                  << "  clip_score: {images: '" << d << "/fake', captions: '" << d
                                  << "/captions.txt', weights: '" << clip_w << "', vocab: '" << vocab
                                  << "', text_heads: 2}\n"
                                  << "  wer: {references: '" << d << "/ref.txt', hypotheses: '" << d
                                  << "/hyp.txt', expand_numbers: true}\n"
                                  << "  cer: {references: '" << d << "/ref.txt', hypotheses: '" << d << "/hyp.txt'}\n"
                                  << "  wer_bad: {metric: wer, references: '" << d << "/ref.txt', hypotheses: '" << d
                                  << "/hyp_short.txt'}\n"
                                  << "  speech: {reference: '" << d << "/wav_ref', synthesized: '" << d
                                  << "/wav_syn', measures: [mcd, f0, lsd, stoi, si_sdr]}\n"
                                  << "  vocoder: {metric: speech, reference: '" << d << "/wav_ref', synthesized: '" << d
                                  << "/wav_noisy', measures: [si_sdr, stoi]}\n";
  const auto s = mmref::eval::run_eval(d + "/eval.yaml", {});
  EXPECT_EQ(s.failed, 1);
  const auto doc = nlohmann::json::parse(slurp(d + "/res/results.json"));
  const auto& res = doc.at("results");

  // FID equals the metric functions called directly on the same features; the .npz route agrees.
  mmref::models::FidInceptionV3 net;
  net->load(fid_w);
  mmref::eval::InceptionRunOptions io;
  io.weights_sha256 = mmref::eval::sha256_file(fid_w);
  const auto fr = mmref::eval::extract_inception(mmref::eval::ImageSet::open(d + "/real"), net, io);
  const auto ff = mmref::eval::extract_inception(mmref::eval::ImageSet::open(d + "/fake"), net, io);
  const double want = mmref::eval::frechet_distance(mmref::eval::compute_feature_stats(fr.pool3),
                                                    mmref::eval::compute_feature_stats(ff.pool3))
                          .value;
  const auto fid = find(res, "fid", "fid");
  ASSERT_FALSE(fid.is_null()) << res.dump(1);
  EXPECT_NEAR(fid.at("value").get<double>(), want, 1e-6 * want);
  EXPECT_GT(want, 0);
  EXPECT_EQ(fid.at("n"), 5);
  EXPECT_EQ(fid.at("settings").at("weights_sha256"), io.weights_sha256);
  EXPECT_NEAR(find(res, "fid_from_stats", "fid").at("value").get<double>(), want, 1e-6 * want);
  EXPECT_GT(find(res, "fid_from_stats", "fid").at("settings").at("fake_cache_hits").get<int64_t>(), 0);  // cache
  const auto kid = find(res, "kid", "kid");
  EXPECT_TRUE(kid.contains("std")) << kid.dump();
  // CLIP score in [0, 100] with a CI; WER: 1 deletion + 1 substitution over 12 words (21 -> twenty one).
  const auto clip = find(res, "clip_score", "clip_score");
  EXPECT_GE(clip.at("value").get<double>(), 0);
  EXPECT_LE(clip.at("value").get<double>(), 100);
  EXPECT_TRUE(clip.contains("ci95"));
  const auto wer = find(res, "wer", "wer");
  EXPECT_NEAR(wer.at("value").get<double>(), 2.0 / 13.0, 1e-12) << wer.dump();
  EXPECT_EQ(wer.at("deletions"), 1);
  EXPECT_LE(wer.at("ci95")[0].get<double>(), wer.at("value").get<double>());
  EXPECT_TRUE(find(res, "cer", "cer").is_object());
  const auto bad = find(res, "wer_bad", "wer");
  EXPECT_NE(bad.value("error", "").find("pair one to one"), std::string::npos) << bad.dump();
  for (const char* m : {"mcd", "f0_rmse_hz", "vde", "lsd", "stoi", "si_sdr"}) EXPECT_TRUE(find(res, "speech", m).is_object()) << m;
  // SI-SDR cannot score the pair of different lengths: counted, not fatal.
  EXPECT_EQ(find(res, "speech", "si_sdr").at("settings").at("files_not_scored"), 1);
  const double sisdr = find(res, "vocoder", "si_sdr").at("value").get<double>();
  EXPECT_GT(sisdr, 10);  // 1% noise on speech
  EXPECT_GT(find(res, "vocoder", "stoi").at("value").get<double>(), 0.9);
  EXPECT_GT(find(res, "speech", "mcd").at("value").get<double>(), 0);  // a slower rendering differs
  // The other files.
  const std::string md = slurp(d + "/res/results.md");
  EXPECT_NE(md.find("| fid | fid |"), std::string::npos) << md;
  EXPECT_NE(md.find("failed"), std::string::npos) << md;
  const std::string csv = slurp(d + "/res/per_sample/wer.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "id,reference,hypothesis,wer,hits,substitutions,deletions,insertions");
  EXPECT_TRUE(mmref::fs::exists(d + "/res/per_sample/wer.alignment.txt"));
  EXPECT_TRUE(mmref::fs::exists(d + "/real_stats.npz"));
  std::system(("rm -rf '" + d + "'").c_str());
}

TEST(EvalHarness, UnknownMetricAndBadKeysAreConfigErrors) {
  const std::string d = mmref::fs::make_temp_dir("mmref_eval_cfg_");
  std::ofstream(d + "/a.yaml") << "metrics:\n  fid: {real: a, fake: b, weights: w, rezise: legacy}\n";
  EXPECT_THROW(mmref::eval::run_eval(d + "/a.yaml", {}), mmref::ConfigError);
  std::ofstream(d + "/b.yaml") << "metrics: {}\n";
  EXPECT_THROW(mmref::eval::run_eval(d + "/b.yaml", {}), mmref::ConfigError);
  std::ofstream(d + "/c.yaml") << "metrics:\n  speech: {reference: a, synthesized: b, measures: [mcdd]}\n";
  try {
    mmref::eval::run_eval(d + "/c.yaml", {});
    ADD_FAILURE() << "unknown measure accepted";
  } catch (const mmref::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'mcd'"), std::string::npos) << e.what();
  }
  // intelligibility: the recogniser checkpoint is required; a missing one fails that metric alone,
  // naming the key and the file (results.json keeps the others).
  std::ofstream(d + "/e.yaml") << "metrics:\n  tts: {metric: intelligibility, audio: " << d << "}\n";
  EXPECT_THROW(mmref::eval::run_eval(d + "/e.yaml", {}), mmref::ConfigError);
  std::ofstream(d + "/x.wav") << "x";
  std::ofstream(d + "/f.yaml") << "eval: {out: " << d << "/res}\nmetrics:\n  tts: {metric: intelligibility, audio: "
                               << d << ", texts: " << d << "/t.txt, checkpoint: " << d << "/none.safetensors}\n";
  std::ofstream(d + "/t.txt") << "hello\n";
  const auto s = mmref::eval::run_eval(d + "/f.yaml", {});
  ASSERT_EQ(s.failed, 1);
  const std::string err = s.results.at(0).at("error");
  EXPECT_NE(err.find("tts.checkpoint"), std::string::npos) << err;
  EXPECT_NE(err.find("none.safetensors"), std::string::npos) << err;
  std::system(("rm -rf '" + d + "'").c_str());
}

// metric: mos runs NISQA (weights from a file: here a seeded NISQA_DIM model saved as safetensors, no
// released weights exist on this machine) over a folder, and reports the per-file means of what
// models::predict returns, for all five outputs, with a per-file CSV; an unreadable file fails the metric
// naming it.
TEST(EvalHarness, MosMetricIsTheMeanOfNisqaPredictions) {
  const std::string d = mmref::fs::make_temp_dir("mmref_eval_mos_");
  at::manual_seed(3);
  mmref::models::NisqaConfig c;
  c.model = "NISQA_DIM";
  mmref::models::Nisqa net(c);
  net->eval();
  mmref::models::save_nisqa_safetensors(net, d + "/nisqa.safetensors");
  mmref::fs::make_dirs(d + "/tts");
  const int sr = 16000;
  std::vector<at::Tensor> waves;
  for (int i = 0; i < 3; ++i) {
    const at::Tensor t = at::arange(2 * sr, at::kFloat).div(sr);
    at::Tensor w = (t * (2 * M_PI * (220.0 * (i + 1)))).sin().mul(0.3) + at::randn({2 * sr}).mul(0.02 * (i + 1));
    mmref::data::save_audio(d + "/tts/utt" + std::to_string(i) + ".wav", w.unsqueeze(0), sr);
    int got = 0;
    waves.push_back(mmref::data::load_audio(d + "/tts/utt" + std::to_string(i) + ".wav", {}, &got).select(0, 0));
  }
  std::ofstream(d + "/e.yaml") << "eval: {out: " << d << "/res, bootstrap: 100}\nmetrics:\n  q: {metric: mos, audio: "
                               << d << "/tts, weights: " << d << "/nisqa.safetensors}\n";
  const auto s = mmref::eval::run_eval(d + "/e.yaml", {});
  ASSERT_EQ(s.failed, 0) << s.results.dump();
  ASSERT_EQ(s.results.size(), 5u) << s.results.dump();
  const auto loaded = mmref::models::load_nisqa(d + "/nisqa.safetensors");
  double mos = 0, loud = 0;
  for (const auto& w : waves) {
    const auto p = mmref::models::predict(const_cast<mmref::models::Nisqa&>(loaded), w, sr);
    mos += p.mos / 3, loud += *p.loud / 3;
  }
  EXPECT_EQ(s.results[0].at("metric"), "mos_nisqa");
  EXPECT_NEAR(s.results[0].at("value").get<double>(), mos, 1e-9);
  EXPECT_EQ(s.results[4].at("metric"), "nisqa_loud");
  EXPECT_NEAR(s.results[4].at("value").get<double>(), loud, 1e-9);
  EXPECT_EQ(s.results[0].at("n"), 3);
  const std::string csv = slurp(d + "/res/per_sample/q.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "path,mos,noi,dis,col,loud");
  std::ofstream(d + "/tts/broken.wav") << "not audio";
  const auto b = mmref::eval::run_eval(d + "/e.yaml", {});
  ASSERT_EQ(b.failed, 1);
  EXPECT_NE(b.results.at(0).at("error").get<std::string>().find("broken.wav"), std::string::npos) << b.results.dump();
  std::system(("rm -rf '" + d + "'").c_str());
}

}  // namespace
