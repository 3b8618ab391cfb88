// Multi-process data parallel on libtorch's c10d: a TCPStore rendezvous and a Gloo process group (CPU;
// Gloo also all-reduces CUDA tensors), with torchrun's launch contract so torchrun, Slurm (srun with
// the variables exported) and mpirun wrappers start mmref the same way:
//
//   RANK  WORLD_SIZE  LOCAL_RANK  LOCAL_WORLD_SIZE  MASTER_ADDR (default 127.0.0.1)  MASTER_PORT (29500)
//
// `mmref train --nproc N` sets them itself for N local workers (cli/cmd_train.cpp).
// Every collective runs under a timeout; a failure (a peer that exited, a timeout) becomes one
// mmref::Error naming this rank, the operation and what to check, instead of a hang.
//
// GradReducer is the gradient all-reduce: the trainable parameters in buckets (reverse registration
// order, about bucket_bytes each, as torch DDP does); a tensor hook copies each gradient into its
// bucket during backward and a full bucket is all-reduced at once, asynchronously, overlapping the rest
// of the backward pass. Buckets are launched strictly in index order so every rank issues the same
// sequence of collectives. With gradient accumulation only the last micro-batch synchronises.
// Ref: torch/csrc/distributed/c10d/reducer.cpp (bucketing idea), torch/distributed/run.py (env).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::train {

struct DistEnv {
  int rank = 0, world = 1, local_rank = 0, local_world = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool enabled() const { return world > 1; }
  // Reads the variables above; WORLD_SIZE unset or 1 = single process. Throws UsageError on values
  // that do not parse or are out of range (RANK >= WORLD_SIZE, ...), naming the variable.
  static DistEnv from_env();
};

class ProcessGroup {
 public:
  // Rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts the store) and a Gloo group of env.world.
  static std::unique_ptr<ProcessGroup> connect(const DistEnv& env, double timeout_s);
  ~ProcessGroup();

  int rank() const;
  int world() const;
  double timeout_s() const;

  // In place, blocking: sum over ranks.
  void allreduce_sum(at::Tensor& t, const char* what = "allreduce");
  // Non-blocking sum; wait(handle) completes it.
  int64_t allreduce_async(at::Tensor& t);
  void wait(int64_t handle, const char* what = "gradient allreduce");
  // In place: every rank gets root's values (all tensors must have equal shapes on all ranks).
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0, const char* what = "broadcast");
  void barrier(const char* what = "barrier");
  // A string from `root` to every rank (through the store).
  std::string share_string(const std::string& key, const std::string& value_on_root, int root = 0);

  struct Impl;

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs fn on rank 0 first and on the other ranks after it finished (a barrier between): for work that
// creates shared files, e.g. a dataset made when absent. Without a group, just runs fn.
void rank0_first(ProcessGroup* pg, const std::function<void()>& fn);

class GradReducer {
 public:
  GradReducer(ProcessGroup& pg, std::vector<at::Tensor> params, int64_t bucket_bytes = 25 << 20);
  ~GradReducer();  // removes the gradient hooks
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // Before each micro-batch's backward: sync = true for the last one (its gradients are all-reduced).
  void prepare(bool sync);
  // After the last backward: launches what the hooks did not, waits, and writes the mean gradient over
  // ranks into every parameter's .grad.
  void finish();

  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets launched from inside backward (overlapped) in the last finish(), of buckets().
  int64_t overlapped_buckets() const { return overlapped_; }

 private:
  struct Bucket {
    at::Tensor flat;
    std::vector<size_t> params;  // indices into params_
    size_t ready = 0;
    int64_t handle = -1;
  };
  void on_grad(size_t i, const at::Tensor& g);
  void launch_ready();
  void launch(Bucket& b);

  ProcessGroup& pg_;
  std::vector<at::Tensor> params_;
  std::vector<size_t> bucket_of_, offset_of_;
  std::vector<bool> got_;
  std::vector<unsigned> hooks_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool sync_ = false, in_backward_ = false;
  int64_t overlapped_ = 0;
};

}  // namespace mmref::train
