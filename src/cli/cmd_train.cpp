// `mmref train CONFIG [key.path=value ...] [--resume auto|RUN_DIR|CHECKPOINT] [--nproc N]`
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include "cli/commands.h"
#include "core/checkpoint.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "train/distributed.h"
#include "train/task.h"

namespace mmref::cli {
namespace stdfs = std::filesystem;

namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  bool finetune = false;  // `mmref finetune`: the config must name finetune.base
  int nproc = 0;          // > 1: spawn this many local data-parallel workers
};

// ---- --nproc: local workers with torchrun's environment ----

volatile std::sig_atomic_t g_forward_signal = 0;
extern "C" void remember_signal(int sig) { g_forward_signal = sig; }

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) MMREF_FAIL("--nproc: cannot open a socket to find a free port: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    MMREF_FAIL("--nproc: cannot find a free loopback port: {}", std::strerror(errno));
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// This process's argv without "--nproc N" / "--nproc=N" (read from /proc/self/cmdline).
std::vector<std::string> worker_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t i = 0; i < all.size();) {
    const size_t j = all.find('\0', i);
    args.push_back(all.substr(i, j - i));
    i = j == std::string::npos ? all.size() : j + 1;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;
      continue;
    }
    if (args[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

// Starts n workers (RANK 0..n-1 on loopback) running this same command, forwards SIGINT/SIGTERM to them,
// and waits. When one fails, the others get `grace_s` to fail on their own (they notice the dead peer)
// before they are killed. Returns 0, or the first failing worker's exit code.
int spawn_workers(int n, double grace_s) {
  const int port = free_tcp_port();
  const std::vector<std::string> args = worker_argv();
  std::vector<pid_t> pids(n, -1);
  std::fflush(stdout), std::fflush(stderr);
  for (int r = 0; r < n; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) MMREF_FAIL("--nproc: fork failed: {}", std::strerror(errno));
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> cargv;
      for (const auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
      cargv.push_back(nullptr);
      ::execv("/proc/self/exe", cargv.data());
      std::fprintf(stderr, "mmref: error: --nproc: cannot start worker %d: %s\n", r, std::strerror(errno));
      ::_exit(1);
    }
    pids[r] = pid;
  }
  auto prev_int = std::signal(SIGINT, remember_signal);
  auto prev_term = std::signal(SIGTERM, remember_signal);
  int alive = n, first_rc = 0, first_rank = -1;
  std::chrono::steady_clock::time_point kill_at{};
  while (alive > 0) {
    if (g_forward_signal != 0) {
      for (pid_t p : pids) {
        if (p > 0) ::kill(p, g_forward_signal);
      }
      g_forward_signal = 0;
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      const int r = static_cast<int>(std::find(pids.begin(), pids.end(), done) - pids.begin());
      if (r >= n) continue;
      pids[r] = -1, --alive;
      const int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (rc != 0 && first_rank < 0) {
        first_rank = r, first_rc = rc;
        kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
      }
      continue;
    }
    if (first_rank >= 0 && std::chrono::steady_clock::now() > kill_at) {
      for (pid_t p : pids) {
        if (p > 0) ::kill(p, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::signal(SIGINT, prev_int);
  std::signal(SIGTERM, prev_term);
  if (first_rank >= 0) {
    if (first_rc == 130) throw Interrupted(fmt::format("--nproc {}: workers interrupted; continue with --resume auto", n));
    throw Error(fmt::format("--nproc {}: worker rank {} failed with exit code {} (its error is above); the other "
                            "workers were stopped",
                            n, first_rank, first_rc));
  }
  return 0;
}

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
  const train::DistEnv env = train::DistEnv::from_env();
  if (a.nproc > 1 && env.enabled()) {
    throw UsageError(fmt::format("--nproc {}: this process is already data-parallel rank {} of {} (WORLD_SIZE is "
                                 "set); use either --nproc or a launcher, not both",
                                 a.nproc, env.rank, env.world));
  }
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

  if (a.nproc > 1) return spawn_workers(a.nproc, cfg.distributed.timeout_s + 10);  // config checked first

  if (env.enabled() && cfg.runtime.threads == 0) {
    // Workers on one machine share its cores.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cfg.runtime.threads = std::max(1, cores / env.local_world);
  }
  const int threads = apply_runtime(cfg.runtime);
  std::unique_ptr<train::ProcessGroup> pg;
  if (env.enabled()) pg = train::ProcessGroup::connect(env, cfg.distributed.timeout_s);
  std::unique_ptr<Run> run;
  std::string resume_from;
  if (env.rank == 0) {
    if (!a.resume.empty()) {
      auto [dir, ck] = find_resume(a.resume, cfg);
      if (!dir.empty()) {
        run = Run::open(dir, cfg.run.log_level);
        resume_from = ck;
      }
    }
    if (!run) run = Run::create(cfg.run.root, cfg.name, cfg.effective, cfg.run.log_level);
    run->log().info("mmref {} {} -> {}{}", a.finetune ? "finetune" : "train", a.config, run->dir(),
                    env.enabled() ? fmt::format(" (data parallel, {} processes)", env.world) : "");
  } else {
    run = Run::worker(env.rank, cfg.run.log_level);
  }
  // Every rank continues from the checkpoint rank 0 chose.
  if (pg) resume_from = pg->share_string("resume_from", resume_from);

  train::TaskContext ctx{cfg, *run, threads, resume_from, pg.get()};
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
    if (env.enabled() && std::string(e.what()).find("data parallel, rank") == std::string::npos) {
      throw Error(fmt::format("data parallel, rank {} of {}: {}", env.rank, env.world, e.what()));
    }
    throw;
  }
  if (!run->primary()) return 0;  // rank 0 reports
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
  sub->add_option("--nproc", args->nproc,
                  "data parallel: start N local worker processes (RANK/WORLD_SIZE/MASTER_* set as torchrun does)")
      ->check(CLI::Range(1, 1024));
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
  sub->add_option("--nproc", args->nproc,
                  "data parallel: start N local worker processes (RANK/WORLD_SIZE/MASTER_* set as torchrun does)")
      ->check(CLI::Range(1, 1024));
  return {sub, [args] { return run_train(*args); }};
}

}  // namespace mmref::cli
