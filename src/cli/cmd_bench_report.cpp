// `mmref bench report DIR_OR_FILE... [--out DIR] [--format svg|png|md] [--compare KEY=A,B] [--quiet]`
//
// Merges the JSONL records of `mmref bench CONFIG` runs (several machines, several files) into
// <out>/report.md -- one table per target, rows = sweep points, columns = devices -- and plots per
// target (p50 latency and throughput vs batch, peak memory vs the sequence/length key; SVG or PNG).
// --compare prints B/A latency ratios with their spread: `--compare backend=mmref,torch`,
// `--compare impl=mmref,python-eager`, `--compare commit=abc123,def456` (env.mmref_commit prefixes).
// report.md goes to stdout too unless --quiet. See src/bench/report.h and benchmarks/results/README.md.
//
// The subcommand runs from its CLI11 callback (so `bench`'s own runner needs one line: the call that
// registers it). The callback ends parsing with CLI::Success on success; mmref errors propagate to main(),
// which maps them as for every command (missing input: exit 1; bad usage or config: exit 2).
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>

#include "bench/report.h"
#include "cli/commands.h"
#include "core/error.h"

namespace mmref::cli {

namespace {

struct ReportArgs {
  std::vector<std::string> inputs;
  std::string out = "bench_report";
  std::string format = "svg";
  std::string compare;
  bool quiet = false;
};

int run_report(const ReportArgs& a) {
  bench::ReportOptions o;
  o.inputs = a.inputs;
  o.out_dir = a.out;
  o.format = a.format;
  if (!a.compare.empty()) o.compare = bench::parse_compare(a.compare);
  const bench::ReportResult res = bench::write_report(o);
  if (!a.quiet) std::cout << res.markdown;
  std::cout << "wrote " << res.files.front();
  if (res.files.size() > 1) std::cout << " and " << res.files.size() - 1 << " plot(s) in " << a.out;
  std::cout << "\n";
  return 0;
}

}  // namespace

void add_bench_report(CLI::App& bench) {
  auto args = std::make_shared<ReportArgs>();
  auto* sub = bench.add_subcommand(
      "report",
      "Merge bench results (JSONL files or folders) into markdown tables and plots; --compare KEY=A,B");
  sub->allow_extras(false);
  sub->add_option("inputs", args->inputs, "results .jsonl files or folders (every *.jsonl below them)")
      ->required();
  sub->add_option("--out", args->out, "output folder for report.md and the plots")->capture_default_str();
  sub->add_option("--format", args->format, "plots: svg, png, or md (tables only)")
      ->check(CLI::IsMember({"svg", "png", "md"}))
      ->capture_default_str();
  sub->add_option(
      "--compare", args->compare,
      "KEY=A,B: B/A latency ratios, e.g. backend=mmref,torch, impl=mmref,python-eager, commit=abc,def");
  sub->add_flag("--quiet", args->quiet, "do not print report.md");
  sub->callback([args] {
    // mmref errors propagate to main's handler (exit 2 for usage/config errors, 1 for runtime ones).
    const int rc = run_report(*args);
    if (rc != 0) throw CLI::RuntimeError(rc);
    throw CLI::Success();
  });
}

}  // namespace mmref::cli
