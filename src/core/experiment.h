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

struct ExperimentConfig {
  std::string config_path;
  std::string name = "experiment";
  std::string task;
  RuntimeConfig runtime;
  RunConfig run;
  config::Node source;     // as loaded, with overrides applied
  config::Node effective;  // fully resolved (defaults filled in by every Reader)
};

void parse(config::Reader& r, RuntimeConfig& c);
void parse(config::Reader& r, RunConfig& c);

// Loads `path`, applies the overrides ("a.b=value") and reads the shared sections. The returned Reader
// (over `cfg.source`, recording into `cfg.effective`) is for the task to read its own sections and then
// call finish(). `cfg` must outlive the Reader.
config::Reader load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                               ExperimentConfig& cfg);

// Applies the runtime section: thread count, seeds, deterministic mode. Returns the threads in effect.
int apply_runtime(const RuntimeConfig& rt);

}  // namespace mmref
