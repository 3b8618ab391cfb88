// The one main() of mmref_bench_kernels: every other file under benchmarks/kernels/ only registers
// benchmarks. Run: build/<dir>/bin/mmref_bench_kernels [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
