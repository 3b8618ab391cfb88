// Task digit_classifier on opencv-doc's digits, then the harness's `digits` metric with its checkpoint:
// a short run classifies the held-out digits well above chance; real digits scored as "generated" with
// their true labels reach the classifier's own test accuracy and sit far closer (digits_fid) to the real
// set than noise images do; wrong labels drive digits_accuracy down.
#include <gtest/gtest.h>

#include <fstream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "data/dataset/manifest.h"
#include "data/generators/corpus.h"
#include "data/media/image_io.h"
#include "eval/harness.h"
#include "train/digit_classifier_task.h"
#include "task_runner.h"

namespace {

class DigitClassifierSlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(mmref::fs::make_temp_dir("mmref_digits_"));
    mmref::data::CorpusOptions co;
    co.out = *dir_ + "/digits", co.quiet = true;
    mmref::data::make_corpus("digits", co);
  }
  static void TearDownTestSuite() {
    std::system(("rm -rf '" + *dir_ + "'").c_str());
    delete dir_;
  }

  static nlohmann::json train(const std::vector<std::string>& overrides, std::string* run_dir) {
    const std::string p = *dir_ + "/c.yaml";
    std::ofstream(p) << "name: cls\ntask: digit_classifier\nruntime: {threads: 2, seed: 3}\n"
                     << "run: {root: '" << *dir_ << "/runs'}\n"
                     << "data: {dir: '" << *dir_ << "/digits', size: 32, make_if_missing: false}\n"
                     << "train: {steps: 200, batch_size: 32, lr: 1.0e-3, weight_decay: 0, warmup_steps: 20, "
                        "grad_clip: 0, log_every: 50, eval_every: 200, checkpoint_every: 200}\n";
    mmref::train::DigitClassifierTask task;
    return mmref::test::run_task(task, p, overrides, run_dir);
  }

  // n test digits as PNGs in `out` with captions.jsonl naming the digit (+ `offset` mod 10).
  static void write_set(const std::string& out, int n, int offset) {
    mmref::fs::make_dirs(out);
    std::string jl;
    int i = 0;
    for (const auto& e : mmref::data::read_manifest(*dir_ + "/digits/test.jsonl")) {
      if (i == n) break;
      const std::string f = out + "/" + std::to_string(1000 + i++) + ".png";
      mmref::data::save_image(f, mmref::data::load_image(e.path));
      const int label = (e.extra.at("label").get<int>() + offset) % 10;
      jl += nlohmann::json{{"path", f}, {"text", std::to_string(label)}}.dump() + "\n";
    }
    std::ofstream(out + "/captions.jsonl") << jl;
  }

  static std::string* dir_;
};
std::string* DigitClassifierSlow::dir_ = nullptr;

TEST_F(DigitClassifierSlow, TrainsAndScoresDigitsSets) {
  std::string run;
  const auto s = train({}, &run);
  EXPECT_GT(s.at("test_accuracy").get<double>(), 0.85) << s.dump();
  EXPECT_EQ(s.at("n_test").get<int64_t>(), 500);
  const std::string ck = run + "/checkpoints/ckpt-00000200.safetensors";
  ASSERT_TRUE(mmref::fs::exists(ck));

  write_set(*dir_ + "/right", 200, 0);
  write_set(*dir_ + "/wrong", 200, 3);
  const std::string noise = *dir_ + "/noise";
  mmref::fs::make_dirs(noise);
  for (int i = 0; i < 200; ++i) mmref::data::save_image(noise + "/" + std::to_string(i) + ".png", at::rand({1, 32, 32}));

  const std::string ev = *dir_ + "/eval.yaml";
  auto metric = [&](const std::string& name, const std::string& fake) {
    return "  " + name + ": {metric: digits, real: '" + *dir_ + "/digits/test.jsonl', fake: '" + fake +
           "', classifier: '" + ck + "'}\n";
  };
  std::ofstream(ev) << "eval: {out: '" << *dir_ << "/eval', bootstrap: 100}\nmetrics:\n"
                    << metric("right", *dir_ + "/right") << metric("wrong", *dir_ + "/wrong")
                    << metric("noise", noise);
  const auto es = mmref::eval::run_eval(ev, {});
  ASSERT_EQ(es.failed, 0) << es.results.dump();
  std::map<std::string, double> got;
  for (const auto& m : es.results) got[m.at("name").get<std::string>() + "/" + m.at("metric").get<std::string>()] = m.at("value");
  // The classifier's accuracy on the manifest's 20 px test digits is close to the task's own test accuracy
  // (measured on the same digits resized to 32 px first, as the diffusion model sees them).
  EXPECT_NEAR(got.at("right/digits_real_accuracy"), s.at("test_accuracy").get<double>(), 0.05) << es.results.dump();
  EXPECT_GT(got.at("right/digits_accuracy"), 0.85);
  EXPECT_LT(got.at("wrong/digits_accuracy"), 0.15);
  EXPECT_FALSE(got.count("noise/digits_accuracy"));  // no captions.jsonl in the noise folder
  EXPECT_LT(got.at("right/digits_fid"), 0.2 * got.at("noise/digits_fid")) << es.results.dump();
  EXPECT_NEAR(got.at("right/digits_fid"), got.at("wrong/digits_fid"), 1e-9);  // labels do not enter FID
  EXPECT_TRUE(mmref::fs::exists(*dir_ + "/eval/per_sample/right.csv"));

  // A folder without captions and no labels file: FID only; a missing classifier names itself.
  std::ofstream(ev) << "eval: {out: '" << *dir_ << "/eval2'}\nmetrics:\n  d: {metric: digits, real: '" << *dir_
                    << "/digits/test.jsonl', fake: '" << noise << "', classifier: '" << *dir_ << "/none.safetensors'}\n";
  const auto bad = mmref::eval::run_eval(ev, {});
  ASSERT_EQ(bad.failed, 1);
  EXPECT_NE(bad.results.dump().find("none.safetensors"), std::string::npos) << bad.results.dump();
}

}  // namespace
