// The environment a bench record was measured in (the JSONL records' "env"), the repository root the
// runner finds peer scripts under, and the peak dense TFLOPS table behind "mfu".
#pragma once
#include <string>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

namespace mmref::bench {

// What does not change during a run: git commit and dirty flag of the repository, CPU model, hostname.
// Collected once per run (git is a child process).
struct HostInfo {
  std::string mmref_commit, cpu_model, hostname;
  bool mmref_dirty = false;
  int cpu_cores = 0;
};
HostInfo collect_host_info(const std::string& repo_root);

// env for one record: {"device","device_name","device_memory_bytes","driver_version","cuda_version",
// "cudnn_version","torch_version","mmref_commit","mmref_dirty","cpu_model","cpu_cores","threads",
// "hostname","time_utc"}. device_name is the CPU model on CPU; CUDA-only fields are null there.
nlohmann::json environment_json(const HostInfo& host, const c10::Device& device, int threads);

// "2026-12-03T10:11:12Z" and "20261203T101112Z" (file names).
std::string utc_now_iso();
std::string utc_now_compact();

// The source tree: MMREF_SOURCE_DIR (compiled in) when it holds benchmarks/, else the first folder above
// the running binary that holds configs/bench/, else ".".
std::string repo_root();

// Peak dense tensor-core (or FP32 SIMT for float32) TFLOPS of a GPU by name and dtype name
// ("bfloat16", "float16", "float32"); 0 when unknown (no MFU then). H100 SXM / H200: 989 bf16/fp16,
// 67 fp32; H100 PCIe: 756 / 51; A100: 312 / 19.5 (NVIDIA datasheets, without sparsity). float32 uses
// the non-tensor-core peak because libtorch's matmuls default to full fp32 (allow_tf32 = false).
double peak_dense_tflops(const std::string& device_name, const std::string& dtype);

}  // namespace mmref::bench
