// Shared experiment sections; see experiment.h.
#include "core/experiment.h"

#include <thread>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/utils.h>

#include "core/compat.h"
#include "core/error.h"

namespace mmref {

void parse(config::Reader& r, RuntimeConfig& c) {
  r.choice("device", c.device, {"cpu", "cuda", "auto"});
  r.opt("threads", c.threads, config::Range::between(0, 4096));
  r.opt("seed", c.seed, config::Range::at_least(0));
  r.opt("deterministic", c.deterministic);
  r.finish();
}

void parse(config::Reader& r, RunConfig& c) {
  r.opt("root", c.root);
  r.opt("keep_checkpoints", c.keep_checkpoints, config::Range::between(1, 1000000));
  r.choice("log_level", c.log_level, {"trace", "debug", "info", "warn", "error"});
  r.opt("progress_interval_s", c.progress_interval_s, config::Range::positive());
  r.finish();
}

void parse(config::Reader& r, KernelsConfig& c) {
  r.choice("attention", c.attention, {"mmref", "reference", "torch"});
  r.choice("depthwise_conv1d", c.depthwise_conv1d, {"mmref", "reference", "torch"});
  r.choice("group_norm_silu", c.group_norm_silu, {"mmref", "reference", "torch"});
  r.choice("conv1d", c.conv1d, {"mmref", "reference", "torch"});
  r.finish();
}

void parse(config::Reader& r, DistributedConfig& c) {
  r.choice("backend", c.backend, {"gloo"});
  r.opt("timeout_s", c.timeout_s, config::Range::positive());
  r.opt("bucket_mb", c.bucket_mb, config::Range::between(1, 1 << 16));
  r.finish();
}

config::Reader load_experiment(const std::string& path, const std::vector<std::string>& overrides,
                               ExperimentConfig& cfg) {
  cfg.config_path = path;
  cfg.source = config::load_file(path);
  for (const auto& o : overrides) config::apply_override(cfg.source, o);
  cfg.effective = config::Node::map();
  config::Reader root(&cfg.source, "", &cfg.effective, config::Mark{path, 1, 1});
  root.opt("name", cfg.name);
  if (cfg.name.empty() || cfg.name.find('/') != std::string::npos) {
    root.fail("name", "must be a non-empty name without '/'");
  }
  root.req("task", cfg.task);
  {
    auto rt = root.child("runtime");
    parse(rt, cfg.runtime);
  }
  {
    auto run = root.child("run");
    parse(run, cfg.run);
  }
  {
    auto k = root.child("kernels");
    parse(k, cfg.kernels);
  }
  {
    auto d = root.child("distributed");
    parse(d, cfg.distributed);
  }
  return root;
}

int apply_runtime(const RuntimeConfig& rt) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Debian's libtorch reports 1 intra-op thread on the 2-core machine; default to all cores.
  compat::set_intra_op_threads(rt.threads > 0 ? rt.threads : cores);
  torch::manual_seed(static_cast<uint64_t>(rt.seed));
  at::globalContext().setDeterministicAlgorithms(rt.deterministic, /*warn_only=*/false);
  if (rt.device == "cuda" && compat::torch_cuda_device_count() == 0) {
    throw ConfigError(
        "runtime.device: 'cuda' was asked for but this libtorch sees no CUDA device (use cpu or auto)");
  }
  return compat::intra_op_threads();
}

}  // namespace mmref
