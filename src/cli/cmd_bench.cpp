// `mmref bench`: benchmarks users run on their own data and machine.
//
//   mmref bench loader MANIFEST [--workers N] [--batch-size B] [--batches N] [--step-ms T] [--json FILE]
//     Does the DataLoader keep an ASR training step fed? Builds the speech dataset (FFmpeg decode ->
//     16 kHz mono -> 80-bin Kaldi fbank -> character tokens) over a JSONL manifest (e.g. one made by
//     `mmref data make speech`), then
//       1. loader alone: examples/s and ms per example with N workers (no training step);
//       2. fed: a host-side step of --step-ms per batch (the time a GPU step keeps the host thread busy;
//          sleep, so it takes no CPU from the workers) -- wait fraction = time next() blocked / total.
//     The loader keeps up when the wait fraction is under 10%. Prints a table, writes --json.
//   mmref bench CONFIG   YAML VRAM/latency sweeps: not in this build yet (exit 2).
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/loader.h"
#include "data/dataset/manifest.h"
#include "data/dataset/speech_dataset.h"
#include "data/text/vocab.h"

namespace mmref::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct LoaderArgs {
  std::string manifest;
  int workers = 2;
  int64_t batch_size = 16;
  int64_t batches = 40;
  double step_ms = 100;
  int sample_rate = 16000;
  std::string json;
};

struct Pass {
  double seconds = 0, wait_seconds = 0;
  int64_t batches = 0, examples = 0, frames = 0;
};

Pass run_pass(const std::shared_ptr<const data::Dataset>& ds, const LoaderArgs& a, double step_ms) {
  data::LoaderOptions lo;
  lo.sampler.batch_size = a.batch_size;
  lo.sampler.shuffle = true;
  lo.sampler.seed = 1;
  lo.num_workers = a.workers;
  lo.prefetch_batches = std::max(4, 2 * a.workers);
  data::DataLoader loader(ds, lo);
  Pass p;
  const auto t0 = Clock::now();
  while (p.batches < a.batches) {
    auto batch = loader.next();
    if (!batch) continue;  // epoch boundary: go on with the next epoch
    ++p.batches;
    p.examples += batch->ids.size();
    p.frames += batch->lengths.at("feats").sum().item<int64_t>();
    if (step_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(step_ms));
  }
  p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  p.wait_seconds = loader.wait_seconds();
  return p;
}

int run_loader(const LoaderArgs& a) {
  data::BadInputReport bad;
  std::vector<data::ManifestEntry> entries = data::read_manifest(a.manifest, /*skip_bad=*/false, &bad);
  if (entries.empty()) MMREF_FAIL("bench loader: manifest '{}' has no entries", a.manifest);
  std::vector<std::string> texts;
  for (const auto& e : entries) texts.push_back(e.text);
  auto vocab = std::make_shared<data::CharVocab>(data::CharVocab::build(texts));
  data::SpeechDatasetOptions so;
  so.sample_rate = a.sample_rate;
  so.source = a.manifest;
  auto ds = std::make_shared<data::SpeechFeatureDataset>(entries, vocab, so);
  const Pass alone = run_pass(ds, a, 0);
  const Pass fed = run_pass(ds, a, a.step_ms);
  const double wait_fraction = fed.seconds > 0 ? fed.wait_seconds / fed.seconds : 0;
  const double ex_per_s = alone.examples / alone.seconds;
  std::cout << fmt::format("bench loader: {} ({} utterances), batch {}, {} workers, {} batches per pass\n",
                           a.manifest, entries.size(), a.batch_size, a.workers, a.batches)
            << fmt::format("  loader alone   {:8.1f} examples/s  {:7.2f} ms/example  {:9.0f} frames/s\n", ex_per_s,
                           1e3 / ex_per_s * std::max(1, a.workers), alone.frames / alone.seconds)
            << fmt::format("  fed ({:.0f} ms step) wait fraction {:.1f}% of {:.2f} s ({})\n", a.step_ms,
                           100 * wait_fraction, fed.seconds, wait_fraction < 0.10 ? "keeps up" : "does NOT keep up");
  if (!a.json.empty()) {
    nlohmann::json j = {{"manifest", a.manifest},         {"utterances", entries.size()},
                        {"batch_size", a.batch_size},     {"workers", a.workers},
                        {"batches", a.batches},           {"step_ms", a.step_ms},
                        {"examples_per_s", ex_per_s},     {"frames_per_s", alone.frames / alone.seconds},
                        {"fed_seconds", fed.seconds},     {"fed_wait_seconds", fed.wait_seconds},
                        {"wait_fraction", wait_fraction}, {"keeps_up", wait_fraction < 0.10}};
    fs::atomic_write(a.json, j.dump(1) + "\n");
    std::cout << "  wrote " << a.json << "\n";
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto args = std::make_shared<LoaderArgs>();
  auto config = std::make_shared<std::vector<std::string>>();
  auto* sub = app.add_subcommand("bench", "Benchmarks: `bench loader MANIFEST` (YAML VRAM/latency sweeps not in this build yet)");
  sub->add_option("args", *config, "config file and key.path=value overrides (sweeps: not in this build yet)");
  sub->allow_extras();
  auto* loader = sub->add_subcommand("loader", "Does the DataLoader keep an ASR training step fed? (speech manifest)");
  loader->add_option("manifest", args->manifest, "JSONL manifest (e.g. data/speech/train.jsonl)")->required();
  loader->add_option("--workers", args->workers, "loader worker threads")->check(CLI::NonNegativeNumber);
  loader->add_option("--batch-size", args->batch_size, "utterances per batch")->check(CLI::PositiveNumber);
  loader->add_option("--batches", args->batches, "batches per pass")->check(CLI::PositiveNumber);
  loader->add_option("--step-ms", args->step_ms, "simulated training step per batch, ms")->check(CLI::NonNegativeNumber);
  loader->add_option("--sample-rate", args->sample_rate, "feature sample rate, Hz")->check(CLI::Range(8000, 48000));
  loader->add_option("--json", args->json, "write the figures to this JSON file");
  return {sub, [args, config, loader]() -> int {  // config: CLI11 writes into it, keep it alive
            if (loader->parsed()) return run_loader(*args);
            throw UsageError(
                "mmref bench: benchmark sweeps from a YAML config are not in this build yet (micro-benchmarks: "
                "build/cpu/bin/mmref_bench_*; data loader: mmref bench loader MANIFEST); nothing was run");
          }};
}

}  // namespace mmref::cli
