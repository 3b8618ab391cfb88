// The one main() of mmref_bench_models: every other file under benchmarks/models/ only registers
// benchmarks. Run: build/<dir>/bin/mmref_bench_models [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
