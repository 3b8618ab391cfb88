// Runs a training task from a YAML file the way `mmref train` does (config, runtime, run folder,
// context), for the task tests. `resume`: a checkpoint to continue from; with `reopen` the run folder
// `*run_dir` is reopened (its log and metrics continue), otherwise a new run folder is made.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/experiment.h"
#include "core/run.h"
#include "train/task.h"

namespace mmref::test {

inline nlohmann::json run_task(train::Task& task, const std::string& yaml_path, const std::vector<std::string>& overrides,
                               std::string* run_dir, const std::string& resume = "", bool reopen = true) {
  ExperimentConfig cfg;
  auto root = load_experiment(yaml_path, overrides, cfg);
  task.parse(root);
  root.finish();
  const int threads = apply_runtime(cfg.runtime);
  std::unique_ptr<Run> run = resume.empty() || !reopen ? Run::create(cfg.run.root, cfg.name, cfg.effective, "warn")
                                                       : Run::open(*run_dir, "warn");
  *run_dir = run->dir();
  train::TaskContext ctx{cfg, *run, threads, resume};
  return task.run(ctx);
}

}  // namespace mmref::test
