// Weight-loading throughput for a ~64 MB set of float32 tensors (32 x [512, 1024] plus 32 biases):
//   SafetensorsGetAll   SafetensorsFile::open + get() of every tensor (mmap, validate, copy out)
//   LoadPth             our load_pth (zip + restricted unpickler) on a torch.save-compatible archive
//   TorchPickleLoad     libtorch's torch::pickle_load on the same archive (read into memory first)
//   TorchLoadArchive    torch::load of a std::vector<Tensor> saved with torch::save
//   SafetensorsBytes    serialising the tensors in memory; SafetensorsSave adds the atomic file write
// The files sit in the page cache after the first iteration: these measure parsing and copying, not the
// disk. Bytes processed = tensor bytes, so the GB/s columns compare directly.
//   build/<dir>/bin/mmref_bench_core --benchmark_filter='Safetensors|Pth|Torch'
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/serialize.h>

#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"

namespace mmref {
namespace {

struct Files {
  std::string dir, st, pth, archive;
  std::map<std::string, torch::Tensor> tensors;
  int64_t bytes = 0;

  Files() {
    torch::manual_seed(0);
    for (int k = 0; k < 32; ++k) {
      tensors[fmt::format("layers.{:02d}.weight", k)] = torch::randn({512, 1024});
      tensors[fmt::format("layers.{:02d}.bias", k)] = torch::randn({1024});
    }
    for (const auto& [name, t] : tensors) bytes += t.numel() * t.element_size();
    dir = fs::make_temp_dir("mmref_bench_safetensors_");
    st = dir + "/w.safetensors";
    pth = dir + "/w.pth";
    archive = dir + "/w.pt";
    save_safetensors(st, tensors);
    c10::Dict<std::string, at::Tensor> d;
    for (const auto& [name, t] : tensors) d.insert(name, t);
    const std::vector<char> pickled = torch::jit::pickle_save(d);
    fs::atomic_write(pth, std::string(pickled.begin(), pickled.end()));
    std::vector<torch::Tensor> list;
    for (const auto& [name, t] : tensors) list.push_back(t);
    torch::save(list, archive);
  }
  ~Files() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

const Files& files() {
  static Files f;
  return f;
}

void BM_SafetensorsGetAll(benchmark::State& state) {
  const Files& f = files();
  for (auto _ : state) {
    auto file = SafetensorsFile::open(f.st);
    for (const auto& info : file.tensors()) benchmark::DoNotOptimize(file.get(info.name));
  }
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_SafetensorsGetAll)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SafetensorsGetAllToHalf(benchmark::State& state) {
  const Files& f = files();
  for (auto _ : state) {
    auto file = SafetensorsFile::open(f.st);
    for (const auto& info : file.tensors()) benchmark::DoNotOptimize(file.get(info.name, torch::kHalf));
  }
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_SafetensorsGetAllToHalf)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LoadPth(benchmark::State& state) {
  const Files& f = files();
  for (auto _ : state) benchmark::DoNotOptimize(load_pth(f.pth));
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_LoadPth)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TorchPickleLoad(benchmark::State& state) {
  const Files& f = files();
  for (auto _ : state) {
    std::vector<char> data(fs::file_size(f.pth));
    std::ifstream(f.pth, std::ios::binary).read(data.data(), static_cast<std::streamsize>(data.size()));
    benchmark::DoNotOptimize(torch::pickle_load(data));
  }
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_TorchPickleLoad)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TorchLoadArchive(benchmark::State& state) {
  const Files& f = files();
  for (auto _ : state) {
    std::vector<torch::Tensor> list;
    torch::load(list, f.archive);
    benchmark::DoNotOptimize(list);
  }
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_TorchLoadArchive)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SafetensorsBytes(benchmark::State& state) {
  const Files& f = files();
  for (auto _ : state) benchmark::DoNotOptimize(safetensors_bytes(f.tensors));
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_SafetensorsBytes)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SafetensorsSave(benchmark::State& state) {  // includes fsync: depends on the disk
  const Files& f = files();
  const std::string out = f.dir + "/out.safetensors";
  for (auto _ : state) save_safetensors(out, f.tensors);
  state.SetBytesProcessed(state.iterations() * f.bytes);
}
BENCHMARK(BM_SafetensorsSave)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace mmref
