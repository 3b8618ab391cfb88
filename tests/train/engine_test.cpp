// Training-engine pieces: LR schedules against hand-computed tables, parameter groups (no weight decay
// on biases and 1-D tensors) and one optimizer step against the closed-form update, EMA updates and its
// checkpoint round trip.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/Functions.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "train/ema.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace mmref::train {
namespace {

LrScheduleConfig sched(const char* kind, int64_t warmup, int64_t total, double min_ratio = 0) {
  LrScheduleConfig c;
  c.kind = kind, c.warmup_steps = warmup, c.total_steps = total, c.min_lr_ratio = min_ratio;
  return c;
}

TEST(Schedule, HandComputedTable) {
  // | kind        | w  | T   | step | lr (base 1)                              |
  // | constant    | 10 | 100 |   4  | 5/10 = 0.5 (warmup)                      |
  // | constant    | 10 | 100 |  50  | 1                                        |
  // | linear      | 10 | 110 |  60  | 1 - 50/100 = 0.5                         |
  // | linear .2   | 10 | 110 | 110  | 0.2                                      |
  // | cosine .1   | 0  | 100 |  50  | 0.1 + 0.9 * 0.5 = 0.55                   |
  // | exponential | 0  |  -  |   3  | 0.5^3 = 0.125 (gamma 0.5)                |
  // | noam        | 4  |  -  |   3  | 4^.5 * min(4^-.5, 4 * 4^-1.5) = 1 (peak) |
  // | noam        | 4  |  -  |  15  | 2 * 16^-.5 = 0.5                         |
  // | noam        | 4  |  -  |   0  | 2 * 1 * 4^-1.5 = 0.25                    |
  EXPECT_DOUBLE_EQ(lr_at(sched("constant", 10, 100), 1.0, 4), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(sched("constant", 10, 100), 1.0, 50), 1.0);
  EXPECT_NEAR(lr_at(sched("linear", 10, 110), 1.0, 60), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(sched("linear", 10, 110, 0.2), 1.0, 110), 0.2, 1e-12);
  EXPECT_NEAR(lr_at(sched("cosine", 0, 100, 0.1), 1.0, 50), 0.55, 1e-12);
  auto e = sched("exponential", 0, 0);
  e.gamma = 0.5;
  EXPECT_DOUBLE_EQ(lr_at(e, 1.0, 3), 0.125);
  EXPECT_NEAR(lr_at(sched("noam", 4, 0), 1.0, 3), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(sched("noam", 4, 0), 1.0, 15), 0.5, 1e-12);
  EXPECT_NEAR(lr_at(sched("noam", 4, 0), 1.0, 0), 0.25, 1e-12);
  const auto j = schedule_json(sched("cosine", 5, 50, 0.1), 3e-4);
  EXPECT_EQ(j.at("kind"), "cosine");
  EXPECT_EQ(j.at("warmup_steps"), 5);
  EXPECT_DOUBLE_EQ(j.at("base_lr").get<double>(), 3e-4);
}

TEST(Optimizer, NoDecayOnBiasesAndNormsAndClosedFormSteps) {
  torch::nn::Linear fc(3, 2);
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({2}));
  std::vector<std::pair<std::string, at::Tensor>> named = {
      {"fc.weight", fc->weight}, {"fc.bias", fc->bias}, {"ln.weight", ln->weight}, {"ln.bias", ln->bias}};
  const ParamGroups g = split_param_groups(named);
  ASSERT_EQ(g.groups.size(), 2u);
  EXPECT_EQ(g.find("decay")->names, (std::vector<std::string>{"fc.weight"}));
  EXPECT_EQ(g.find("no_decay")->names, (std::vector<std::string>{"fc.bias", "ln.weight", "ln.bias"}));
  EXPECT_EQ(split_param_groups(named, "fc\\..*").find("decay"), nullptr);
  // new heads: their own groups at 10x the scheduled LR
  const ParamGroups h = split_param_groups(named, "", "fc\\..*", 10.0);
  EXPECT_EQ(h.find("head_decay")->names, (std::vector<std::string>{"fc.weight"}));
  EXPECT_EQ(h.find("head_no_decay")->names, (std::vector<std::string>{"fc.bias"}));
  EXPECT_EQ(h.find("no_decay")->names, (std::vector<std::string>{"ln.weight", "ln.bias"}));
  {
    OptimizerConfig ac;
    auto hopt = make_optimizer(ac, h, 1e-3);
    set_lr(*hopt, 2e-3, h);
    EXPECT_DOUBLE_EQ(get_lr(*hopt, 0), 2e-3);  // no_decay (body)
    EXPECT_DOUBLE_EQ(get_lr(*hopt, 1), 2e-2);  // head_decay
    EXPECT_DOUBLE_EQ(get_lr(*hopt, 2), 2e-2);  // head_no_decay
  }
  EXPECT_THROW(split_param_groups(named, "", "fc[", 10.0), mmref::Error);
  // SGD, no momentum: w <- w - lr (grad + wd w) on decayed tensors, w - lr grad on the others.
  OptimizerConfig c;
  c.kind = "sgd", c.momentum = 0, c.weight_decay = 0.5;
  auto opt = make_optimizer(c, g, 0.1);
  const at::Tensor w0 = fc->weight.detach().clone(), b0 = fc->bias.detach().clone();
  fc->weight.mutable_grad() = at::ones_like(fc->weight);
  fc->bias.mutable_grad() = at::ones_like(fc->bias);
  ln->weight.mutable_grad() = at::zeros_like(ln->weight);
  ln->bias.mutable_grad() = at::zeros_like(ln->bias);
  opt->step();
  EXPECT_TRUE(at::allclose(fc->weight, w0 - 0.1 * (1 + 0.5 * w0)));
  EXPECT_TRUE(at::allclose(fc->bias, b0 - 0.1));
  set_lr(*opt, 0.02);
  EXPECT_DOUBLE_EQ(get_lr(*opt), 0.02);
  // AdamW's first step moves every element by lr * (1 - tiny) against its gradient's sign (+ decay)
  OptimizerConfig a;
  a.kind = "adamw", a.weight_decay = 0.0;
  auto adamw = make_optimizer(a, g, 0.01);
  const at::Tensor w1 = fc->weight.detach().clone();
  adamw->step();
  EXPECT_TRUE(at::allclose(fc->weight, w1 - 0.01, 1e-5, 1e-6));
  for (const char* bad : {"rmsprop"}) {
    OptimizerConfig o;
    o.kind = bad;
    EXPECT_THROW(make_optimizer(o, g, 0.1), mmref::Error);
  }
  for (auto& p : named) p.second.requires_grad_(false);
  EXPECT_THROW(make_optimizer(c, split_param_groups(named), 0.1), mmref::Error);
}

TEST(EmaTest, UpdatesAndCheckpointRoundTrip) {
  torch::nn::Linear fc(2, 1);
  {
    torch::NoGradGuard ng;
    fc->weight.fill_(1.0), fc->bias.fill_(0.0);
  }
  Ema ema(*fc, 0.9, /*warmup=*/false);
  {
    torch::NoGradGuard ng;
    fc->weight.fill_(2.0), fc->bias.fill_(1.0);
  }
  ema.update(*fc);  // 0.9 * 1 + 0.1 * 2 = 1.1;  0.1 * 1 = 0.1
  EXPECT_NEAR(ema.shadow().at("weight")[0][0].item<double>(), 1.1, 1e-6);
  EXPECT_NEAR(ema.shadow().at("bias")[0].item<double>(), 0.1, 1e-6);
  Ema warm(*fc, 0.999);  // warmup: first decay min(0.999, 1/10) = 0.1
  EXPECT_NEAR(warm.current_decay(), 0.1, 1e-12);
  Checkpoint ck;
  ema.add_to(ck);
  EXPECT_TRUE(ck.tensors.count("ema.weight"));
  EXPECT_EQ(ck.meta.at("ema").at("updates"), 1);
  Ema other(*fc, 0.9, false);
  other.load_from(ck);
  EXPECT_TRUE(at::equal(other.shadow().at("weight"), ema.shadow().at("weight")));
  EXPECT_EQ(other.updates(), 1);
  torch::nn::Linear target(2, 1);
  other.copy_to(*target);
  EXPECT_NEAR(target->weight[0][1].item<double>(), 1.1, 1e-6);
  Checkpoint empty;
  EXPECT_THROW(other.load_from(empty), mmref::Error);
}

}  // namespace
}  // namespace mmref::train
