// FID feature extraction on the CPU: mmref's FID Inception-v3 against torchvision's inception_v3 (the
// same graph up to three pooling variants) run side by side in this binary (the Python peer is a child
// process: benchmarks/eval/inception_torchvision.py on Debian's python3-torchvision). Batch of 8
// images at 299 x 299, one thread; items/s = images/s. Weights are random (speed does not depend on them).
//   build/cpu/bin/mmref_bench_eval --benchmark_filter=FidFeatures
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include "models/inception/fid_inception.h"
#include "peer_process.h"

namespace {

constexpr int64_t kBatch = 8;

void BM_FidFeatures_mmref(benchmark::State& state) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  mmref::models::FidInceptionV3 net;
  const at::Tensor x = at::rand({kBatch, 3, 299, 299});
  torch::NoGradGuard ng;
  net->features(x);  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(net->features(x));
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_FidFeatures_torchvision(benchmark::State& state) {
  const std::string cmd = "/usr/bin/python3 '" MMREF_SOURCE_DIR "/benchmarks/eval/inception_torchvision.py' --batch " +
                          std::to_string(kBatch) + " --threads 1 --repeats 5 2>/dev/null";
  for (auto _ : state) {
    const nlohmann::json out = mmref::bench::run_peer(cmd);
    if (out.is_null()) {
      state.SkipWithError("python3-torchvision peer did not run (benchmarks/eval/inception_torchvision.py)");
      return;
    }
    state.SetIterationTime(out.at("seconds_per_batch").get<double>());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

}  // namespace

BENCHMARK(BM_FidFeatures_mmref)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_FidFeatures_torchvision)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
