// The training engine every model family uses. A family implements TrainTask (its model, the loss of
// one micro-batch, optional validation, sample hook and extra checkpoint state); the Trainer owns the
// rest of the loop:
//
//   optimizer + parameter groups (optimizer.h), LR schedule (schedule.h), gradient accumulation,
//   global-norm clipping (always logged), EMA (ema.h), mixed precision (CUDA autocast bf16/fp16) and
//   dynamic loss scaling (grad_scaler.h), non-finite loss/gradient policy, validation every N steps,
//   sample hooks (samples.h), atomic checkpoints with exact resume (model, optimizer, EMA, scaler, CPU
//   RNG, task state / data position), SIGINT/SIGTERM stop, metrics.jsonl + TensorBoard + progress bar,
//   and multi-process data parallel (distributed.h): parameters broadcast from rank 0, bucketed
//   gradient all-reduce overlapped with backward, rank 0 alone logs and checkpoints, every rank agrees
//   on skip/stop decisions.
//
// The `train:` keys (TrainerConfig) are the same for every task; see configs/default.yaml.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "train/task.h"

namespace torch::nn {
class Module;
}
namespace mmref {
struct Checkpoint;
}

namespace mmref::train {

class SampleWriter;

struct TrainerConfig {
  int64_t steps = 1500;
  int64_t batch_size = 128;  // per process and micro-batch; data parallel: global batch = batch_size x world
  double lr = 3e-3;
  double weight_decay = 0.01;       // weights only; biases and 1-D tensors are never decayed
  std::string optimizer = "adamw";  // adamw | adam | sgd (momentum 0.9)
  std::string schedule = "cosine";  // constant | linear | cosine | exponential | noam
  double min_lr_ratio = 0.0;
  int64_t warmup_steps = 50;
  double ema_decay = 0.0;           // > 0: EMA of the weights; validation also reports "<metric>_ema"
  int64_t grad_accum_steps = 1;     // micro-batches per optimizer step (loss averaged)
  double grad_clip = 1.0;           // global-norm clip; 0 disables (the norm is still logged)
  std::string on_nonfinite = "stop";  // stop | skip
  std::string precision = "fp32";   // fp32 | bf16 | fp16: CUDA autocast; CPU trains in fp32
  std::string loss_scale = "auto";   // auto (dynamic for fp16) | dynamic | none
  double init_loss_scale = 65536.0;
  int64_t loss_scale_growth_interval = 2000;
  int64_t log_every = 50;
  int64_t eval_every = 250;
  int64_t checkpoint_every = 500;
  int64_t sample_every = 0;      // 0: samples only after the last step (tasks that make samples)

  // Set by code, not YAML: parameter groups of new heads (finetune.head_regex / head_lr_mult).
  std::string head_regex;
  double head_lr_mult = 1.0;
  bool checkpoint_at_end = true;     // benchmarks turn the final checkpoint off
  bool record_step_times = false;    // fills TrainResult::step_seconds
};

void parse(config::Reader& r, TrainerConfig& c);

using Metrics = std::vector<std::pair<std::string, double>>;

// Where a micro-batch sits: tasks draw their data from it, so the data position is a pure function of
// (step, micro) and resume is exact. Data parallel: rank `rank` of `world` takes its share of the
// global batch of batch_size x world samples.
struct MicroBatch {
  int64_t step = 0;
  int64_t micro = 0, micro_count = 1;
  int rank = 0, world = 1;
};

// Seed of a task's batch generator as a pure function of (seed, step, micro), so the global batch
// (rank r takes its slice) needs no loader state across resume. Used by digit_classifier and
// clip_contrastive; older tasks keep their own formulas so their runs reproduce.
inline uint64_t batch_seed(int64_t seed, const MicroBatch& mb) {
  return static_cast<uint64_t>(seed) * 1000003ULL + static_cast<uint64_t>(mb.step) * 7919ULL + static_cast<uint64_t>(mb.micro);
}

struct TaskLoss {
  at::Tensor loss;   // scalar; the trainer divides it by micro_count and calls backward
  Metrics metrics;   // extra training metrics of this micro-batch (averaged over micro-batches)
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  virtual std::string name() const = 0;
  virtual torch::nn::Module& model() = 0;
  // Forward pass and loss of one micro-batch (called with the model in train mode).
  virtual TaskLoss loss(const MicroBatch& mb) = 0;
  // Validation metrics of model() (called in eval mode, without grad, on rank 0).
  virtual Metrics validate() { return {}; }
  // Sample hook: images/audio/video from model() (eval mode, no grad, rank 0).
  virtual bool makes_samples() const { return false; }
  virtual void sample(SampleWriter& /*out*/) {}
  // Extra state (e.g. a data-loader position) in and out of checkpoints.
  virtual void save_state(Checkpoint& /*ck*/) const {}
  virtual void load_state(const Checkpoint& /*ck*/) {}
};

struct TrainResult {
  int64_t start_step = 0, steps_run = 0;
  double last_loss = 0, grad_norm = 0, lr = 0;
  Metrics last_val, last_val_ema;
  int64_t skipped_steps = 0;         // non-finite (on_nonfinite: skip)
  int64_t scaler_skipped_steps = 0;  // Inf/NaN gradients under loss scaling
  double loss_scale = 1;
  std::string last_checkpoint;
  double seconds = 0, steps_per_s = 0;
  int64_t parameters = 0, trainable_parameters = 0;
  int world = 1;
  std::vector<double> step_seconds;  // when TrainerConfig::record_step_times
  nlohmann::json to_json() const;    // the engine's part of summary.json
};

class Trainer {
 public:
  Trainer(TrainerConfig c, TaskContext& ctx);
  // Trains task.model() from ctx.resume_from (or fresh) to c.steps. Throws Interrupted after a signal
  // (checkpoint written), mmref::Error on a non-finite step (policy stop) or a failed collective.
  TrainResult fit(TrainTask& task);
  // The EMA weights after fit() (empty when ema_decay is 0): copy into a model of the same structure.
  void copy_ema_to(torch::nn::Module& m) const;
  // summary.json's common part after fit(): r.to_json() plus the task's name, the planned train.steps and
  // the threads used. The task adds its own figures to it.
  nlohmann::json summary(const TrainResult& r, const std::string& task) const;

 private:
  struct State;
  TrainerConfig c_;
  TaskContext& ctx_;
  std::shared_ptr<State> state_;
};

}  // namespace mmref::train
