// The one main() of mmref_bench_train: every other file under benchmarks/train/ only registers
// benchmarks. Run: build/<dir>/bin/mmref_bench_train [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
