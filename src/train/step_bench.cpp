// Training-step benchmark; see step_bench.h.
#include "train/step_bench.h"

#include <algorithm>
#include <chrono>
#include <fstream>

#include <ATen/Functions.h>
#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>

#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "train/mlp_regression.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace mmref::train {

namespace {

using Clock = std::chrono::steady_clock;

struct Fixture {
  Mlp net;
  at::Tensor x, y;
  explicit Fixture(const StepBenchConfig& c) : net(nullptr) {
    torch::manual_seed(0);
    MlpConfig mc;
    mc.hidden = c.hidden, mc.layers = c.layers, mc.activation = "silu";
    net = Mlp(c.input_dim, 1, mc);
    x = at::randn({c.batch_size, c.input_dim});
    y = at::randn({c.batch_size, 1});
  }
};

std::unique_ptr<torch::optim::Optimizer> adamw(torch::nn::Module& m, ParamGroups* groups_out) {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& item : m.named_parameters()) named.emplace_back(item.key(), item.value());
  *groups_out = split_param_groups(named);
  OptimizerConfig oc;
  return make_optimizer(oc, *groups_out, 1e-3);
}

class FixedBatchTask : public TrainTask {
 public:
  explicit FixedBatchTask(Fixture& f) : f_(f) {}
  std::string name() const override { return "step_bench"; }
  torch::nn::Module& model() override { return *f_.net; }
  TaskLoss loss(const MicroBatch&) override { return {at::mse_loss(f_.net->forward(f_.x), f_.y), {}}; }

 private:
  Fixture& f_;
};

}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<double> time_bare_steps(const StepBenchConfig& cfg) {
  Fixture f(cfg);
  ParamGroups groups;
  auto opt = adamw(*f.net, &groups);
  std::vector<at::Tensor> params = f.net->parameters();
  std::vector<double> out;
  for (int64_t s = 0; s < cfg.warmup + cfg.steps; ++s) {
    const auto t0 = Clock::now();
    opt->zero_grad();
    at::Tensor loss = at::mse_loss(f.net->forward(f.x), f.y);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    opt->step();
    if (s >= cfg.warmup) out.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return out;
}

std::vector<double> time_engine_steps(const StepBenchConfig& cfg, const std::string& scratch_dir) {
  Fixture f(cfg);
  const std::string yaml = scratch_dir + "/step_bench.yaml";
  std::ofstream(yaml) << "name: step_bench\ntask: step_bench\nrun: {root: '" << scratch_dir
                      << "/runs', progress_interval_s: 1000000}\n";
  ExperimentConfig ec;
  auto root = load_experiment(yaml, {}, ec);
  root.finish();
  auto run = Run::create(ec.run.root, ec.name, ec.effective, "warn");
  TaskContext ctx{ec, *run, cfg.threads, ""};
  TrainerConfig tc;
  tc.steps = cfg.warmup + cfg.steps;
  tc.lr = 1e-3, tc.warmup_steps = 10, tc.schedule = "cosine", tc.grad_clip = 1.0;
  tc.log_every = cfg.log_every, tc.eval_every = tc.steps, tc.checkpoint_every = tc.steps;
  tc.checkpoint_at_end = false, tc.record_step_times = true;
  FixedBatchTask task(f);
  Trainer t(tc, ctx);
  const TrainResult r = t.fit(task);
  return {r.step_seconds.begin() + cfg.warmup, r.step_seconds.end()};
}

}  // namespace mmref::train
