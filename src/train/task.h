// The interface a training task implements, and the registry `mmref train` picks tasks from.
// A task reads its own config sections (data, model, train, ...) and runs in a Run folder.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/experiment.h"

namespace mmref {
class Run;
}
namespace torch::nn {
class Module;
}

namespace mmref::train {

class ProcessGroup;

// `p` under the folder `dir` unless it is absolute (a task's data.dir + a manifest name from its config).
inline std::string path_in(const std::string& dir, const std::string& p) {
  return std::filesystem::path(p).is_absolute() ? p : dir + "/" + p;
}

struct TaskContext {
  const ExperimentConfig& experiment;
  Run& run;                    // rank > 0: Run::worker() (writes nothing)
  int threads = 1;             // intra-op threads in effect
  std::string resume_from;     // checkpoint to continue from ("" = start fresh)
  ProcessGroup* dist = nullptr;  // data parallel (distributed.h); nullptr = one process
};

// The device a task trains on, from runtime.device: cpu; cuda (cuda:<local rank> when data parallel, one
// GPU per process); auto = cuda when libtorch sees a GPU. The Trainer moves the model there; tasks put
// their batches on it and bring samples back to the CPU.
c10::Device train_device(const TaskContext& ctx);
// The device of a module's first parameter (CPU when it has none): where its inputs must go.
c10::Device device_of(const torch::nn::Module& m);

class Task {
 public:
  virtual ~Task() = default;
  // Reads the task's sections from the experiment's root map (the caller calls finish() afterwards).
  virtual void parse(config::Reader& root) = 0;
  // Trains; returns the summary (final metrics etc.) that goes into summary.json.
  virtual nlohmann::json run(TaskContext& ctx) = 0;
};

// Task names that train in this build.
std::vector<std::string> task_names();
// Creates a task; an unknown name is a ConfigError that lists the known ones (with "did you mean"),
// and a planned family that has not landed yet says so plainly.
std::unique_ptr<Task> make_task(const std::string& name);

}  // namespace mmref::train
