// `mmref train CONFIG [key.path=value ...] [--resume auto|RUN_DIR|CHECKPOINT]`
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "cli/commands.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "train/task.h"

namespace mmref::cli {
namespace stdfs = std::filesystem;

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  bool finetune = false;  // `mmref finetune`: the config must name finetune.base
};

// Finds the run folder and checkpoint to continue from: "auto" = the newest run of this experiment
// name that has a checkpoint; a run folder; or a checkpoint file inside a run's checkpoints/.
std::pair<std::string, std::string> find_resume(const std::string& what, const ExperimentConfig& cfg) {
  auto latest_in = [&](const std::string& run_dir) -> std::string {
    CheckpointManager m(run_dir + "/checkpoints", cfg.run.keep_checkpoints);
    auto p = m.latest();
    return p ? *p : std::string();
  };
  if (what == "auto") {
    const std::string base = cfg.run.root + "/" + cfg.name;
    std::vector<std::string> runs;
    std::error_code ec;
    for (const auto& e : stdfs::directory_iterator(base, ec)) {
      if (e.is_directory()) runs.push_back(e.path().string());
    }
    std::sort(runs.rbegin(), runs.rend());  // timestamps sort lexically; newest first
    for (const auto& r : runs) {
      const std::string ck = latest_in(r);
      if (!ck.empty()) return {r, ck};
    }
    return {"", ""};  // nothing to resume: start fresh
  }
  if (stdfs::is_directory(what)) {
    const std::string ck = latest_in(what);
    if (ck.empty()) throw UsageError(fmt::format("--resume '{}': no readable checkpoint in {}/checkpoints", what, what));
    return {what, ck};
  }
  if (stdfs::is_regular_file(what)) {
    const auto run_dir = stdfs::path(what).parent_path().parent_path().string();
    return {run_dir, what};
  }
  throw UsageError(fmt::format("--resume '{}': no such run folder or checkpoint file", what));
}

int run_train(const TrainArgs& a) {
  ExperimentConfig cfg;
  config::Reader root = load_experiment(a.config, a.overrides, cfg);
  std::unique_ptr<train::Task> task = train::make_task(cfg.task);
  task->parse(root);
  root.finish();
  if (a.finetune) {
    const config::Node* ft = cfg.effective.find("finetune");
    const config::Node* base = ft ? ft->find("base") : nullptr;
    if (base == nullptr || !base->is_scalar() || base->value().empty()) {
      throw UsageError(fmt::format(
          "mmref finetune {}: no finetune.base (the checkpoint to start from; task '{}'); set it in the config "
          "or add finetune.base=PATH; nothing was run",
          a.config, cfg.task));
    }
  }

  const int threads = apply_runtime(cfg.runtime);
  std::unique_ptr<Run> run;
  std::string resume_from;
  if (!a.resume.empty()) {
    auto [dir, ck] = find_resume(a.resume, cfg);
    if (!dir.empty()) {
      run = Run::open(dir, cfg.run.log_level);
      resume_from = ck;
    }
  }
  if (!run) run = Run::create(cfg.run.root, cfg.name, cfg.effective, cfg.run.log_level);
  run->log().info("mmref {} {} -> {}", a.finetune ? "finetune" : "train", a.config, run->dir());

  train::TaskContext ctx{cfg, *run, threads, resume_from};
  nlohmann::json summary;
  try {
    summary = task->run(ctx);
  } catch (const Interrupted& e) {
    nlohmann::json stopped{{"status", "interrupted"}, {"error", e.what()}, {"config", a.config}};
    try {
      run->write_summary(stopped);
    } catch (...) {
    }
    throw;
  } catch (const std::exception& e) {
    // Keep what was already written (checkpoints, metrics) and record why the run stopped.
    nlohmann::json failed{{"status", "failed"}, {"error", e.what()}, {"config", a.config}};
    try {
      run->write_summary(failed);
    } catch (...) {
    }
    run->log_error_to_file(e.what());
    throw;
  }
  summary["status"] = "ok";
  summary["config"] = a.config;
  summary["run_dir"] = run->dir();
  run->write_summary(summary);
  std::cout << "outputs: " << run->dir() << "\n"
            << "  config.yaml    effective config (re-run with: mmref train " << run->dir()
            << "/config.yaml)\n"
            << "  summary.json   " << summary.dump() << "\n"
            << "  metrics.jsonl, log.txt, events.out.tfevents.* (tensorboard --logdir " << run->dir()
            << "), checkpoints/\n";
  return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  std::string tasks;
  for (const auto& t : train::task_names()) tasks += (tasks.empty() ? "" : ", ") + t;
  auto* sub = app.add_subcommand("train", "Train a model from a YAML experiment config (tasks: " + tasks + ")");
  sub->add_option("config", args->config, "experiment YAML (e.g. configs/default.yaml)")->required();
  sub->add_option("overrides", args->overrides, "key.path=value overrides, e.g. train.lr=1e-3");
  sub->add_option("--resume", args->resume,
                  "continue: 'auto' (newest run of this name), a run folder, or a checkpoint file");
  return {sub, [args] { return run_train(*args); }};
}

Command add_finetune(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  args->finetune = true;
  auto* sub = app.add_subcommand(
      "finetune", "Fine-tune from a base checkpoint (finetune.base): LoRA adapters (finetune.lora_r > 0, saved "
                  "in PEFT format) or full fine-tuning with finetune.freeze");
  sub->add_option("config", args->config, "experiment YAML with a finetune section")->required();
  sub->add_option("overrides", args->overrides, "key.path=value overrides, e.g. finetune.lora_r=8");
  sub->add_option("--resume", args->resume,
                  "continue: 'auto' (newest run of this name), a run folder, or a checkpoint file");
  return {sub, [args] { return run_train(*args); }};
}

}  // namespace mmref::cli
