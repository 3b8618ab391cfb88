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
//   mmref bench train-step [--hidden 512 --layers 4 --batch-size 256 --steps 300 --threads N] [--json FILE]
//     One small model's training step three ways (src/train/step_bench.h): a bare libtorch loop, the
//     mmref engine (Trainer), and Python eager PyTorch (benchmarks/train/train_step_torch.py under
//     --python, default /usr/bin/python3). Prints medians, the engine's overhead over the bare loop, and
//     Python / engine (> 1: the C++ step is faster). Bare and engine alternate over --rounds rounds.
//   mmref bench CONFIG [key=value ...] [--set key=value]... [--out DIR] [--only NAME] [--dry-run]
//     A latency / throughput / memory sweep described in YAML (src/bench/spec.h; ready ones in
//     configs/bench/): every point is timed (warm-up, repeats, CUDA events on GPU), its peak memory
//     recorded, an out-of-memory point recorded as "oom"; with `peer: true` the Python eager peer runs
//     on the same point. One JSONL line per point and implementation goes to
//     DIR/<name>-<UTC time>-<host>.jsonl (default runs/bench/), flushed as each point finishes.
//     Overrides ("sweep.batch=[1,2]", "device=cpu", "repeats.count=3") apply before expansion (in a
//     `benches:` file, to every entry). --dry-run prints the expanded points and runs nothing.
//     Exit 0 when every point is ok or oom, 1 when a point failed otherwise (peers never fail a run).
//   mmref bench targets   lists the targets a bench YAML can name.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/runner.h"
#include "bench/spec.h"
#include "bench/target.h"
#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/loader.h"
#include "data/dataset/manifest.h"
#include "data/dataset/speech_dataset.h"
#include "data/text/vocab.h"
#include "mmref/build_info.h"
#include "core/compat.h"
#include "train/step_bench.h"

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

struct StepArgs {
  train::StepBenchConfig cfg;
  int rounds = 3;
  std::string python = "/usr/bin/python3";
  std::string script;
  bool no_python = false;
  std::string json;
};

int run_train_step(StepArgs a) {
  const int threads = compat::set_intra_op_threads(a.cfg.threads);
  a.cfg.threads = threads;
  const std::string scratch = fs::make_temp_dir("mmref_bench_step_");
  std::vector<double> bare_medians, engine_medians;
  for (int r = 0; r < a.rounds; ++r) {
    bare_medians.push_back(train::median(train::time_bare_steps(a.cfg)));
    engine_medians.push_back(train::median(train::time_engine_steps(a.cfg, scratch)));
  }
  std::system(("rm -rf '" + scratch + "'").c_str());
  const double bare = train::median(bare_medians) * 1e3, engine = train::median(engine_medians) * 1e3;
  double py = -1;
  std::string py_note;
  if (!a.no_python) {
    const std::string script =
        a.script.empty() ? std::string(MMREF_SOURCE_DIR) + "/benchmarks/train/train_step_torch.py" : a.script;
    if (!fs::exists(script)) {
      py_note = "skipped: no " + script + " (pass --script PATH)";
    } else {
      const std::string cmd = fmt::format(
          "'{}' '{}' --input-dim {} --hidden {} --layers {} --batch-size {} --steps {} --warmup {} --threads {} 2>&1",
          a.python, script, a.cfg.input_dim, a.cfg.hidden, a.cfg.layers, a.cfg.batch_size, a.cfg.steps,
          a.cfg.warmup, threads);
      std::string out;
      if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        const int rc = ::pclose(p);
        const auto brace = out.rfind('{');
        if (rc == 0 && brace != std::string::npos) {
          try {
            py = nlohmann::json::parse(out.substr(brace)).at("median_ms").get<double>();
            py_note = "python3-torch " + nlohmann::json::parse(out.substr(brace)).at("torch").get<std::string>();
          } catch (const std::exception&) {
            py_note = "skipped: unreadable output from " + script;
          }
        } else {
          py_note = "skipped: " + a.python + " " + script + " failed (exit " + std::to_string(rc) + ")";
        }
      }
    }
  }
  const double overhead = engine / bare - 1;
  std::cout << fmt::format("bench train-step: MLP {} -> {} x {} layers -> 1, batch {}, {} threads; median ms/step over "
                           "{} steps, {} rounds\n",
                           a.cfg.input_dim, a.cfg.hidden, a.cfg.layers, a.cfg.batch_size, threads, a.cfg.steps,
                           a.rounds)
            << fmt::format("  bare libtorch loop   {:8.3f} ms\n", bare)
            << fmt::format("  mmref engine         {:8.3f} ms   overhead {:+.1f}% (target <= 3%)\n", engine,
                           100 * overhead);
  if (py > 0) {
    std::cout << fmt::format("  Python eager         {:8.3f} ms   python / engine {:.2f}x ({})\n", py, py / engine,
                             py_note);
  } else if (!a.no_python) {
    std::cout << "  Python eager         " << py_note << "\n";
  }
  if (!a.json.empty()) {
    nlohmann::json j = {{"input_dim", a.cfg.input_dim}, {"hidden", a.cfg.hidden},   {"layers", a.cfg.layers},
                        {"batch_size", a.cfg.batch_size}, {"steps", a.cfg.steps},   {"rounds", a.rounds},
                        {"threads", threads},             {"bare_ms", bare},         {"engine_ms", engine},
                        {"engine_overhead", overhead},    {"bare_ms_rounds", bare_medians},
                        {"engine_ms_rounds", engine_medians}};
    if (py > 0) j["python_ms"] = py, j["python_over_engine"] = py / engine, j["python"] = py_note;
    fs::atomic_write(a.json, j.dump(1) + "\n");
    std::cout << "  wrote " << a.json << "\n";
  }
  return 0;
}

struct SweepArgs {
  std::vector<std::string> args;  // CONFIG [key=value ...]
  std::vector<std::string> sets;
  std::string out = "runs/bench";
  std::string python;
  std::vector<std::string> only;
  bool dry_run = false;
};

int run_sweep(const SweepArgs& a) {
  if (a.args.empty()) {
    throw UsageError(
        "mmref bench: give a bench YAML (e.g. configs/bench/cpu_smoke.yaml) or a subcommand (targets, loader, "
        "train-step, report); `mmref bench --help` lists them");
  }
  std::vector<std::string> overrides;
  for (size_t i = 1; i < a.args.size(); ++i) {
    if (a.args[i].find('=') == std::string::npos) {
      throw UsageError("mmref bench: '" + a.args[i] + "' is not a key=value override (one CONFIG per run)");
    }
    overrides.push_back(a.args[i]);
  }
  for (const auto& s : a.sets) {
    if (s.find('=') == std::string::npos) throw UsageError("mmref bench: --set '" + s + "' is not key=value");
    overrides.push_back(s);
  }
  bench::BenchFile file = bench::load_bench_file(a.args[0], overrides);
  if (!a.only.empty()) {
    std::vector<bench::BenchSpec> kept;
    for (auto& b : file.benches) {
      if (std::find(a.only.begin(), a.only.end(), b.name) != a.only.end()) kept.push_back(std::move(b));
    }
    if (kept.empty()) throw UsageError("mmref bench: --only matched no bench of " + a.args[0]);
    file.benches = std::move(kept);
  }
  if (a.dry_run) {
    std::cout << bench::describe_points(file);
    return 0;
  }
  bench::RunOptions o;
  o.out_dir = a.out;
  o.python = a.python;
  o.console = &std::cout;
  const bench::RunSummary s = bench::run_bench_file(file, o);
  if (s.error > 0) {
    std::cerr << fmt::format("mmref bench: {} point(s) failed (status \"error\" in {})\n", s.error, s.jsonl_path);
    return 1;
  }
  return 0;
}

int list_targets() {
  for (const auto& [name, description] : bench::target_list()) {
    std::cout << fmt::format("{:<28} {}\n", name, description);
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto args = std::make_shared<LoaderArgs>();
  auto sweep = std::make_shared<SweepArgs>();
  auto* sub = app.add_subcommand(
      "bench", "Benchmarks: `bench CONFIG` (YAML sweeps, configs/bench/), `bench targets`, `bench report DIR`, "
               "`bench loader MANIFEST`, `bench train-step`");
  sub->add_option("args", sweep->args, "bench YAML, then key.path=value overrides");
  sub->add_option("--set", sweep->sets, "key.path=value override (repeatable)")->allow_extra_args(false);
  sub->add_option("--out", sweep->out, "folder of the JSONL results (default runs/bench)");
  sub->add_option("--python", sweep->python, "python with torch for the peers (default $MMREF_PYTHON or /usr/bin/python3)");
  sub->add_option("--only", sweep->only, "run only the benches of this name (repeatable)")->allow_extra_args(false);
  sub->add_flag("--dry-run", sweep->dry_run, "print the expanded points and exit");
  auto* targets = sub->add_subcommand("targets", "List the targets a bench YAML can name");
  auto* loader = sub->add_subcommand("loader", "Does the DataLoader keep an ASR training step fed? (speech manifest)");
  loader->add_option("manifest", args->manifest, "JSONL manifest (e.g. data/speech/train.jsonl)")->required();
  loader->add_option("--workers", args->workers, "loader worker threads")->check(CLI::NonNegativeNumber);
  loader->add_option("--batch-size", args->batch_size, "utterances per batch")->check(CLI::PositiveNumber);
  loader->add_option("--batches", args->batches, "batches per pass")->check(CLI::PositiveNumber);
  loader->add_option("--step-ms", args->step_ms, "simulated training step per batch, ms")->check(CLI::NonNegativeNumber);
  loader->add_option("--sample-rate", args->sample_rate, "feature sample rate, Hz")->check(CLI::Range(8000, 48000));
  loader->add_option("--json", args->json, "write the figures to this JSON file");
  auto step = std::make_shared<StepArgs>();
  auto* ts = sub->add_subcommand("train-step", "One training step: bare libtorch loop vs the mmref engine vs Python eager");
  ts->add_option("--input-dim", step->cfg.input_dim, "MLP input width")->check(CLI::PositiveNumber);
  ts->add_option("--hidden", step->cfg.hidden, "MLP hidden width")->check(CLI::PositiveNumber);
  ts->add_option("--layers", step->cfg.layers, "Linear layers")->check(CLI::Range(1, 64));
  ts->add_option("--batch-size", step->cfg.batch_size, "batch")->check(CLI::PositiveNumber);
  ts->add_option("--steps", step->cfg.steps, "timed steps per measurement")->check(CLI::PositiveNumber);
  ts->add_option("--warmup", step->cfg.warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  ts->add_option("--threads", step->cfg.threads, "intra-op threads (0 = libtorch's default)")->check(CLI::NonNegativeNumber);
  ts->add_option("--rounds", step->rounds, "alternating bare/engine rounds")->check(CLI::Range(1, 100));
  ts->add_option("--python", step->python, "python with torch for the eager peer");
  ts->add_option("--script", step->script, "the peer script (default: the source tree's)");
  ts->add_flag("--no-python", step->no_python, "skip the Python peer");
  ts->add_option("--json", step->json, "write the figures to this JSON file");
  add_bench_report(*sub);
  return {sub, [args, sweep, loader, step, ts, targets]() -> int {
            if (loader->parsed()) return run_loader(*args);
            if (ts->parsed()) return run_train_step(*step);
            if (targets->parsed()) return list_targets();
            return run_sweep(*sweep);
          }};
}

}  // namespace mmref::cli
