// Entry point of mmref_bench_data (Google Benchmark). Every other .cpp in benchmarks/data/ registers
// its benchmarks with BENCHMARK(...); this file only holds main().
// Run: build/<dir>/benchmarks/mmref_bench_data [--benchmark_filter=REGEX]
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
