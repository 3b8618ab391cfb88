// The one main() of mmref_bench_core: every other file under benchmarks/core/ only registers
// benchmarks. Run: build/<dir>/bin/mmref_bench_core [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
