// The built-in default experiment; see mlp_regression.h.
#include "train/mlp_regression.h"

#include <cmath>
#include <limits>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/utils.h>
#include <spdlog/logger.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/nvtx.h"
#include "core/progress.h"
#include "core/run.h"
#include "models/common/lora.h"
#include "train/ema.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/stop_signal.h"

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

void parse(config::Reader& r, RegressionTrainConfig& c) {
  r.opt("steps", c.steps, config::Range::between(1, 1e12));
  r.opt("batch_size", c.batch_size, config::Range::between(1, 1 << 24));
  r.opt("lr", c.lr, config::Range::positive());
  r.opt("weight_decay", c.weight_decay, config::Range::at_least(0));
  r.choice("optimizer", c.optimizer, {"adamw", "adam", "sgd"});
  r.choice("schedule", c.schedule, {"constant", "linear", "cosine", "exponential", "noam"});
  r.opt("min_lr_ratio", c.min_lr_ratio, config::Range::between(0, 1));
  r.opt("ema_decay", c.ema_decay, config::Range::between(0, 0.999999));
  r.opt("grad_accum_steps", c.grad_accum_steps, config::Range::between(1, 1 << 20));
  r.choice("on_nonfinite", c.on_nonfinite, {"stop", "skip"});
  r.opt("warmup_steps", c.warmup_steps, config::Range::at_least(0));
  r.opt("grad_clip", c.grad_clip, config::Range::at_least(0));
  r.opt("log_every", c.log_every, config::Range::between(1, 1e12));
  r.opt("eval_every", c.eval_every, config::Range::between(1, 1e12));
  r.opt("checkpoint_every", c.checkpoint_every, config::Range::between(1, 1e12));
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

double evaluate_mse(Mlp& net, const torch::Tensor& x, const torch::Tensor& y) {
  MMREF_NVTX_RANGE("eval");
  torch::NoGradGuard ng;
  net->eval();
  const double mse = torch::mse_loss(net->forward(x), y).item<double>();
  net->train();
  return mse;
}

}  // namespace

nlohmann::json MlpRegressionTask::run(TaskContext& ctx) {
  auto& log = ctx.run.log();
  bool generated = false;
  const data::RegressionData d = data::load_or_make_regression(data, &generated);
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
  const std::vector<torch::Tensor> trainable = models::trainable_parameters(*net);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : net->named_parameters()) named.emplace_back(item.key(), item.value());
  OptimizerConfig oc;
  oc.kind = train.optimizer;
  oc.weight_decay = train.weight_decay;
  const ParamGroups groups = split_param_groups(named, "", finetune.head_regex, finetune.head_lr_mult);
  std::unique_ptr<torch::optim::Optimizer> opt_ptr = make_optimizer(oc, groups, train.lr);
  torch::optim::Optimizer& opt = *opt_ptr;
  LrScheduleConfig sched;
  sched.kind = train.schedule, sched.warmup_steps = train.warmup_steps, sched.total_steps = train.steps;
  sched.min_lr_ratio = train.min_lr_ratio;
  std::unique_ptr<Ema> ema;
  if (train.ema_decay > 0) ema = std::make_unique<Ema>(*net, train.ema_decay);
  CheckpointManager ckpts(ctx.run.checkpoint_dir(), ctx.experiment.run.keep_checkpoints);
  int64_t start = 0;
  if (!ctx.resume_from.empty()) {
    Checkpoint ck = load_checkpoint(ctx.resume_from);
    ck.load_module("model", *net);
    ck.load_optimizer(train.optimizer, opt);
    if (ema) ema->load_from(ck);
    ck.load_cpu_rng();
    start = ck.step;
    log.info("resumed from {} at step {}", ctx.resume_from, start);
  }
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  const int64_t trainable_count = models::count_trainable(*net);
  log.info("model: MLP {} layers, hidden {}, {} parameters; {} steps, batch {}, {} threads",
           model.layers, model.hidden, params, train.steps, train.batch_size, ctx.threads);

  auto save = [&](int64_t step) {
    MMREF_NVTX_RANGE("checkpoint");
    Checkpoint ck;
    ck.step = step;
    ck.add_module("model", *net);
    ck.add_optimizer(train.optimizer, opt);
    if (ema) ema->add_to(ck);
    ck.add_cpu_rng();
    ck.meta["task"] = "mlp_regression";
    ck.meta["data_position"] = step;  // batches are a pure function of (seed, step)
    // The schedule is a pure function of the step; its parameters are recorded so a resume can check them.
    ck.meta["lr_schedule"] = schedule_json(sched, train.lr);
    return ckpts.save(ck);
  };

  ProgressBar::Options popt;
  popt.total = train.steps;
  popt.label = "train";
  popt.plain_interval_s = ctx.experiment.run.progress_interval_s;
  ProgressBar bar(popt);
  const int64_t n_train = d.x_train.size(0);
  double last_loss = NAN, last_val = NAN, grad_norm = 0.0;
  std::string last_ckpt;
  const auto t0 = std::chrono::steady_clock::now();
  StopSignal stop;  // SIGINT/SIGTERM: finish the step, checkpoint, exit 130
  int64_t skipped_steps = 0;  // non-finite steps skipped (on_nonfinite: skip)
  for (int64_t step = start; step < train.steps; ++step) {
    MMREF_NVTX_RANGE("train_step");
    const double lr = lr_at(sched, train.lr, step);
    set_lr(opt, lr, groups);
    // Batch indices depend only on (seed, step, micro-batch): the data position is the step, resume is
    // exact. Micro-batch 0 keeps the single-batch seed, so grad_accum_steps 1 reproduces earlier runs.
    opt.zero_grad();
    double loss_sum = 0;
    bool nonfinite = false;
    std::string what;
    for (int64_t micro = 0; micro < train.grad_accum_steps && !nonfinite; ++micro) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(
          static_cast<uint64_t>(ctx.experiment.runtime.seed) * 1000003ULL + static_cast<uint64_t>(step) +
          static_cast<uint64_t>(micro) * 0x9E3779B97F4A7C15ULL);
      const torch::Tensor idx = at::randint(n_train, {train.batch_size}, gen, torch::kLong);  // (B,)
      const torch::Tensor pred = net->forward(d.x_train.index_select(0, idx));               // (B, 1)
      const torch::Tensor loss =
          torch::mse_loss(pred, d.y_train.index_select(0, idx)) / static_cast<double>(train.grad_accum_steps);
      const double l = loss.item<double>();
      if (!std::isfinite(l)) {
        nonfinite = true, what = fmt::format("loss is {}", l);
        break;
      }
      loss.backward();
      loss_sum += l;
    }
    last_loss = nonfinite ? NAN : loss_sum;
    if (!nonfinite) {
      // The global gradient norm is always computed (and logged); it clips only when grad_clip > 0.
      grad_norm = torch::nn::utils::clip_grad_norm_(
          trainable, train.grad_clip > 0 ? train.grad_clip : std::numeric_limits<double>::infinity());
      if (!std::isfinite(grad_norm)) nonfinite = true, what = fmt::format("gradient norm is {}", grad_norm);
    }
    if (nonfinite) {
      if (train.on_nonfinite == "stop") {
        throw Error(fmt::format(
            "step {}: {}; training stopped. Last good checkpoint: {}. Lower train.lr or check the data "
            "(or set train.on_nonfinite: skip)",
            step + 1, what, last_ckpt.empty() ? "none written yet" : last_ckpt));
      }
      ++skipped_steps;
      opt.zero_grad();
      if (skipped_steps <= 10 || skipped_steps % 100 == 0) {  // no log flood from a diverged run
        log.warn("step {}: {}; step skipped ({} so far)", step + 1, what, skipped_steps);
      }
    } else {
      opt.step();
    }
    if (ema && !nonfinite) ema->update(*net);
    const int64_t done = step + 1;
    bar.update(done, {{"loss", last_loss}, {"lr", lr}});
    if (done % train.log_every == 0 || done == train.steps) {
      ctx.run.log_metrics(done, "train", {{"loss", last_loss}, {"lr", lr}, {"grad_norm", grad_norm},
                                          {"skipped_steps", static_cast<double>(skipped_steps)}});
    }
    if (done % train.eval_every == 0 || done == train.steps) {
      last_val = evaluate_mse(net, d.x_val, d.y_val);
      ctx.run.log_metrics(done, "val", {{"mse", last_val}});
    }
    if (done % train.checkpoint_every == 0 || done == train.steps) last_ckpt = save(done);
    if (stop.requested() && done < train.steps) {
      if (last_ckpt.empty() || last_ckpt.find(fmt::format("{:08d}", done)) == std::string::npos) last_ckpt = save(done);
      bar.finish();
      log.info("signal {} at step {}: checkpoint {}", stop.signal_number(), done, last_ckpt);
      throw Interrupted(fmt::format("interrupted at step {} of {}: checkpoint {} written; continue with "
                                    "--resume auto",
                                    done, train.steps, last_ckpt));
    }
  }
  bar.finish();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (std::isnan(last_val)) last_val = evaluate_mse(net, d.x_val, d.y_val);
  const double var = d.y_val.var(/*unbiased=*/false).item<double>();
  const int64_t steps_run = train.steps - start;
  nlohmann::json s;
  s["task"] = "mlp_regression";
  s["steps"] = train.steps;
  s["steps_run"] = steps_run;
  s["final_train_loss"] = last_loss;
  s["val_mse"] = last_val;
  s["val_r2"] = 1.0 - last_val / var;  // fraction of variance explained
  s["steps_per_s"] = secs > 0 ? steps_run / secs : 0.0;
  s["threads"] = ctx.threads;
  if (ema) {
    // The EMA weights' validation error, on a copy so the returned model stays the trained one.
    Mlp averaged(d.x_train.size(1), 1, model);
    if (finetune.lora.r > 0) models::apply_lora(*averaged, finetune.lora);
    ema->copy_to(*averaged);
    s["val_mse_ema"] = evaluate_mse(averaged, d.x_val, d.y_val);
  }
  s["optimizer"] = train.optimizer;
  s["skipped_steps"] = skipped_steps;
  s["schedule"] = train.schedule;
  s["parameters"] = params;
  s["trainable_parameters"] = trainable_count;
  if (finetune.lora.r > 0) {
    const std::string adapter_dir = ctx.run.dir() + "/adapter";
    models::save_lora_adapter(*net, finetune.lora, adapter_dir);
    s["adapter"] = adapter_dir;
    log.info("finetune: LoRA adapter (PEFT format) in {}", adapter_dir);
  }
  s["checkpoint"] = last_ckpt.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_ckpt);
  s["data"] = {{"path", data.path}, {"generated", generated}};
  log.info("val mse {:.5f} (R^2 {:.4f}); {:.1f} steps/s", last_val, 1.0 - last_val / var,
           s["steps_per_s"].get<double>());
  return s;
}

}  // namespace mmref::train
