// A benchmark target: one thing `mmref bench CONFIG` can time at a sweep point (a kernel, a model's
// inference or train step, a sampler run). The sweep runner (runner.h) owns warm-up, repeats, timing,
// memory and OOM handling; a target only builds its inputs and does one call.
//
// Targets register by name in register_builtin_targets() (targets_builtin.cpp), one
// register_*_targets() function per family, so a static library never drops them.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

namespace mmref::bench {

// One sweep point: the swept keys and their values merged over the target's fixed settings
// ({"batch": 4, "seq": 256, "dtype": "bfloat16", "backend": "mmref", "lora": false, ...}).
struct Point {
  nlohmann::json values = nlohmann::json::object();
  c10::Device device = c10::Device(c10::kCPU);

  // Typed access with a default; a present value of the wrong type throws mmref::Error naming the key.
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  bool has(const std::string& key) const { return values.contains(key); }
};

// What one call of Target::run() does, declared by prepare().
struct Work {
  double units = 0;          // throughput numerator per call (images, frames, tokens, steps, ...)
  std::string unit;          // the unit users quote for units per second: "images/s", "tokens/s", "steps/s"
  double audio_seconds = 0;  // > 0 for audio targets: real-time factor = latency / audio_seconds
  double flops = 0;          // model FLOPs per call (0: the target declares none; no MFU then)
};

// A Python eager peer for the same point, run as a child process by the runner (see peer protocol in
// runner.h): `python3 SCRIPT --point JSON --device DEV --warmup N --repeats N --threads T`.
struct PeerSpec {
  std::string script;                                     // path relative to the repository root
  nlohmann::json args = nlohmann::json::object();         // goes to the script as --point (merged over values)
};

class Target {
 public:
  virtual ~Target() = default;
  // Builds the model and fresh random inputs (never zeros) for the point on point.device. Throws
  // mmref::Error for settings the target cannot honour (the runner records the point as "error").
  virtual Work prepare(const Point& point) = 0;
  // One timed call. It may leave work queued on a CUDA stream: the runner synchronises.
  virtual void run() = 0;
  // The Python eager peer for this point, if one exists (empty script: none).
  virtual PeerSpec peer(const Point& /*point*/) const { return {}; }
};

using TargetFactory = std::function<std::unique_ptr<Target>()>;

void register_target(const std::string& name, const std::string& description, TargetFactory factory);
// Throws mmref::Error naming the unknown target and listing the known ones.
std::unique_ptr<Target> make_target(const std::string& name);
// (name, description) of every registered target, sorted by name.
std::vector<std::pair<std::string, std::string>> target_list();

// Registers every built-in target once (idempotent). Each family adds its function here.
void register_builtin_targets();
void register_kernel_targets();     // targets_kernels.cpp
void register_train_targets();      // targets_train.cpp
void register_asr_targets();        // targets_asr.cpp
void register_diffusion_targets();  // targets_diffusion.cpp

}  // namespace mmref::bench
