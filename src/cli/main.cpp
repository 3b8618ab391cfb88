// mmref: the command line. `mmref --help`, `mmref <subcommand> --help`.
// Exit codes: 0 success, 2 usage or config error, 1 runtime failure. Errors are one line on stderr.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <new>

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include "cli/commands.h"
#include "core/error.h"
#include "mmref/build_info.h"

namespace {

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "; ";
    } else {
      out += c;
    }
  }
  return out;
}

int report(const std::string& msg, int code) {
  std::fflush(stdout);
  std::cerr << "mmref: error: " << one_line(msg) << std::endl;
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mmref " MMREF_VERSION
               ": reference multimedia models (diffusion, DiT video, TTS, Conformer ASR) with our own "
               "kernels, training, evaluation and benchmarks"};
  app.set_version_flag("--version", std::string("mmref ") + MMREF_VERSION + " (" + MMREF_GIT_COMMIT + ")");
  app.require_subcommand(1, 1);
  app.fallthrough(false);

  const std::vector<mmref::cli::Command> commands = {
      mmref::cli::add_train(app), mmref::cli::add_finetune(app), mmref::cli::add_sample(app),
      mmref::cli::add_eval(app),  mmref::cli::add_bench(app),    mmref::cli::add_data(app),
      mmref::cli::add_info(app)};

  // One try for parsing and running: a subcommand that runs from its CLI11 callback (`bench report`)
  // throws out of app.parse(), and its errors must map to the same exit codes.
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      const int rc = app.exit(e);  // prints help (rc 0) or the parse error
      return rc == 0 ? 0 : 2;
    }
    for (const auto& c : commands) {
      if (c.sub->parsed()) return c.run();
    }
    return report("no subcommand given; see mmref --help", 2);
  } catch (const mmref::UsageError& e) {
    return report(e.what(), 2);
  } catch (const mmref::Interrupted& e) {
    return report(e.what(), 130);
  } catch (const mmref::ConfigError& e) {
    return report(std::string("config: ") + e.what(), 2);
  } catch (const mmref::Error& e) {
    return report(e.what(), 1);
  } catch (const c10::Error& e) {
    return report(e.what_without_backtrace(), 1);
  } catch (const std::bad_alloc&) {
    return report("out of memory", 1);
  } catch (const std::exception& e) {
    return report(e.what(), 1);
  }
}
