// The training engine's own pieces: the dynamic loss scaler's rule, the trainer driving a custom task
// (sample hooks writing images/audio/video into the run and TensorBoard, loss scaling skipping overflowed
// steps and resuming bitwise with the scaler's state, mixed precision refused on CPU), and the bucketed
// gradient all-reduce over a real two-rank Gloo group (two threads of this process on loopback).
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include <ATen/Functions.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "core/tensorboard.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"
#include "data/media/video_io.h"
#include "train/distributed.h"
#include "train/grad_scaler.h"
#include "train/samples.h"
#include "train/trainer.h"

namespace mmref::train {
namespace {

TEST(GradScaler, BacksOffOnOverflowGrowsAfterIntervalAndRoundTrips) {
  GradScalerConfig c;
  c.init_scale = 1024, c.growth_interval = 3;
  GradScaler s(c);
  at::Tensor p = at::ones({4}).requires_grad_(true);
  p.mutable_grad() = at::full({4}, 512.0);
  EXPECT_TRUE(s.unscale_({p}));
  EXPECT_TRUE(at::allclose(p.grad(), at::full({4}, 0.5)));
  p.mutable_grad() = at::tensor({1.0f, INFINITY, 0.0f, 2.0f});
  EXPECT_FALSE(s.unscale_({p}));
  s.update(true);
  EXPECT_DOUBLE_EQ(s.scale_value(), 512);
  EXPECT_EQ(s.skipped_steps(), 1);
  s.update(false), s.update(false);
  EXPECT_DOUBLE_EQ(s.scale_value(), 512);
  s.update(false);  // third good step in a row: grow
  EXPECT_DOUBLE_EQ(s.scale_value(), 1024);
  EXPECT_EQ(s.good_steps(), 0);
  s.update(false);
  GradScaler t(c);
  t.load_state(s.state());
  EXPECT_DOUBLE_EQ(t.scale_value(), 1024);
  EXPECT_EQ(t.good_steps(), 1);
  EXPECT_EQ(t.skipped_steps(), 1);
  EXPECT_THROW(t.load_state(nlohmann::json{{"scale", 2}}), Error);
  c.backoff_factor = 1.5;
  EXPECT_THROW(GradScaler{c}, ConfigError);
}

// y = w x + b fit to y = 3x - 1, with a sample hook that writes one of each kind.
class LineTask : public TrainTask {
 public:
  LineTask() : fc_(1, 1) {}
  std::string name() const override { return "line"; }
  torch::nn::Module& model() override { return *fc_; }
  TaskLoss loss(const MicroBatch& mb) override {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(mb.step) * 7 + 1);
    const at::Tensor x = at::rand({16, 1}, gen);
    ++calls;
    return {at::mse_loss(fc_->forward(x), 3 * x - 1), {{"mean_x", x.mean().item<double>()}}};
  }
  Metrics validate() override {
    const at::Tensor x = at::linspace(0, 1, 32).unsqueeze(1);
    return {{"mse", at::mse_loss(fc_->forward(x), 3 * x - 1).item<double>()}};
  }
  bool makes_samples() const override { return true; }
  void sample(SampleWriter& out) override {
    out.image("ramp", at::linspace(0, 1, 24).view({1, 1, 24}).expand({3, 10, 24}).contiguous());
    out.audio("tone", at::sin(at::arange(8000) * (2 * M_PI * 440 / 16000.0)) * 0.5, 16000);
    out.video("moving", at::rand({5, 3, 15, 17}), 10);  // odd sizes are padded for mp4
  }
  torch::nn::Linear fc_;
  int64_t calls = 0;
};

class TrainerRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::make_temp_dir("mmref_trainer_");
    std::ofstream(dir_ + "/e.yaml") << "name: e\ntask: line\nruntime: {threads: 1, deterministic: true}\n";
    root_ = std::make_unique<config::Reader>(load_experiment(dir_ + "/e.yaml", {}, cfg_));
    root_->finish();
    apply_runtime(cfg_.runtime);
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  TrainResult fit(TrainerConfig c, LineTask& task, const std::string& resume = "", std::string* run_dir = nullptr) {
    auto run = Run::create(dir_ + "/runs", "e", cfg_.effective, "warn");
    if (run_dir) *run_dir = run->dir();
    TaskContext ctx{cfg_, *run, 1, resume};
    Trainer t(c, ctx);
    return t.fit(task);
  }

  std::string dir_;
  ExperimentConfig cfg_;
  std::unique_ptr<config::Reader> root_;
};

TEST_F(TrainerRun, SampleHookWritesImageAudioVideoIntoRunAndTensorBoard) {
  TrainerConfig c;
  c.steps = 20, c.lr = 0.05, c.warmup_steps = 0, c.sample_every = 10, c.log_every = 5, c.eval_every = 10;
  LineTask task;
  const double before = task.validate().at(0).second;
  std::string run;
  const TrainResult r = fit(c, task, "", &run);
  EXPECT_EQ(task.calls, 20);
  for (const char* step : {"step_00000010", "step_00000020"}) {
    const std::string d = run + "/samples/" + step;
    const at::Tensor img = data::load_image(d + "/ramp.png");
    EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 10, 24}));
    EXPECT_LT(img[0][0][0].item<int>(), 5);
    EXPECT_GT(img[0][0][23].item<int>(), 250);
    int sr = 0;
    const at::Tensor wav = data::load_audio(d + "/tone.wav", {}, &sr);
    EXPECT_EQ(sr, 16000);
    EXPECT_EQ(wav.size(-1), 8000);
    EXPECT_NEAR(wav.abs().max().item<double>(), 0.5, 0.01);
    const at::Tensor vid = data::load_video(d + "/moving.mp4");
    EXPECT_EQ(vid.sizes(), (std::vector<int64_t>{5, 3, 16, 18}));
    EXPECT_TRUE(fs::exists(d + "/moving.frames.png"));
  }
  // TensorBoard: the three sample tags at both steps, next to the scalars.
  std::string events;
  for (const auto& e : std::filesystem::directory_iterator(run)) {
    if (e.path().filename().string().rfind("events.out.tfevents", 0) == 0) events = e.path().string();
  }
  ASSERT_FALSE(events.empty());
  int images = 0, audio = 0;
  for (const auto& rec : read_tfrecords(events)) {
    images += rec.find("samples/ramp") != std::string::npos || rec.find("samples/moving/frames") != std::string::npos;
    audio += rec.find("samples/tone") != std::string::npos && rec.find("audio/wav") != std::string::npos;
  }
  EXPECT_EQ(images, 4);
  EXPECT_EQ(audio, 2);
  // The task's extra training metric is logged with the engine's.
  std::ifstream m(run + "/metrics.jsonl");
  std::string line, last_train;
  while (std::getline(m, line)) {
    if (line.find("\"train\"") != std::string::npos) last_train = line;
  }
  EXPECT_NE(last_train.find("mean_x"), std::string::npos) << last_train;
  EXPECT_NE(last_train.find("grad_norm"), std::string::npos) << last_train;
  EXPECT_LT(r.last_val.at(0).second, before);
}

TEST_F(TrainerRun, SummaryCarriesEngineFiguresTaskStepsAndThreads) {
  TrainerConfig c;
  c.steps = 6, c.lr = 0.05, c.warmup_steps = 0, c.log_every = 3;
  LineTask task;
  auto run = Run::create(dir_ + "/runs", "e", cfg_.effective, "warn");
  TaskContext ctx{cfg_, *run, 1, ""};
  Trainer t(c, ctx);
  const TrainResult r = t.fit(task);
  const nlohmann::json s = t.summary(r, "line");
  EXPECT_EQ(s.at("task"), "line");
  EXPECT_EQ(s.at("steps").get<int64_t>(), 6);
  EXPECT_EQ(s.at("threads").get<int>(), 1);
  EXPECT_EQ(s.at("steps_run").get<int64_t>(), r.steps_run);
  EXPECT_EQ(s.at("steps_run").get<int64_t>(), 6);
  EXPECT_DOUBLE_EQ(s.at("final_train_loss").get<double>(), r.last_loss);
  EXPECT_EQ(s.at("parameters").get<int64_t>(), r.parameters);
}

TEST_F(TrainerRun, DynamicLossScalingSkipsOverflowsAndResumesBitwise) {
  // A start scale of 1e38 overflows fp32 gradients: those steps are skipped and the scale halves until
  // the gradients are finite; the fit still converges. Stop at 30 and resume to 60 == 60 straight.
  TrainerConfig c;
  c.steps = 60, c.lr = 0.2, c.warmup_steps = 0, c.loss_scale = "dynamic", c.init_loss_scale = 1e38;
  c.loss_scale_growth_interval = 10, c.checkpoint_every = 30, c.eval_every = 60, c.sample_every = 1000;
  LineTask straight;
  const double before = straight.validate().at(0).second;
  const TrainResult a = fit(c, straight);
  EXPECT_GT(a.scaler_skipped_steps, 0);
  EXPECT_LT(a.scaler_skipped_steps, 20);
  EXPECT_TRUE(std::isfinite(a.loss_scale) && a.loss_scale > 1) << a.loss_scale;
  EXPECT_LT(a.last_val.at(0).second, 0.2 * before);

  TrainerConfig first = c;
  first.steps = 30;  // the LR schedule's horizon differs; keep it equal by a constant schedule
  c.schedule = first.schedule = "constant";
  torch::manual_seed(3);
  LineTask s1;
  LineTask s2;  // its weights come from s1's checkpoint
  torch::manual_seed(3);
  LineTask whole;
  std::string run;
  fit(first, s1, "", &run);
  const std::string ck = run + "/checkpoints/ckpt-00000030.safetensors";
  const Checkpoint loaded = load_checkpoint(ck);
  ASSERT_TRUE(loaded.meta.contains("loss_scaler"));
  const TrainResult resumed = fit(c, s2, ck);
  const TrainResult full = fit(c, whole);
  EXPECT_EQ(resumed.start_step, 30);
  EXPECT_TRUE(at::equal(s2.fc_->weight, whole.fc_->weight));
  EXPECT_TRUE(at::equal(s2.fc_->bias, whole.fc_->bias));
  EXPECT_EQ(resumed.scaler_skipped_steps, full.scaler_skipped_steps);
  EXPECT_DOUBLE_EQ(resumed.loss_scale, full.loss_scale);
}

TEST_F(TrainerRun, MixedPrecisionOnCpuIsAConfigError) {
  TrainerConfig c;
  c.precision = "bf16";
  auto run = Run::create(dir_ + "/runs", "e", cfg_.effective, "warn");
  TaskContext ctx{cfg_, *run, 1, ""};
  try {
    Trainer t(c, ctx);
    ADD_FAILURE() << "bf16 on CPU accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.precision"), std::string::npos) << e.what();
  }
}

// Fixed weights without the global generator (the two rank threads would race on it).
void fixed_init(std::initializer_list<torch::nn::Linear*> ms) {
  torch::NoGradGuard ng;
  double salt = 0;
  for (auto* m : ms) {
    for (auto& p : (*m)->parameters()) {
      p.copy_(at::sin(at::arange(p.numel(), at::kFloat) * 0.37 + (salt += 1.0)).view_as(p));
    }
  }
}

// Two ranks as two threads: rank r's gradients are (r + 1) x a fixed pattern, so the mean is 1.5 x it.
TEST(GradReducer, MeansGradientsOverRanksInBucketsWithAccumulationAndUnusedParams) {
  const int port = 29000 + static_cast<int>(::getpid() % 2000);
  std::vector<std::vector<at::Tensor>> grads(2);
  std::vector<int64_t> buckets(2), overlapped(2);
  std::vector<std::string> errors(2);
  auto rank_main = [&](int rank) {
    try {
      DistEnv env;
      env.rank = rank, env.world = 2, env.master_port = port;
      auto pg = ProcessGroup::connect(env, 30);
      torch::nn::Linear a(5, 7), b(7, 3), unused(3, 3);
      fixed_init({&a, &b, &unused});  // the same weights on both ranks
      std::vector<at::Tensor> params;
      for (auto* m : {&unused, &a, &b}) {  // unused first: its bucket is the last one
        for (auto& p : (*m)->parameters()) params.push_back(p);
      }
      GradReducer red(*pg, params, /*bucket_bytes=*/64);  // tiny buckets: several of them
      const at::Tensor x = at::linspace(-1, 1, 10).view({2, 5});
      for (int micro = 0; micro < 2; ++micro) {  // two micro-batches, the second synchronises
        red.prepare(micro == 1);
        (b->forward(a->forward(x)).sum() * static_cast<double>(rank + 1)).backward();
      }
      red.finish();
      for (auto& p : params) grads[rank].push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
      buckets[rank] = red.buckets(), overlapped[rank] = red.overlapped_buckets();
    } catch (const std::exception& e) {
      errors[rank] = e.what();
    }
  };
  std::thread t0(rank_main, 0), t1(rank_main, 1);
  t0.join(), t1.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  // The single-process reference: 2 micro-batches of the rank-1-scaled loss, then x 1.5 / 1 ... i.e.
  // mean over ranks of (r + 1) x 2 x g = 3 g.
  torch::nn::Linear a(5, 7), b(7, 3), unused(3, 3);
  fixed_init({&a, &b, &unused});
  const at::Tensor x = at::linspace(-1, 1, 10).view({2, 5});
  (b->forward(a->forward(x)).sum() * 3.0).backward();
  std::vector<at::Tensor> ref;
  for (auto* m : {&unused, &a, &b}) {
    for (auto& p : (*m)->parameters()) ref.push_back(p.grad().defined() ? p.grad() : at::zeros_like(p));
  }
  ASSERT_EQ(grads[0].size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    for (int r = 0; r < 2; ++r) {
      ASSERT_TRUE(grads[r][i].defined()) << i;
      EXPECT_TRUE(at::allclose(grads[r][i], ref[i], 1e-6, 1e-6)) << "param " << i << " rank " << r;
    }
  }
  EXPECT_GT(buckets[0], 2);
  EXPECT_GT(overlapped[0], 0);  // some buckets went out while backward was still running
}

TEST(DistEnv, ReadsTorchrunVariablesAndRejectsBadOnes) {
  ::setenv("WORLD_SIZE", "4", 1), ::setenv("RANK", "3", 1), ::setenv("LOCAL_RANK", "1", 1);
  ::setenv("MASTER_ADDR", "10.0.0.2", 1), ::setenv("MASTER_PORT", "1234", 1);
  DistEnv e = DistEnv::from_env();
  EXPECT_EQ(e.world, 4);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "10.0.0.2");
  EXPECT_EQ(e.master_port, 1234);
  ::setenv("RANK", "4", 1);
  EXPECT_THROW(DistEnv::from_env(), UsageError);
  ::setenv("RANK", "x", 1);
  EXPECT_THROW(DistEnv::from_env(), UsageError);
  for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
  EXPECT_FALSE(DistEnv::from_env().enabled());
}

}  // namespace
}  // namespace mmref::train
