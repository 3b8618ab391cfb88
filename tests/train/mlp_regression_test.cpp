// The default experiment's task: training lowers the loss, the LR schedule follows its formula, and a
// run stopped and resumed from its checkpoint ends with bitwise the same weights as one run straight.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "train/mlp_regression.h"
#include "task_runner.h"

namespace {

using mmref::train::warmup_cosine_lr;

TEST(WarmupCosine, HandComputed) {
  // | step | warmup 10, total 110, base 1.0          |
  // |  0   | 1/10 = 0.1                              |
  // |  9   | 10/10 = 1.0                             |
  // | 10   | cos phase 0 -> 1.0                      |
  // | 60   | phase 50/100 -> 0.5 (1 + cos(pi/2)) = .5|
  // | 110  | phase 1 -> 0                            |
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(1.0, 0, 10, 110), 0.1);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(1.0, 9, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(1.0, 10, 10, 110), 1.0);
  EXPECT_NEAR(warmup_cosine_lr(1.0, 60, 10, 110), 0.5, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(1.0, 110, 10, 110), 0.0, 1e-12);
}

class MlpTask : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = mmref::fs::make_temp_dir("mmref_train_"); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // Runs the task from a YAML text; returns the summary. `resume` = checkpoint to continue from.
  nlohmann::json train(const std::string& yaml, const std::vector<std::string>& overrides,
                       std::string* run_dir, const std::string& resume = "") {
    const std::string p = dir_ + "/exp.yaml";
    std::ofstream(p) << yaml;
    mmref::train::MlpRegressionTask task;
    return mmref::test::run_task(task, p, overrides, run_dir, resume, /*reopen=*/false);
  }

  std::string yaml() const {
    return "name: t\ntask: mlp_regression\nruntime: {threads: 1, deterministic: true, seed: 5}\n"
           "run: {root: '" + dir_ + "/runs'}\n"
           "data: {path: '" + dir_ + "/reg.safetensors', train_samples: 1024, val_samples: 256}\n"
           "model: {hidden: 32, layers: 3}\n"
           "train: {steps: 300, batch_size: 64, lr: 0.01, warmup_steps: 20, log_every: 50, "
           "eval_every: 100, checkpoint_every: 100}\n";
  }

  std::string dir_;
};

TEST_F(MlpTask, TrainingExplainsMostOfTheVariance) {
  std::string run;
  auto s = train(yaml(), {}, &run);
  EXPECT_EQ(s["steps_run"], 300);
  // Predicting the mean gives R^2 = 0; the fit must explain most of the variance.
  EXPECT_GT(s["val_r2"].get<double>(), 0.7) << s.dump();
  EXPECT_TRUE(mmref::fs::exists(run + "/checkpoints/ckpt-00000300.safetensors"));
}

TEST_F(MlpTask, StopAndResumeMatchesStraightRunBitwise) {
  // Run 300 steps straight (checkpoints at 100, 200, 300); then, in a new run folder, continue from the
  // step-100 checkpoint to 300. Model and optimizer state, RNG and data position all come from the
  // checkpoint, so the final weights must be bitwise equal (CPU, deterministic mode).
  std::string straight_dir, cont_dir;
  train(yaml(), {}, &straight_dir);
  const std::string ck100 = straight_dir + "/checkpoints/ckpt-00000100.safetensors";
  ASSERT_TRUE(mmref::fs::exists(ck100));
  auto s = train(yaml(), {}, &cont_dir, ck100);
  EXPECT_EQ(s["steps_run"], 200);
  ASSERT_NE(straight_dir, cont_dir);
  auto a = mmref::load_checkpoint(straight_dir + "/checkpoints/ckpt-00000300.safetensors");
  auto b = mmref::load_checkpoint(cont_dir + "/checkpoints/ckpt-00000300.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(a.meta["lr_schedule"]["kind"], "cosine");
  EXPECT_EQ(a.meta["lr_schedule"]["total_steps"], 300);
  EXPECT_EQ(b.meta["data_position"], 300);
  EXPECT_TRUE(b.tensors.count("rng.cpu"));
  EXPECT_TRUE(b.tensors.count("optimizer.adamw"));
  int compared = 0;
  for (const auto& [k, t] : a.tensors) {
    // Optimizer archives key their state by tensor address, so only the weights compare as bytes.
    if (k.rfind("model.", 0) != 0) continue;
    EXPECT_TRUE(torch::equal(t, b.tensors.at(k))) << k;
    ++compared;
  }
  EXPECT_EQ(compared, 6);  // 3 weights + 3 biases
}

TEST_F(MlpTask, ResumeIsBitwiseWithSgdNoamAndEma) {
  // The same stop/resume check with the other engine pieces on: SGD with momentum, the Noam schedule and
  // an EMA of the weights (checkpointed as ema.*); the EMA weights must match bitwise too.
  const std::vector<std::string> o = {"train.optimizer=sgd", "train.schedule=noam", "train.ema_decay=0.99",
                                      "train.lr=0.05"};
  std::string straight_dir, cont_dir;
  auto s1 = train(yaml(), o, &straight_dir);
  EXPECT_TRUE(s1.contains("val_mse_ema")) << s1.dump();
  EXPECT_EQ(s1["optimizer"], "sgd");
  train(yaml(), o, &cont_dir, straight_dir + "/checkpoints/ckpt-00000100.safetensors");
  auto a = mmref::load_checkpoint(straight_dir + "/checkpoints/ckpt-00000300.safetensors");
  auto b = mmref::load_checkpoint(cont_dir + "/checkpoints/ckpt-00000300.safetensors");
  EXPECT_EQ(a.meta["lr_schedule"]["kind"], "noam");
  EXPECT_EQ(a.meta["ema"]["updates"], 300);
  EXPECT_EQ(b.meta["ema"]["updates"], 300);
  EXPECT_TRUE(b.tensors.count("optimizer.sgd"));
  int compared = 0;
  for (const auto& [k, t] : a.tensors) {
    if (k.rfind("model.", 0) != 0 && k.rfind("ema.", 0) != 0) continue;
    EXPECT_TRUE(torch::equal(t, b.tensors.at(k))) << k;
    ++compared;
  }
  EXPECT_EQ(compared, 12);  // 6 weights and biases, and their EMA
}

TEST_F(MlpTask, NonFiniteStepsStopOrAreSkipped) {
  // lr 1e30 blows the weights up within a few steps: by default the run stops with a message naming the
  // step; with on_nonfinite: skip it finishes and counts the skipped steps.
  const std::vector<std::string> o = {"train.lr=1e30", "train.warmup_steps=0", "train.steps=30", "train.grad_clip=0"};
  std::string run;
  try {
    train(yaml(), o, &run);
    ADD_FAILURE() << "no error for a diverging run";
  } catch (const mmref::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("step "), std::string::npos) << m;
    EXPECT_TRUE(m.find("loss is") != std::string::npos || m.find("gradient norm is") != std::string::npos) << m;
    EXPECT_NE(m.find("on_nonfinite: skip"), std::string::npos) << m;
  }
  auto with_skip = o;
  with_skip.push_back("train.on_nonfinite=skip");
  auto s = train(yaml(), with_skip, &run);
  EXPECT_GT(s["skipped_steps"].get<int64_t>(), 0) << s.dump();
  EXPECT_EQ(s["steps_run"], 30);
}

TEST_F(MlpTask, GradientAccumulationAveragesMicroBatches) {
  std::string run;
  auto one = train(yaml(), {"train.steps=50"}, &run);
  auto two = train(yaml(), {"train.steps=50", "train.grad_accum_steps=2"}, &run);
  EXPECT_EQ(two["steps_run"], 50);
  EXPECT_NE(one["final_train_loss"], two["final_train_loss"]);  // two micro-batches per step
  EXPECT_GT(two["val_r2"].get<double>(), 0.3) << two.dump();
}

}  // namespace
