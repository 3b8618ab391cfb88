// `mmref info [--json] [--threads N]`: versions, build options, CUDA/cuDNN, GPUs, CPU and threads.
#include <fstream>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/compat.h"
#include "core/experiment.h"
#include "kernels/common/cuda_device.h"
#include "mmref/build_info.h"

namespace mmref::cli {

namespace {

struct InfoArgs {
  bool json = false;
  int threads = 0;
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "unknown";
}

// The BLAS library the process actually mapped (Debian's libtorch uses whatever libblas.so.3 is).
std::string loaded_blas() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  while (std::getline(in, line)) {
    auto p = line.find('/');
    if (p == std::string::npos) continue;
    const std::string path = line.substr(p);
    if (path.find("libblas") != std::string::npos || path.find("libopenblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos) {
      return path;
    }
  }
  return "none mapped";
}

int run_info(const InfoArgs& a) {
  RuntimeConfig rt;
  rt.threads = a.threads;
  const int threads = apply_runtime(rt);
  const auto cuda = kernels::query_cuda_runtime();
  nlohmann::json j;
  j["mmref"] = {{"version", MMREF_VERSION}, {"commit", MMREF_GIT_COMMIT}, {"build_type", MMREF_BUILD_TYPE},
                {"compiler", MMREF_CXX_COMPILER}};
  j["libtorch"] = {{"version", compat::torch_version()}, {"built_with_cuda", compat::torch_built_with_cuda()},
                   {"cuda_devices", compat::torch_cuda_device_count()},
                   {"cudnn_available", compat::torch_cudnn_available()}};
  j["build"] = {{"nvcc_kernels", std::string(MMREF_BUILD_NVCC) == "ON"},
                {"cuda_archs", MMREF_BUILD_CUDA_ARCHS},
                {"torch_cuda", std::string(MMREF_BUILD_TORCH_CUDA) == "ON"},
                {"nvtx", std::string(MMREF_BUILD_NVTX) == "ON"},
                {"asan", std::string(MMREF_BUILD_ASAN) == "ON"}};
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& d : cuda.devices) {
    gpus.push_back({{"index", d.index}, {"name", d.name}, {"memory_bytes", d.total_memory_bytes},
                    {"sm_count", d.sm_count}, {"compute_capability", fmt::format("{}.{}", d.cc_major, d.cc_minor)}});
  }
  j["cuda"] = {{"kernels_compiled", cuda.compiled}, {"runtime_version", cuda.runtime_version},
               {"driver_version", cuda.driver_version}, {"status", cuda.status}, {"gpus", gpus}};
  j["cpu"] = {{"model", cpu_model()}, {"cores", std::thread::hardware_concurrency()},
              {"intra_op_threads", threads}, {"interop_threads", compat::interop_threads()},
              {"blas", loaded_blas()}};
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  auto ver = [](int v) { return v ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : std::string("none"); };
  std::cout << fmt::format("mmref      {} (commit {}, {}, {})\n", MMREF_VERSION, MMREF_GIT_COMMIT,
                           MMREF_BUILD_TYPE, MMREF_CXX_COMPILER)
            << fmt::format("libtorch   {} (built with CUDA: {})\n", compat::torch_version(),
                           compat::torch_built_with_cuda() ? "yes" : "no")
            << fmt::format("build      nvcc kernels: {} (sm {}), torch CUDA binding: {}, NVTX: {}, ASan: {}\n",
                           MMREF_BUILD_NVCC, MMREF_BUILD_CUDA_ARCHS, MMREF_BUILD_TORCH_CUDA,
                           MMREF_BUILD_NVTX, MMREF_BUILD_ASAN)
            << fmt::format("CUDA       runtime {}, driver {}: {}\n", ver(cuda.runtime_version),
                           ver(cuda.driver_version), cuda.status)
            << fmt::format("cuDNN      {}\n", compat::torch_cudnn_available() ? "available" : "not available");
  if (cuda.devices.empty()) {
    std::cout << "GPU        none\n";
  }
  for (const auto& d : cuda.devices) {
    std::cout << fmt::format("GPU {}      {}, {:.1f} GiB, {} SMs, compute {}.{}\n", d.index, d.name,
                             d.total_memory_bytes / 1073741824.0, d.sm_count, d.cc_major, d.cc_minor);
  }
  std::cout << fmt::format("CPU        {} ({} cores)\n", cpu_model(), std::thread::hardware_concurrency())
            << fmt::format("threads    intra-op {} ({}), inter-op {}\n", threads,
                           a.threads > 0 ? "from --threads" : "default: all cores",
                           compat::interop_threads())
            << fmt::format("BLAS       {}\n", loaded_blas());
  return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  auto* sub = app.add_subcommand("info", "Print versions, build options, CUDA/cuDNN, GPUs, CPU and threads");
  sub->add_flag("--json", args->json, "machine-readable output");
  sub->add_option("--threads", args->threads, "intra-op threads to set (default: all cores)")
      ->check(CLI::Range(0, 4096));
  return {sub, [args] { return run_info(*args); }};
}

}  // namespace mmref::cli
