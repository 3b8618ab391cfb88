// The training engine; see trainer.h.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <limits>

#include <ATen/Functions.h>
#include <torch/nn/module.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>
#include <torch/utils.h>
#include <spdlog/logger.h>

#include "core/checkpoint.h"
#include "core/compat.h"
#include "core/error.h"
#include "core/nvtx.h"
#include "core/progress.h"
#include "core/run.h"
#include "models/common/lora.h"
#include "train/distributed.h"
#include "train/ema.h"
#include "train/grad_scaler.h"
#include "train/optimizer.h"
#include "train/samples.h"
#include "train/schedule.h"
#include "train/stop_signal.h"

namespace mmref::train {

void parse(config::Reader& r, TrainerConfig& c) {
  r.opt("steps", c.steps, config::Range::between(1, 1e12));
  r.opt("batch_size", c.batch_size, config::Range::between(1, 1 << 24));
  r.opt("lr", c.lr, config::Range::positive());
  r.opt("weight_decay", c.weight_decay, config::Range::at_least(0));
  r.choice("optimizer", c.optimizer, {"adamw", "adam", "sgd"});
  r.choice("schedule", c.schedule, {"constant", "linear", "cosine", "exponential", "noam"});
  r.opt("min_lr_ratio", c.min_lr_ratio, config::Range::between(0, 1));
  r.opt("warmup_steps", c.warmup_steps, config::Range::at_least(0));
  r.opt("ema_decay", c.ema_decay, config::Range::between(0, 0.999999));
  r.opt("grad_accum_steps", c.grad_accum_steps, config::Range::between(1, 1 << 20));
  r.opt("grad_clip", c.grad_clip, config::Range::at_least(0));
  r.choice("on_nonfinite", c.on_nonfinite, {"stop", "skip"});
  r.choice("precision", c.precision, {"fp32", "bf16", "fp16"});
  r.choice("loss_scale", c.loss_scale, {"auto", "dynamic", "none"});
  r.opt("init_loss_scale", c.init_loss_scale, config::Range::positive());
  r.opt("loss_scale_growth_interval", c.loss_scale_growth_interval, config::Range::between(1, 1e12));
  r.opt("log_every", c.log_every, config::Range::between(1, 1e12));
  r.opt("eval_every", c.eval_every, config::Range::between(1, 1e12));
  r.opt("checkpoint_every", c.checkpoint_every, config::Range::between(1, 1e12));
  r.opt("sample_every", c.sample_every, config::Range::between(0, 1e12));
  r.finish();
}

nlohmann::json TrainResult::to_json() const {
  nlohmann::json j;
  j["steps_run"] = steps_run;
  j["start_step"] = start_step;
  j["final_train_loss"] = last_loss;
  j["final_grad_norm"] = grad_norm;
  j["final_lr"] = lr;
  j["skipped_steps"] = skipped_steps;
  j["loss_scaler_skipped_steps"] = scaler_skipped_steps;
  j["loss_scale"] = loss_scale;
  j["steps_per_s"] = steps_per_s;
  j["train_seconds"] = seconds;
  j["parameters"] = parameters;
  j["trainable_parameters"] = trainable_parameters;
  j["world_size"] = world;
  for (const auto& [k, v] : last_val) j["val_" + k] = v;
  for (const auto& [k, v] : last_val_ema) j["val_" + k + "_ema"] = v;
  j["checkpoint"] = last_checkpoint.empty() ? nlohmann::json(nullptr) : nlohmann::json(last_checkpoint);
  return j;
}

struct Trainer::State {
  std::unique_ptr<Ema> ema;
};

Trainer::Trainer(TrainerConfig c, TaskContext& ctx) : c_(std::move(c)), ctx_(ctx), state_(std::make_shared<State>()) {
  const bool cuda = ctx_.experiment.runtime.device == "cuda" ||
                    (ctx_.experiment.runtime.device == "auto" && compat::torch_cuda_device_count() > 0);
  if (c_.precision != "fp32" && !cuda) {
    throw ConfigError(fmt::format("train.precision: '{}' is mixed precision on CUDA; this run is on the CPU "
                                  "(runtime.device: {}), which trains in fp32: set train.precision: fp32",
                                  c_.precision, ctx_.experiment.runtime.device));
  }
}

void Trainer::copy_ema_to(torch::nn::Module& m) const {
  if (state_->ema) state_->ema->copy_to(m);
}

nlohmann::json Trainer::summary(const TrainResult& r, const std::string& task) const {
  nlohmann::json s = r.to_json();
  s["task"] = task;
  s["steps"] = c_.steps;
  s["threads"] = ctx_.threads;
  return s;
}

c10::Device train_device(const TaskContext& ctx) {
  const std::string& d = ctx.experiment.runtime.device;
  const int gpus = compat::torch_cuda_device_count();
  if (d == "cpu" || (d == "auto" && gpus == 0)) return c10::Device(c10::kCPU);
  if (gpus == 0) {
    throw ConfigError("runtime.device: 'cuda' was asked for but this libtorch sees no CUDA device (use cpu or auto)");
  }
  const int local = ctx.dist ? DistEnv::from_env().local_rank : 0;
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local % gpus));
}

c10::Device device_of(const torch::nn::Module& m) {
  const auto ps = m.parameters();
  return ps.empty() ? c10::Device(c10::kCPU) : ps.front().device();
}

namespace {

// Runs fn with m in eval mode and without grad, restoring train mode.
template <typename F>
auto in_eval(torch::nn::Module& m, F&& fn) {
  MMREF_NVTX_RANGE("eval");
  torch::NoGradGuard ng;
  m.eval();
  auto r = fn();
  m.train();
  return r;
}

}  // namespace

TrainResult Trainer::fit(TrainTask& task) {
  auto& log = ctx_.run.log();
  torch::nn::Module& model = task.model();
  const c10::Device device = train_device(ctx_);
  model.to(device);  // before the optimizer and the EMA copy take the parameters
  if (device.is_cuda()) ctx_.run.log().info("trainer: training on {} ({})", device.str(), c_.precision);
  ProcessGroup* dist = ctx_.dist;
  const int rank = dist ? dist->rank() : 0, world = dist ? dist->world() : 1;
  const bool primary = rank == 0;
  const bool cuda_amp = c_.precision != "fp32";
  const c10::ScalarType amp_dtype = c_.precision == "bf16" ? at::kBFloat16 : at::kHalf;
  const bool scaling = c_.loss_scale == "dynamic" || (c_.loss_scale == "auto" && c_.precision == "fp16");

  const std::vector<torch::Tensor> trainable = models::trainable_parameters(model);
  if (trainable.empty()) MMREF_FAIL("task '{}': the model has no trainable parameters", task.name());
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& item : model.named_parameters()) named.emplace_back(item.key(), item.value());
  OptimizerConfig oc;
  oc.kind = c_.optimizer;
  oc.weight_decay = c_.weight_decay;
  const ParamGroups groups = split_param_groups(named, "", c_.head_regex, c_.head_lr_mult);
  std::unique_ptr<torch::optim::Optimizer> opt_ptr = make_optimizer(oc, groups, c_.lr);
  torch::optim::Optimizer& opt = *opt_ptr;
  LrScheduleConfig sched;
  sched.kind = c_.schedule, sched.warmup_steps = c_.warmup_steps, sched.total_steps = c_.steps;
  sched.min_lr_ratio = c_.min_lr_ratio;
  auto& ema = state_->ema;
  if (c_.ema_decay > 0) ema = std::make_unique<Ema>(model, c_.ema_decay);
  GradScalerConfig gsc;
  gsc.init_scale = c_.init_loss_scale;
  gsc.growth_interval = c_.loss_scale_growth_interval;
  GradScaler scaler(gsc);
  std::unique_ptr<CheckpointManager> ckpts;
  if (primary) ckpts = std::make_unique<CheckpointManager>(ctx_.run.checkpoint_dir(), ctx_.experiment.run.keep_checkpoints);

  TrainResult res;
  res.world = world;
  int64_t start = 0;
  if (!ctx_.resume_from.empty()) {
    Checkpoint ck = load_checkpoint(ctx_.resume_from);
    ck.load_module("model", model);
    ck.load_optimizer(c_.optimizer, opt, device);
    if (ema) ema->load_from(ck);
    ck.load_cpu_rng();
    if (scaling && ck.meta.contains("loss_scaler")) scaler.load_state(ck.meta.at("loss_scaler"));
    if (ck.meta.contains("skipped_steps")) res.skipped_steps = ck.meta.at("skipped_steps").get<int64_t>();
    task.load_state(ck);
    start = ck.step;
    log.info("resumed from {} at step {}", ctx_.resume_from, start);
  }
  std::unique_ptr<GradReducer> reducer;
  if (dist) {
    // Identical weights on every rank before the first step: rank 0's.
    std::vector<at::Tensor> state;
    for (const auto& p : model.parameters()) state.push_back(p.detach());
    for (const auto& b : model.buffers()) state.push_back(b.detach());
    dist->broadcast(state, 0, "initial weight broadcast");
    const int64_t bucket_mb = ctx_.experiment.distributed.bucket_mb;
    reducer = std::make_unique<GradReducer>(*dist, trainable, bucket_mb << 20);
    log.info("data parallel: rank {} of {}, {} gradient buckets of <= {} MiB, global batch {}", rank, world,
             reducer->buckets(), bucket_mb, c_.batch_size * world * c_.grad_accum_steps);
  }
  for (const auto& p : model.parameters()) res.parameters += p.numel();
  res.trainable_parameters = models::count_trainable(model);

  auto save = [&](int64_t step) -> std::string {
    if (!primary) return {};
    MMREF_NVTX_RANGE("checkpoint");
    Checkpoint ck;
    ck.step = step;
    ck.add_module("model", model);
    ck.add_optimizer(c_.optimizer, opt);
    if (ema) ema->add_to(ck);
    ck.add_cpu_rng();
    ck.meta["task"] = task.name();
    ck.meta["data_position"] = step;  // tasks draw batches from (seed, step, micro); see MicroBatch
    ck.meta["lr_schedule"] = schedule_json(sched, c_.lr);
    ck.meta["skipped_steps"] = res.skipped_steps;
    ck.meta["world_size"] = world;
    if (scaling) ck.meta["loss_scaler"] = scaler.state();
    task.save_state(ck);
    return ckpts->save(ck);
  };
  auto validate = [&](int64_t step) {
    if (!primary) return;
    res.last_val = in_eval(model, [&] { return task.validate(); });
    if (!res.last_val.empty()) ctx_.run.log_metrics(step, "val", res.last_val);
    if (ema && !res.last_val.empty()) {
      // The EMA weights' metrics: swap them in, validate, swap the trained weights back.
      std::vector<at::Tensor> backup;
      {
        torch::NoGradGuard ng;
        for (const auto& p : model.parameters()) backup.push_back(p.detach().clone());
      }
      ema->copy_to(model);
      res.last_val_ema = in_eval(model, [&] { return task.validate(); });
      torch::NoGradGuard ng;
      size_t i = 0;
      for (auto& p : model.parameters()) p.detach().copy_(backup[i++]);
      Metrics m;
      for (const auto& [k, v] : res.last_val_ema) m.emplace_back(k + "_ema", v);
      ctx_.run.log_metrics(step, "val", m);
    }
  };
  auto samples = [&](int64_t step) {
    if (!primary || !task.makes_samples()) return;
    MMREF_NVTX_RANGE("samples");
    SampleWriter w(ctx_.run, step);
    in_eval(model, [&] { return task.sample(w), 0; });
    log.info("samples: {} files in {}", w.files().size(), w.dir());
  };

  ProgressBar::Options popt;
  popt.total = c_.steps;
  popt.label = "train";
  popt.plain_interval_s = ctx_.experiment.run.progress_interval_s;
  popt.enabled = primary;
  popt.initial = start;
  ProgressBar bar(popt);
  StopSignal stop;  // SIGINT/SIGTERM: finish the step, checkpoint, exit 130
  res.start_step = start;
  const auto t0 = std::chrono::steady_clock::now();
  model.train();
  for (int64_t step = start; step < c_.steps; ++step) {
    MMREF_NVTX_RANGE("train_step");
    const auto ts = std::chrono::steady_clock::now();
    const double lr = lr_at(sched, c_.lr, step);
    set_lr(opt, lr, groups);
    opt.zero_grad();
    double loss_sum = 0;
    bool loss_bad = false;
    std::string what;
    Metrics extra;
    for (int64_t micro = 0; micro < c_.grad_accum_steps; ++micro) {
      if (reducer) reducer->prepare(micro + 1 == c_.grad_accum_steps);
      at::Tensor loss;
      TaskLoss tl;
      {
        compat::CudaAutocast amp(cuda_amp, amp_dtype);
        tl = task.loss({step, micro, c_.grad_accum_steps, rank, world});
        loss = tl.loss.scalar_type() == at::kFloat ? tl.loss : tl.loss.to(at::kFloat);
        if (c_.grad_accum_steps > 1) loss = loss / static_cast<double>(c_.grad_accum_steps);  // no op when 1
      }
      const double l = loss.item<double>();
      if (!std::isfinite(l) && !loss_bad) loss_bad = true, what = fmt::format("loss is {}", l);
      // Data parallel: every rank runs backward even after a bad loss, so the collectives stay matched;
      // the decision below is taken by all ranks together.
      if (loss_bad && !dist) break;
      (scaling ? scaler.scale(loss) : loss).backward();
      loss_sum += l;
      for (const auto& [k, v] : tl.metrics) {
        bool found = false;
        for (auto& [k2, v2] : extra) {
          if (k2 == k) v2 += v / static_cast<double>(c_.grad_accum_steps), found = true;
        }
        if (!found) extra.emplace_back(k, v / static_cast<double>(c_.grad_accum_steps));
      }
    }
    if (reducer) reducer->finish();
    bool stop_now = stop.requested();
    if (dist) {
      // One small all-reduce: [bad loss anywhere, a stop signal anywhere, summed loss].
      at::Tensor f = at::tensor({loss_bad ? 1.0 : 0.0, stop_now ? 1.0 : 0.0, loss_sum}, at::kDouble);
      dist->allreduce_sum(f, "step agreement");
      const auto* fp = f.data_ptr<double>();
      if (fp[0] > 0 && !loss_bad) loss_bad = true, what = "loss is not finite on another rank";
      stop_now = fp[1] > 0;
      loss_sum = fp[2] / world;
    }
    res.last_loss = loss_bad ? NAN : loss_sum;
    bool scaler_inf = false, bad = loss_bad;
    if (!bad && scaling) scaler_inf = !scaler.unscale_(trainable);  // the same on all ranks after the reduce
    if (!bad && !scaler_inf) {
      res.grad_norm = torch::nn::utils::clip_grad_norm_(
          trainable, c_.grad_clip > 0 ? c_.grad_clip : std::numeric_limits<double>::infinity());
      if (!std::isfinite(res.grad_norm)) bad = true, what = fmt::format("gradient norm is {}", res.grad_norm);
    }
    if (bad) {
      if (c_.on_nonfinite == "stop") {
        throw Error(fmt::format(
            "step {}: {}; training stopped. Last good checkpoint: {}. Lower train.lr or check the data "
            "(or set train.on_nonfinite: skip)",
            step + 1, what, res.last_checkpoint.empty() ? "none written yet" : res.last_checkpoint));
      }
      ++res.skipped_steps;
      opt.zero_grad();
      if (res.skipped_steps <= 10 || res.skipped_steps % 100 == 0) {  // no log flood from a diverged run
        log.warn("step {}: {}; step skipped ({} so far)", step + 1, what, res.skipped_steps);
      }
    } else if (scaler_inf) {
      opt.zero_grad();
      scaler.update(true);
      log.debug("step {}: Inf/NaN gradients at loss scale {}; step skipped, scale lowered", step + 1,
                scaler.scale_value() / gsc.backoff_factor);
    } else {
      opt.step();
      if (scaling) scaler.update(false);
      if (ema) ema->update(model);
    }
    const int64_t done = step + 1;
    res.lr = lr;
    bar.update(done, {{"loss", res.last_loss}, {"lr", lr}});
    if (done % c_.log_every == 0 || done == c_.steps) {
      Metrics m{{"loss", res.last_loss}, {"lr", lr}, {"grad_norm", res.grad_norm},
                {"skipped_steps", static_cast<double>(res.skipped_steps)}};
      if (scaling) {
        m.emplace_back("loss_scale", scaler.scale_value());
        m.emplace_back("loss_scaler_skipped_steps", static_cast<double>(scaler.skipped_steps()));
      }
      m.insert(m.end(), extra.begin(), extra.end());
      ctx_.run.log_metrics(done, "train", m);
    }
    if (done % c_.eval_every == 0 || done == c_.steps) validate(done);
    if ((c_.sample_every > 0 && done % c_.sample_every == 0) || done == c_.steps) samples(done);
    if ((done % c_.checkpoint_every == 0 && done != c_.steps) || (done == c_.steps && c_.checkpoint_at_end)) {
      res.last_checkpoint = save(done);
    }
    if (c_.record_step_times) {  // the whole step, with the engine's logging and bookkeeping
      res.step_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count());
    }
    if (stop_now && done < c_.steps) {
      if (res.last_checkpoint.find(fmt::format("{:08d}", done)) == std::string::npos) res.last_checkpoint = save(done);
      bar.finish();
      if (dist) dist->barrier("stop");  // every rank leaves after rank 0's checkpoint is on disk
      log.info("signal at step {}: checkpoint {}", done, res.last_checkpoint);
      throw Interrupted(fmt::format("interrupted at step {} of {}: checkpoint {} written; continue with "
                                    "--resume auto",
                                    done, c_.steps, primary ? res.last_checkpoint : "(rank 0's)"));
    }
  }
  bar.finish();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.steps_run = c_.steps - start;
  res.steps_per_s = res.seconds > 0 ? res.steps_run / res.seconds : 0.0;
  res.scaler_skipped_steps = scaler.skipped_steps();
  res.loss_scale = scaling ? scaler.scale_value() : 1.0;
  if (res.last_val.empty() && primary) res.last_val = in_eval(model, [&] { return task.validate(); });
  if (dist) dist->barrier("end of training");
  return res;
}

}  // namespace mmref::train
