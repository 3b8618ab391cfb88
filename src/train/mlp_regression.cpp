// The built-in default experiment; see mlp_regression.h.
#include "train/mlp_regression.h"

#include <cmath>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>
#include <spdlog/logger.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/nvtx.h"
#include "core/run.h"
#include "models/common/lora.h"
#include "train/distributed.h"
#include "train/samples.h"
#include "train/schedule.h"

namespace mmref::train {

void parse(config::Reader& r, MlpConfig& c) {
  r.opt("hidden", c.hidden, config::Range::between(1, 1 << 20));
  r.opt("layers", c.layers, config::Range::between(1, 64));
  r.choice("activation", c.activation, {"silu", "relu", "gelu", "tanh"});
  r.finish();
}

void parse(config::Reader& r, FinetuneConfig& c) {
  r.opt("base", c.base);
  r.opt("lora_r", c.lora.r, config::Range::between(0, 1 << 16));
  r.opt("lora_alpha", c.lora.alpha, config::Range::positive());
  r.opt("lora_dropout", c.lora.dropout, config::Range::between(0, 0.99));
  r.opt("target_modules", c.lora.target_modules);
  r.opt("freeze", c.freeze);
  r.opt("head_regex", c.head_regex);
  r.opt("head_lr_mult", c.head_lr_mult, config::Range::positive());
  r.finish();
}

MlpImpl::MlpImpl(int64_t in_dim, int64_t out_dim, const MlpConfig& c) : activation_(c.activation) {
  net_ = register_module("net", torch::nn::ModuleList());
  int64_t d = in_dim;
  for (int64_t i = 0; i < c.layers; ++i) {
    const int64_t out = (i + 1 == c.layers) ? out_dim : c.hidden;
    net_->push_back(models::LoraLinear(d, out));  // nn.Linear's names and init, LoRA-ready
    d = out;
  }
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  const size_t n = net_->size();
  for (size_t i = 0; i < n; ++i) {
    x = net_->ptr<models::LoraLinearImpl>(i)->forward(x);  // (N, hidden) or (N, out)
    if (i + 1 == n) break;
    if (activation_ == "silu") {
      x = torch::silu(x);
    } else if (activation_ == "relu") {
      x = torch::relu(x);
    } else if (activation_ == "gelu") {
      x = torch::gelu(x);
    } else {
      x = torch::tanh(x);
    }
  }
  return x;
}

double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup, int64_t total) {
  LrScheduleConfig c;
  c.kind = "cosine", c.warmup_steps = warmup, c.total_steps = total;
  return lr_at(c, base_lr, step);
}

void MlpRegressionTask::parse(config::Reader& root) {
  {
    auto r = root.child("data");
    data::parse(r, data);
  }
  {
    auto r = root.child("model");
    train::parse(r, model);
  }
  {
    auto r = root.child("train");
    train::parse(r, train);
  }
  {
    auto r = root.child("finetune");
    train::parse(r, finetune);
  }
}

namespace {

// Predictions against targets on the validation set as a 256 x 256 scatter plot (white background,
// grey diagonal y = x, one dark dot per sample): the task's sample image.
at::Tensor scatter_plot(const at::Tensor& pred, const at::Tensor& target) {
  constexpr int64_t S = 256;
  at::Tensor img = at::ones({3, S, S}, at::kFloat);
  const at::Tensor p = pred.reshape({-1}).to(at::kFloat).cpu(), t = target.reshape({-1}).to(at::kFloat).cpu();
  const double lo = std::min(p.min().item<double>(), t.min().item<double>());
  const double hi = std::max(p.max().item<double>(), t.max().item<double>());
  const double span = hi > lo ? hi - lo : 1.0;
  auto a = img.accessor<float, 3>();
  for (int64_t i = 0; i < S; ++i) {
    for (int c = 0; c < 3; ++c) a[c][S - 1 - i][i] = 0.75f;
  }
  const auto pa = p.accessor<float, 1>(), ta = t.accessor<float, 1>();
  for (int64_t k = 0; k < p.size(0); ++k) {
    const auto x = static_cast<int64_t>((ta[k] - lo) / span * (S - 3)) + 1;  // target on x
    const auto y = S - 2 - static_cast<int64_t>((pa[k] - lo) / span * (S - 3));
    for (int64_t dy = -1; dy <= 1; ++dy) {
      for (int64_t dx = -1; dx <= 1; ++dx) {
        a[0][y + dy][x + dx] = 0.1f, a[1][y + dy][x + dx] = 0.2f, a[2][y + dy][x + dx] = 0.6f;
      }
    }
  }
  return img;
}

// The engine's view of this task: the MLP, a batch drawn from (seed, step, micro), validation MSE.
class MlpTrainTask : public TrainTask {
 public:
  // The data sits on `device` (the model's; train_device()), the batch indices are drawn on the CPU.
  MlpTrainTask(Mlp net, const data::RegressionData& d, int64_t batch_size, int64_t seed, const c10::Device& device)
      : net_(std::move(net)), x_train_(d.x_train.to(device)), y_train_(d.y_train.to(device)),
        x_val_(d.x_val.to(device)), y_val_(d.y_val.to(device)), batch_(batch_size), seed_(seed) {}
  std::string name() const override { return "mlp_regression"; }
  torch::nn::Module& model() override { return *net_; }

  TaskLoss loss(const MicroBatch& mb) override {
    // The global batch (batch_size x world samples) depends only on (seed, step, micro); rank r takes
    // rows [r B, (r+1) B). One process with batch 2B draws the same 2B rows as two with batch B.
    // Micro-batch 0 keeps the single-batch seed, so grad_accum_steps 1 reproduces earlier runs.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(
        static_cast<uint64_t>(seed_) * 1000003ULL + static_cast<uint64_t>(mb.step) +
        static_cast<uint64_t>(mb.micro) * 0x9E3779B97F4A7C15ULL);
    const int64_t n = x_train_.size(0);
    const torch::Tensor all = at::randint(n, {batch_ * mb.world}, gen, torch::kLong);  // (B * world,)
    const torch::Tensor idx = all.narrow(0, batch_ * mb.rank, batch_).to(x_train_.device());  // (B,)
    const torch::Tensor pred = net_->forward(x_train_.index_select(0, idx));                  // (B, 1)
    return {torch::mse_loss(pred, y_train_.index_select(0, idx)), {}};
  }

  Metrics validate() override { return {{"mse", torch::mse_loss(net_->forward(x_val_), y_val_).item<double>()}}; }

  bool makes_samples() const override { return true; }
  void sample(SampleWriter& out) override { out.image("val_pred_vs_target", scatter_plot(net_->forward(x_val_), y_val_)); }

 private:
  Mlp net_;
  torch::Tensor x_train_, y_train_, x_val_, y_val_;
  int64_t batch_, seed_;
};

}  // namespace

nlohmann::json MlpRegressionTask::run(TaskContext& ctx) {
  auto& log = ctx.run.log();
  bool generated = false;
  data::RegressionData d;
  rank0_first(ctx.dist, [&] { d = data::load_or_make_regression(data, &generated); });
  log.info("data: {} ({} train, {} val samples, dim {}){}", data.path, d.x_train.size(0),
           d.x_val.size(0), d.x_train.size(1), generated ? ", generated now" : "");

  Mlp net(d.x_train.size(1), 1, model);
  // Fine-tuning: base weights from a checkpoint (not needed on resume: the run's own checkpoint holds
  // them), then LoRA adapters (only they train) or freezing by regex (full fine-tuning of the rest).
  if (!finetune.base.empty() && ctx.resume_from.empty()) {
    load_checkpoint(finetune.base).load_module("model", *net);
    log.info("finetune: base weights from {}", finetune.base);
  }
  if (finetune.lora.r > 0) {
    const auto adapted = models::apply_lora(*net, finetune.lora);
    log.info("finetune: LoRA r {} alpha {} on {} layers ({}...)", finetune.lora.r, finetune.lora.alpha,
             adapted.size(), adapted.front());
  } else if (!finetune.freeze.empty()) {
    std::regex re;
    try {
      re = std::regex(finetune.freeze);
    } catch (const std::regex_error& e) {
      throw ConfigError(fmt::format("finetune.freeze: '{}' is not a valid regex: {}", finetune.freeze, e.what()));
    }
    int64_t frozen = 0;
    for (auto& item : net->named_parameters()) {
      if (std::regex_match(item.key(), re)) item.value().requires_grad_(false), ++frozen;
    }
    if (frozen == 0) throw ConfigError(fmt::format("finetune.freeze: '{}' matches no parameter", finetune.freeze));
    log.info("finetune: {} parameter tensors frozen by '{}'", frozen, finetune.freeze);
  }
  log.info("model: MLP {} layers, hidden {}; {} steps, batch {}, {} threads", model.layers, model.hidden,
           train.steps, train.batch_size, ctx.threads);

  TrainerConfig tc = train;
  tc.head_regex = finetune.head_regex;
  tc.head_lr_mult = finetune.head_lr_mult;
  Trainer trainer(tc, ctx);
  MlpTrainTask task(net, d, train.batch_size, ctx.experiment.runtime.seed, train_device(ctx));
  const TrainResult r = trainer.fit(task);

  nlohmann::json s = trainer.summary(r, "mlp_regression");
  s["optimizer"] = train.optimizer;
  s["schedule"] = train.schedule;
  double val = NAN;
  for (const auto& [k, v] : r.last_val) {
    if (k == "mse") val = v;
  }
  const double var = d.y_val.var(/*unbiased=*/false).item<double>();
  s["val_r2"] = 1.0 - val / var;  // fraction of variance explained
  if (finetune.lora.r > 0 && ctx.run.primary()) {
    const std::string adapter_dir = ctx.run.dir() + "/adapter";
    models::save_lora_adapter(*net, finetune.lora, adapter_dir);
    s["adapter"] = adapter_dir;
    log.info("finetune: LoRA adapter (PEFT format) in {}", adapter_dir);
  }
  s["data"] = {{"path", data.path}, {"generated", generated}};
  if (ctx.run.primary()) {
    log.info("val mse {:.5f} (R^2 {:.4f}); {:.1f} steps/s", val, 1.0 - val / var, r.steps_per_s);
  }
  return s;
}

}  // namespace mmref::train
