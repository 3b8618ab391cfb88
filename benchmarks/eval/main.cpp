// The one main() of mmref_bench_eval: every other file under benchmarks/eval/ only registers
// benchmarks. Run: build/<dir>/bin/mmref_bench_eval [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
