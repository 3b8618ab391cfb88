// `mmref data make <kind> --out DIR`: local corpora generators (no dataset can be downloaded).
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
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
};

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
  throw UsageError(fmt::format(
      "data make: kind '{}' has no generator in this build yet (available: regression; speech, "
      "images, video and the Debian-media corpora come with the data pipeline)",
      a.kind));
}

}  // namespace

Command add_data(CLI::App& app) {
  auto args = std::make_shared<DataArgs>();
  auto* sub = app.add_subcommand("data", "Make local datasets (generators; nothing is downloaded)");
  sub->require_subcommand(1, 1);
  auto* make = sub->add_subcommand("make", "Generate a dataset: mmref data make <kind> --out DIR");
  make->add_option("kind", args->kind, "dataset kind (regression)")->required();
  make->add_option("--out", args->out, "output folder")->required();
  make->add_option("--train-samples", args->train_samples, "training samples")->check(CLI::PositiveNumber);
  make->add_option("--val-samples", args->val_samples, "validation samples")->check(CLI::PositiveNumber);
  make->add_option("--input-dim", args->input_dim, "input dimension")->check(CLI::PositiveNumber);
  make->add_option("--seed", args->seed, "random seed")->check(CLI::NonNegativeNumber);
  return {sub, [args] { return run_make(*args); }};
}

}  // namespace mmref::cli
