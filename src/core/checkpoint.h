// Checkpoints: one safetensors file per save, written atomically (temp file, fsync, rename), so a crash
// mid-write leaves the previous checkpoint intact; keep-last-N pruning; a `latest` pointer file.
//
// File layout (any safetensors reader opens it):
//   model.<param>        the model's state dict (reference key names)
//   ema.<param>          EMA weights, when the trainer keeps them
//   optimizer.<key>      an optimizer's state as a libtorch archive in a U8 tensor (byte exact)
//   rng.cpu              the CPU generator state (U8)
//   __metadata__.mmref   JSON: step, data position, LR schedule, loss scaler, ... (Checkpoint::meta)
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace mmref {

struct Checkpoint {
  int64_t step = 0;
  std::map<std::string, at::Tensor> tensors;
  nlohmann::json meta = nlohmann::json::object();

  // Adds/loads a module's parameters and buffers under "<prefix>.<name>".
  void add_module(const std::string& prefix, const torch::nn::Module& m);
  void load_module(const std::string& prefix, torch::nn::Module& m) const;  // strict
  // Adds/loads an optimizer's full state (moments, step counts, param-group options).
  void add_optimizer(const std::string& key, torch::optim::Optimizer& opt);
  // The loaded moments go to `device` (the device the parameters are on).
  void load_optimizer(const std::string& key, torch::optim::Optimizer& opt,
                      const c10::Device& device = c10::Device(c10::kCPU)) const;
  // CPU random generator state.
  void add_cpu_rng();
  void load_cpu_rng() const;
};

class CheckpointManager {
 public:
  CheckpointManager(std::string dir, int keep_last);

  // Writes <dir>/ckpt-<step, 8 digits>.safetensors atomically, then the `latest` pointer, then deletes
  // the oldest checkpoints beyond keep_last (never the one just written). Returns the path.
  std::string save(const Checkpoint& ck);
  // Checkpoint files sorted by step (temp files of interrupted writes are ignored).
  std::vector<std::string> list() const;
  // The newest checkpoint that opens cleanly, or nothing.
  std::optional<std::string> latest() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int keep_last_;
};

// Reads a checkpoint; a missing, truncated or corrupt file gets an mmref::Error naming it.
Checkpoint load_checkpoint(const std::string& path);

// Bytes <-> U8 tensors (for archives and generator states stored in safetensors).
at::Tensor bytes_to_tensor(const std::string& bytes);
std::string tensor_to_bytes(const at::Tensor& t);

}  // namespace mmref
