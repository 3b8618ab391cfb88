// The training-step benchmark behind `mmref bench train-step` and benchmarks/train/trainer_bench.cpp:
// the same small model (an MLP: Linear+SiLU layers, the default task's network) and the same fixed
// batch trained three ways, each timed per step (median over the steps after a warm-up):
//
//   bare    a hand-written loop: zero_grad, forward, MSE, backward, clip_grad_norm_, AdamW step
//   engine  the Trainer (trainer.h) on a task that returns that loss: adds the LR schedule, non-finite
//           checks, metric logging (metrics.jsonl + TensorBoard every log_every), the progress bar
//   python  the bare loop in eager PyTorch (benchmarks/train/train_step_torch.py, Debian's python3-torch:
//           the same libtorch build), run as a child process
//
// engine / bare - 1 is the engine's overhead (target <= 3%); python / engine says whether the C++ step
// is at least as fast as Python's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mmref::train {

struct StepBenchConfig {
  int64_t input_dim = 64, hidden = 512, layers = 4, batch_size = 256;
  int64_t steps = 300, warmup = 30;  // timed steps after warm-up steps
  int threads = 1;
  int64_t log_every = 50;
};

double median(std::vector<double> v);

// Per-step seconds of the bare libtorch loop (after cfg.warmup untimed steps).
std::vector<double> time_bare_steps(const StepBenchConfig& cfg);
// Per-step seconds of the Trainer in a throwaway run folder under `scratch_dir`.
std::vector<double> time_engine_steps(const StepBenchConfig& cfg, const std::string& scratch_dir);

}  // namespace mmref::train
