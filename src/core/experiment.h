// The sections every experiment config shares (the task parses its own: data, model, train, ...):
//
//   name: default              # run name: outputs go to <run.root>/<name>/<timestamp>/
//   task: mlp_regression       # which task trains (see `mmref train --help` for the list)
//   runtime:
//     device: cpu              # cpu | cuda | auto
//     threads: 0               # intra-op threads; 0 = all cores
//     seed: 1234
//     deterministic: false     # deterministic algorithms (bitwise-reproducible CPU runs)
//   run:
//     root: runs
//     keep_checkpoints: 3
//     log_level: info          # trace | debug | info | warn | error
//     progress_interval_s: 10  # progress lines when stderr is not a terminal
//   kernels:                   # which implementation each kernel op uses (src/kernels/dispatch.h), so a
//     attention: mmref         #   model can A/B its kernels in one run: mmref | reference | torch
//     depthwise_conv1d: mmref
//     group_norm_silu: mmref
//     conv1d: mmref            #   on CPU mmref = libtorch's conv1d (oneDNN), measured faster
//   distributed:               # data parallel (when launched with --nproc, torchrun, srun, ...)
//     backend: gloo
//     timeout_s: 300           # a dead or stalled peer fails the run after this, never hangs it
//     bucket_mb: 25            # gradient all-reduce buckets
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"

namespace mmref {

struct RuntimeConfig {
  std::string device = "cpu";
  int threads = 0;
  int64_t seed = 1234;
  bool deterministic = false;
};

struct RunConfig {
  std::string root = "runs";
  int keep_checkpoints = 3;
  std::string log_level = "info";
  double progress_interval_s = 10.0;
};

// Backend names per kernel op; models turn them into kernels::AttentionBackend / ConvBackend with
// kernels::parse_attention_backend / parse_conv_backend (core does not link the kernel library).
struct KernelsConfig {
  std::string attention = "mmref";
  std::string depthwise_conv1d = "mmref";
  std::string group_norm_silu = "mmref";
  std::string conv1d = "mmref";
};

// Multi-process data parallel (train/distributed.h); the rank layout comes from the environment
// (RANK, WORLD_SIZE, ... as torchrun sets them) or from `mmref train --nproc N`.
struct DistributedConfig {
  std::string backend = "gloo";  // gloo (CPU tensors; also CUDA ones)
  double timeout_s = 300;        // a collective slower than this fails the run (a dead peer, a stall)
  int64_t bucket_mb = 25;        // gradient all-reduce bucket size
};

struct ExperimentConfig {
  std::string config_path;
  std::string name = "experiment";
  std::string task;
  RuntimeConfig runtime;
  RunConfig run;
  KernelsConfig kernels;
  DistributedConfig distributed;
  config::Node source;     // as loaded, with overrides applied
  config::Node effective;  // fully resolved (defaults filled in by every Reader)
};

void parse(config::Reader& r, RuntimeConfig& c);
void parse(config::Reader& r, RunConfig& c);
void parse(config::Reader& r, KernelsConfig& c);
void parse(config::Reader& r, DistributedConfig& c);

// Loads `path`, applies the overrides ("a.b=value") and reads the shared sections. The returned Reader
// (over `cfg.source`, recording into `cfg.effective`) is for the task to read its own sections and then
// call finish(). `cfg` must outlive the Reader.
config::Reader load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                               ExperimentConfig& cfg);

// Applies the runtime section: thread count, seeds, deterministic mode. Returns the threads in effect.
int apply_runtime(const RuntimeConfig& rt);

}  // namespace mmref
