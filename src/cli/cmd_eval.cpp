// `mmref eval CONFIG [key.path=value ...]`: the evaluation harness (src/eval/harness.h).
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "eval/harness.h"

namespace mmref::cli {

Command add_eval(CLI::App& app) {
  auto config = std::make_shared<std::string>();
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto* sub = app.add_subcommand(
      "eval", "Evaluate metrics from a YAML config: FID, KID, IS, CLIP score, WER/CER, speech quality proxies");
  sub->add_option("config", *config, "eval YAML (e.g. configs/eval/example.yaml)")->required();
  sub->add_option("overrides", *overrides, "key.path=value overrides, e.g. eval.out=results/x");
  return {sub, [config, overrides]() -> int {
            const eval::EvalRunSummary s = eval::run_eval(*config, *overrides);
            std::cout << "results: " << s.out_dir << "/results.json, " << s.out_dir << "/results.md, " << s.out_dir
                      << "/per_sample/\n";
            for (const auto& r : s.results) {
              if (r.contains("error")) {
                std::cout << fmt::format("  {:<22} FAILED: {}\n", r.value("name", ""), r.value("error", ""));
              } else {
                std::cout << fmt::format("  {:<22} {:<26} {:.6g}", r.value("name", ""), r.value("metric", ""),
                                         r.value("value", 0.0));
                if (r.contains("ci95")) {
                  std::cout << fmt::format("  95% CI [{:.4g}, {:.4g}]", r["ci95"][0].get<double>(),
                                           r["ci95"][1].get<double>());
                }
                std::cout << fmt::format("  (n {})\n", r.value("n", 0));
              }
            }
            if (s.failed > 0) {
              throw Error(fmt::format("{} of the metrics failed (see above and {}/results.json); the others' results "
                                      "are written",
                                      s.failed, s.out_dir));
            }
            return 0;
          }};
}

}  // namespace mmref::cli
