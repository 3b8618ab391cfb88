// Running the real `mmref` binary from CLI tests: a temp folder per test, `mmref <args>` run there with
// stdin closed, exit code and both streams captured.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/fs.h"

namespace mmref_cli_test {

struct Result {
  int code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CliFixture : public ::testing::Test {
 protected:
  explicit CliFixture(std::string prefix = "mmref_cli_") : prefix_(std::move(prefix)) {}
  void SetUp() override { dir_ = mmref::fs::make_temp_dir(prefix_); }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs `mmref <args>` in the temp folder, stdin closed.
  Result mmref(const std::string& args) {
    const std::string cmd = "cd '" + dir_ + "' && '" MMREF_BIN "' " + args + " > out.txt 2> err.txt < /dev/null";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(dir_ + "/out.txt");
    r.err = slurp(dir_ + "/err.txt");
    return r;
  }

  std::string prefix_, dir_;
};

}  // namespace mmref_cli_test
