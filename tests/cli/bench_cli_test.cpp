// `mmref bench CONFIG` through the real binary: `bench targets`, --dry-run expansion with overrides,
// config errors (exit 2 naming the key), and the CPU smoke sweep (configs/bench/cpu_smoke.yaml, which
// CI runs: every record ok, the peer point present, the JSONL in --out) and `bench report` over it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "core/fs.h"

namespace {

using Out = mmref_cli_test::Result;
using mmref_cli_test::slurp;

class BenchCli : public mmref_cli_test::CliFixture {
 protected:
  BenchCli() : CliFixture("mmref_bench_cli_") {}
};

const std::string kSmoke = std::string(MMREF_SOURCE_DIR) + "/configs/bench/cpu_smoke.yaml";

TEST_F(BenchCli, TargetsListsEveryKernelAndTheTrainStep) {
  const Out r = mmref("bench targets");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* t : {"kernel.attention", "kernel.conv1d", "kernel.depthwise_conv1d", "kernel.group_norm_silu",
                        "train.mlp_step"}) {
    EXPECT_NE(r.out.find(t), std::string::npos) << t << "\n" << r.out;
  }
}

TEST_F(BenchCli, DryRunPrintsExpandedPointsWithOverrides) {
  const Out r = mmref("bench '" + kSmoke + "' --dry-run --only smoke_attention --set sweep.seq=[32,48,96]");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"seq\":96"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 bench(es), 7 point(s)"), std::string::npos) << r.out;  // 2 x 3 + 1 explicit
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/runs"));
}

TEST_F(BenchCli, ConfigErrorsExitTwoNamingTheKey) {
  std::ofstream(dir_ + "/b.yaml") << "target: kernel.attention\nsweeep: {seq: [1]}\n";
  Out r = mmref("bench b.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("sweeep"), std::string::npos) << r.err;
  r = mmref("bench missing.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("missing.yaml"), std::string::npos) << r.err;
  std::ofstream(dir_ + "/c.yaml") << "target: no.such.target\ndevice: cpu\n";
  r = mmref("bench c.yaml");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("no.such.target"), std::string::npos) << r.err;
}

TEST_F(BenchCli, CpuSmokeSweepRecordsEveryPoint) {
  const auto t0 = std::chrono::steady_clock::now();
  const Out r = mmref("bench '" + kSmoke + "' --out res");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_LT(secs, 120) << "the smoke sweep must stay under 2 minutes";
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/res")) files.push_back(e.path().string());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_NE(files[0].find("cpu_smoke-"), std::string::npos) << files[0];
  std::ifstream in(files[0]);
  std::string line;
  int mmref_ok = 0, peers = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["schema"], "mmref.bench.v1");
    if (j["impl"] == "mmref") {
      EXPECT_EQ(j["status"], "ok") << line;
      EXPECT_GT(j["latency_ms"]["p50"].get<double>(), 0) << line;
      mmref_ok += j["status"] == "ok";
    } else {
      EXPECT_EQ(j["impl"], "python-eager");
      EXPECT_EQ(j["target"], "train.mlp_step");
      ++peers;
    }
  }
  EXPECT_EQ(mmref_ok, 5 + 2 + 2 + 2 + 1);
  EXPECT_EQ(peers, 1);
  EXPECT_NE(r.out.find("wrote "), std::string::npos) << r.out;
  // `mmref bench report` turns the run into tables and plots; a missing input exits 1 naming it.
  const Out rep = mmref("bench report res --out rep --quiet");
  ASSERT_EQ(rep.code, 0) << rep.err;
  const std::string md = slurp(dir_ + "/rep/report.md");
  EXPECT_NE(md.find("kernel.attention"), std::string::npos) << md;
  EXPECT_NE(md.find("train.mlp_step"), std::string::npos) << md;
  const Out missing = mmref("bench report nowhere");
  EXPECT_EQ(missing.code, 1) << missing.err;
  EXPECT_NE(missing.err.find("nowhere"), std::string::npos) << missing.err;
}

}  // namespace
