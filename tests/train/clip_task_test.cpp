// Task clip_contrastive on a small shapes corpus, then the harness's clip_score (and clip_fid) with its
// export: a short run retrieves the right caption well above chance, scores matching captions above
// shuffled ones, and its clip.safetensors loads like an OpenAI checkpoint. Reads CLIP's BPE vocabulary
// from the golden fixtures (MMREF_GOLDEN_DIR).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/state_dict.h"
#include "data/dataset/manifest.h"
#include "data/generators/corpus.h"
#include "data/media/image_io.h"
#include "eval/harness.h"
#include "../golden_test_util.h"
#include "models/clip/clip_model.h"
#include "train/clip_task.h"
#include "task_runner.h"

namespace {

class ClipTaskGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(mmref::fs::make_temp_dir("mmref_clip_"));
    mmref::data::CorpusOptions co;
    co.out = *dir_ + "/images", co.count = 1200, co.quiet = true;
    mmref::data::make_corpus("images", co);
  }
  static void TearDownTestSuite() {
    std::system(("rm -rf '" + *dir_ + "'").c_str());
    delete dir_;
  }
  void SetUp() override {
    if (!mmref::fs::exists(vocab())) GTEST_SKIP() << "no CLIP vocabulary at " << vocab() << " (set MMREF_GOLDEN_DIR)";
  }
  static std::string vocab() { return mmref::test::golden_path("clip/bpe_simple_vocab_16e6.txt.gz"); }

  static nlohmann::json train(const std::vector<std::string>& overrides, std::string* run_dir) {
    const std::string p = *dir_ + "/c.yaml";
    std::ofstream(p) << "name: clip\ntask: clip_contrastive\nruntime: {threads: 2, seed: 5}\n"
                     << "run: {root: '" << *dir_ << "/runs'}\n"
                     << "data: {dir: '" << *dir_ << "/images', size: 32, make_if_missing: false, vocab: '" << vocab()
                     << "'}\n"
                     << "model: {embed_dim: 64, vision_width: 64, vision_layers: 1, patch_size: 8, text_width: 64, "
                        "text_layers: 1, context_length: 20}\n"
                     << "train: {steps: 150, batch_size: 64, lr: 2.0e-3, weight_decay: 0.0, warmup_steps: 10, "
                        "log_every: 50, eval_every: 150, checkpoint_every: 150}\n";
    mmref::train::ClipTask task;
    return mmref::test::run_task(task, p, overrides, run_dir);
  }

  // The first n images of a split as PNGs in `out`, with captions.jsonl (shifted by `offset` captions).
  static void write_set(const std::string& out, const std::string& split, int n, int offset) {
    mmref::fs::make_dirs(out);
    const auto entries = mmref::data::read_manifest(*dir_ + "/images/32/" + split + ".jsonl");
    std::string jl;
    for (int i = 0; i < n; ++i) {
      const std::string f = out + "/" + std::to_string(1000 + i) + ".png";
      mmref::data::save_image(f, mmref::data::load_image(entries.at(static_cast<size_t>(i)).path));
      const std::string text = entries.at(static_cast<size_t>((i + offset) % n)).text;
      jl += nlohmann::json{{"path", f}, {"text", text}}.dump() + "\n";
    }
    std::ofstream(out + "/captions.jsonl") << jl;
  }

  static std::string* dir_;
};
std::string* ClipTaskGolden::dir_ = nullptr;

TEST_F(ClipTaskGolden, TrainsExportsAndScores) {
  std::string run;
  const auto s = train({}, &run);
  const auto& t = s.at("test");
  const double chance = 1.0 / t.at("distinct_captions").get<double>();
  EXPECT_GT(t.at("i2t_top1").get<double>(), 4 * chance) << s.dump();
  EXPECT_GT(t.at("clip_score").get<double>(), t.at("clip_score_shuffled").get<double>() + 5) << s.dump();
  EXPECT_LT(t.at("loss").get<double>(), std::log(64.0) - 0.5) << s.dump();  // random: log(batch)
  EXPECT_TRUE(s.contains("heldout")) << s.dump();

  // The export is OpenAI's layout only: it loads strictly into a model whose sizes come from its shapes.
  const std::string ex = run + "/clip.safetensors";
  ASSERT_EQ(s.at("export").get<std::string>(), ex);
  const auto sd = mmref::load_weights(ex);
  EXPECT_TRUE(sd.count("visual.conv1.weight") && sd.count("text_projection") && sd.count("logit_scale"));
  const auto cfg = mmref::models::ClipConfig::infer(sd);
  EXPECT_EQ(cfg.image_resolution, 32);
  EXPECT_EQ(cfg.context_length, 20);
  EXPECT_EQ(cfg.vision_patch_size, 8);
  mmref::models::ClipModel m(cfg);
  EXPECT_NO_THROW(m->load(sd));

  // Through the harness: matching captions score above shifted ones; clip_fid of a set against itself
  // is ~0 and below its distance to the held-out split.
  write_set(*dir_ + "/right", "test", 100, 0);
  write_set(*dir_ + "/wrong", "test", 100, 37);
  write_set(*dir_ + "/other", "heldout", 100, 0);
  const std::string ev = *dir_ + "/eval.yaml";
  auto metric = [&](const std::string& name, const std::string& images, const std::string& real) {
    return "  " + name + ": {metric: clip_score, images: '" + images + "', captions: '" + images +
           "/captions.jsonl', weights: '" + ex + "', vocab: '" + vocab() + "', real: '" + real + "', bootstrap: 50}\n";
  };
  std::ofstream(ev) << "eval: {out: '" << *dir_ << "/eval', bootstrap: 100}\nmetrics:\n"
                    << metric("right", *dir_ + "/right", *dir_ + "/right")
                    << metric("wrong", *dir_ + "/wrong", *dir_ + "/other");
  const auto es = mmref::eval::run_eval(ev, {});
  ASSERT_EQ(es.failed, 0) << es.results.dump();
  std::map<std::string, double> got;
  for (const auto& r : es.results) got[r.at("name").get<std::string>() + "/" + r.at("metric").get<std::string>()] = r.at("value");
  EXPECT_GT(got.at("right/clip_score"), got.at("wrong/clip_score") + 5) << es.results.dump();
  EXPECT_NEAR(got.at("right/clip_fid"), 0.0, 1e-3) << es.results.dump();
  EXPECT_GT(got.at("wrong/clip_fid"), 0.01) << es.results.dump();  // the same test images against held-out ones
}

TEST_F(ClipTaskGolden, MissingVocabNamesIt) {
  std::string run;
  try {
    train({"data.vocab=" + *dir_ + "/none.txt.gz", "train.steps=1"}, &run);
    FAIL() << "expected an error";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find("none.txt.gz"), std::string::npos) << e.what();
  }
}

TEST(ClipInit, FollowsOpenAiStds) {
  mmref::models::ClipConfig c;
  c.embed_dim = 64, c.image_resolution = 32, c.vision_layers = 2, c.vision_width = 128, c.vision_patch_size = 4;
  c.context_length = 20, c.vocab_size = 5000, c.transformer_width = 256, c.transformer_heads = 4, c.transformer_layers = 2;
  mmref::models::ClipModel m(c);
  m->initialize_parameters();
  auto p = m->named_parameters();
  EXPECT_NEAR(p["token_embedding.weight"].std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(p["positional_embedding"].std().item<double>(), 0.01, 0.001);
  EXPECT_NEAR(p["visual.proj"].std().item<double>(), std::pow(128.0, -0.5), 0.01);
  EXPECT_NEAR(p["transformer.resblocks.0.attn.in_proj_weight"].std().item<double>(), std::pow(256.0, -0.5), 0.003);
  EXPECT_NEAR(p["transformer.resblocks.1.mlp.c_proj.weight"].std().item<double>(), std::pow(256.0, -0.5) * 0.5, 0.003);
  EXPECT_NEAR(p["transformer.resblocks.0.mlp.c_fc.weight"].std().item<double>(), std::pow(512.0, -0.5), 0.003);
  EXPECT_NEAR(p["text_projection"].std().item<double>(), std::pow(256.0, -0.5), 0.005);
  EXPECT_EQ(p["visual.transformer.resblocks.0.attn.in_proj_bias"].abs().max().item<double>(), 0.0);
  EXPECT_EQ(p["transformer.resblocks.1.attn.out_proj.bias"].abs().max().item<double>(), 0.0);
  EXPECT_NEAR(p["logit_scale"].item<double>(), std::log(1 / 0.07), 1e-6);
}

}  // namespace
