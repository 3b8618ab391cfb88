// `mmref data make <kind> --out DIR`: local corpora generators (no dataset can be downloaded).
//
//   mmref data make regression --out data/regression          the default experiment's synthetic data
//   mmref data make speech --out data/speech --count 2000     espeak-ng/flite/festival speech corpus
//   mmref data make images|video|digits|photos|speech_real|video_real --out DIR [--seed S]
//   mmref data list                                            every kind with a one-line description
//
// Each kind is incremental: the same options with every file present does nothing ("up to date").
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/generators/corpus.h"
#include "data/regression_dataset.h"

namespace mmref::cli {

namespace {

struct DataArgs {
  std::string kind;
  std::string out;
  int64_t train_samples = 8192;
  int64_t val_samples = 1024;
  int64_t input_dim = 8;
  int64_t seed = 0;
  int64_t count = 0;
  int sample_rate = 16000;
  int threads = 0;
  bool quiet = false;
};

std::string kind_names() {
  std::string names = "regression";
  for (const auto& [name, desc] : data::corpus_kinds()) names += ", " + name;
  return names;
}

int run_make(const DataArgs& a) {
  if (a.kind == "regression") {
    data::RegressionDataConfig c;
    c.path = a.out + "/regression.safetensors";
    c.train_samples = a.train_samples;
    c.val_samples = a.val_samples;
    c.input_dim = a.input_dim;
    c.seed = a.seed;
    fs::make_dirs(a.out);
    bool generated = false;
    auto d = data::load_or_make_regression(c, &generated);
    std::cout << fmt::format("{} {} ({} train, {} val samples, dim {})\n",
                             generated ? "wrote" : "up to date:", c.path, d.x_train.size(0),
                             d.x_val.size(0), d.x_train.size(1));
    return 0;
  }
  bool known = false;
  for (const auto& [name, desc] : data::corpus_kinds()) known = known || name == a.kind;
  if (!known) {
    throw UsageError(fmt::format("data make: unknown kind '{}' (kinds: {}; see `mmref data list`)", a.kind,
                                 kind_names()));
  }
  data::CorpusOptions o;
  o.out = a.out;
  o.seed = static_cast<uint64_t>(a.seed);
  o.count = a.count;
  o.sample_rate = a.sample_rate;
  o.threads = a.threads;
  o.quiet = a.quiet;
  std::cout << data::make_corpus(a.kind, o) << "\n";
  return 0;
}

}  // namespace

Command add_data(CLI::App& app) {
  auto args = std::make_shared<DataArgs>();
  auto* sub = app.add_subcommand("data", "Make local datasets (generators; nothing is downloaded)");
  sub->require_subcommand(1, 1);
  auto* list = sub->add_subcommand("list", "List the dataset kinds `data make` can generate");
  auto* make = sub->add_subcommand("make", "Generate a dataset: mmref data make <kind> --out DIR");
  make->add_option("kind", args->kind, "dataset kind (" + kind_names() + ")")->required();
  make->add_option("--out", args->out, "output folder")->required();
  make->add_option("--seed", args->seed, "random seed")->check(CLI::NonNegativeNumber);
  make->add_option("--count", args->count, "corpus kinds: number of items (0 = the kind's default)")
      ->check(CLI::NonNegativeNumber);
  make->add_option("--sample-rate", args->sample_rate, "speech kinds: sample rate in Hz (8000..48000)");
  make->add_option("--threads", args->threads, "corpus kinds: worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  make->add_flag("--quiet", args->quiet, "corpus kinds: no progress output");
  make->add_option("--train-samples", args->train_samples, "regression: training samples")
      ->check(CLI::PositiveNumber);
  make->add_option("--val-samples", args->val_samples, "regression: validation samples")
      ->check(CLI::PositiveNumber);
  make->add_option("--input-dim", args->input_dim, "regression: input dimension")->check(CLI::PositiveNumber);
  return {sub, [args, list]() -> int {
            if (list->parsed()) {
              std::cout << fmt::format("{:<12} {}\n", "regression",
                                       "synthetic regression data of the default experiment (safetensors)");
              for (const auto& [name, desc] : data::corpus_kinds())
                std::cout << fmt::format("{:<12} {}\n", name, desc);
              return 0;
            }
            return run_make(*args);
          }};
}

}  // namespace mmref::cli
