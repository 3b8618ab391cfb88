// The one main() of mmref_bench_kernels: every other file under benchmarks/kernels/ only registers
// benchmarks. Both sides of every comparison run with the same intra-op thread count: all cores, or
// MMREF_THREADS=N (Debian's libtorch alone would use 1 on the 2-core dev box). The count is printed in
// the benchmark context ("intra_op_threads").
// Run: build/<dir>/bin/mmref_bench_kernels [--benchmark_filter=REGEX] [--benchmark_repetitions=5]
#include <cstdlib>
#include <string>
#include <thread>

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("MMREF_THREADS")) threads = std::atoi(env);
  if (threads > 0) at::set_num_threads(threads);
  benchmark::AddCustomContext("intra_op_threads", std::to_string(at::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
