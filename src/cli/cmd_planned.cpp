// Subcommands whose model families have not landed in this build: they accept their documented
// arguments (so scripts can be written against them) and say plainly that nothing can run yet (exit 2).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/error.h"

namespace mmref::cli {

namespace {

Command planned(CLI::App& app, const std::string& name, const std::string& help, const std::string& why) {
  auto config = std::make_shared<std::vector<std::string>>();
  auto* sub = app.add_subcommand(name, help + " [not available in this build yet]");
  sub->add_option("args", *config, "config file and key.path=value overrides");
  sub->allow_extras();
  return {sub, [name, why, config]() -> int {
            throw UsageError(fmt::format("mmref {}: {}; nothing was run", name, why));
          }};
}

}  // namespace

Command add_sample(CLI::App& app) {
  return planned(app, "sample", "Sample from a trained model (diffusion, video, tts, asr)",
                 "no generative or ASR model is available in this build yet");
}

Command add_eval(CLI::App& app) {
  return planned(app, "eval", "Evaluate metrics (FID, KID, CLIP score, WER/CER, MOS proxies)",
                 "the evaluation harness is not in this build yet");
}

}  // namespace mmref::cli
