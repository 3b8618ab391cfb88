// The `mmref` subcommands. Each registers its options on the CLI11 app and runs after parsing;
// errors propagate as mmref exceptions and main() turns them into one line and an exit code.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace mmref::cli {

// A registered subcommand and the function that runs it (called when it was parsed).
using Runner = std::function<int()>;
struct Command {
  CLI::App* sub;
  Runner run;
};
Command add_info(CLI::App& app);
Command add_train(CLI::App& app);
Command add_data(CLI::App& app);
// `mmref bench CONFIG` (YAML sweeps, src/bench/runner.h), `bench targets`, `bench loader`, `bench train-step`;
// registers `bench report` (add_bench_report) under it.
Command add_bench(CLI::App& app);
void add_bench_report(CLI::App& bench);  // `mmref bench report DIR...` (cmd_bench_report.cpp)
Command add_finetune(CLI::App& app);
// Subcommands whose models have not landed yet: they parse their arguments and say so plainly (exit 2).
Command add_sample(CLI::App& app);
Command add_eval(CLI::App& app);

}  // namespace mmref::cli
