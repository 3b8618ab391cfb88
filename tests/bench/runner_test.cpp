// The sweep runner (src/bench/runner.h) on fake targets: records and their fields, warm-up and repeat
// budgets, an out-of-memory point (a fake allocator failure thrown from run() at large batch, both as
// c10::OutOfMemoryError and as libtorch 1.13's c10::Error "out of memory") recorded as "oom" while the
// sweep goes on, other errors, and Python peers that succeed, fail or are missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/Functions.h>
#include <c10/util/Exception.h>

#include "bench/runner.h"
#include "bench/spec.h"
#include "bench/target.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"

namespace mmref::bench {
namespace {

// A cheap call; fails like an allocator at batch >= 64 (OutOfMemoryError) and >= 128 (1.13-style
// c10::Error), and with a plain error when `fail` is set. The peer script comes from the point.
class FakeTarget : public Target {
 public:
  Work prepare(const Point& p) override {
    batch_ = p.get_int("batch", 1);
    fail_ = p.get_bool("fail", false);
    a_ = at::randn({16, 16});
    ++prepared;
    return {/*units=*/static_cast<double>(batch_), /*unit=*/"items/s", /*audio_seconds=*/p.get_double("audio", 0),
            /*flops=*/2.0 * 16 * 16 * 16};
  }
  void run() override {
    if (fail_) throw Error("fake target: boom");
    if (batch_ >= 128) TORCH_CHECK(false, "CUDA error: out of memory (fake, 1.13 style)");
    if (batch_ >= 64) TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 8.00 GiB (fake)");
    (void)at::mm(a_, a_);
  }
  PeerSpec peer(const Point& p) const override { return {p.get_string("peer_script", ""), {{"extra", 7}}}; }
  static inline int prepared = 0;

 private:
  int64_t batch_ = 1;
  bool fail_ = false;
  at::Tensor a_;
};

class BenchRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    register_target("test.fake", "fake target for runner tests", [] { return std::make_unique<FakeTarget>(); });
    dir_ = fs::make_temp_dir("mmref_bench_runner_");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  RunSummary run(const std::string& yaml) {
    RunOptions o;
    o.out_dir = dir_ + "/out";
    o.python = "/usr/bin/python3";
    return run_bench_file(parse_bench_file(config::parse_yaml(yaml, "t.yaml"), "t"), o);
  }
  std::string script(const std::string& name, const std::string& body) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << body;
    return p;
  }
  std::string dir_;
};

TEST_F(BenchRunner, RecordsHaveEveryFieldAndAreWrittenAsJsonl) {
  const RunSummary s = run(
      "name: fields\ntarget: test.fake\ndevice: cpu\nsettings: {audio: 2.0}\nsweep: {batch: [1, 4]}\n"
      "warmup: {count: 2}\nrepeats: {count: 5}\n");
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.ok, 2);
  EXPECT_NE(s.jsonl_path.find("/out/fields-"), std::string::npos);
  EXPECT_EQ(s.jsonl_path.substr(s.jsonl_path.size() - 6), ".jsonl");
  std::ifstream in(s.jsonl_path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 2u);
  const nlohmann::json& r = lines[1];
  for (const char* k : {"schema", "bench", "target", "impl", "point", "config", "status", "error", "latency_ms",
                        "warmup", "throughput", "rtf", "memory", "flops", "tflops", "mfu", "peer_ratio", "env"}) {
    EXPECT_TRUE(r.contains(k)) << k;
  }
  EXPECT_EQ(r["schema"], "mmref.bench.v1");
  EXPECT_EQ(r["bench"], "fields");
  EXPECT_EQ(r["impl"], "mmref");
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["point"], (nlohmann::json{{"batch", 4}}));  // only the swept key
  EXPECT_EQ(r["config"]["audio"], 2.0);                    // settings in the full config
  EXPECT_EQ(r["config"]["repeats"]["count"], 5);
  EXPECT_EQ(r["warmup"]["count"], 2);
  EXPECT_EQ(r["latency_ms"]["n"], 5);
  const double p50 = r["latency_ms"]["p50"];
  EXPECT_GT(p50, 0);
  EXPECT_NEAR(r["throughput"]["value"].get<double>(), 4 / (p50 / 1e3), 1e-6 * (4 / (p50 / 1e3)));
  EXPECT_EQ(r["throughput"]["unit"], "items/s");
  EXPECT_NEAR(r["rtf"].get<double>(), p50 / 1e3 / 2.0, 1e-12);
  EXPECT_NEAR(r["tflops"].get<double>(), 8192 / (p50 / 1e3) / 1e12, 1e-9);
  EXPECT_TRUE(r["mfu"].is_null());  // no peak for a CPU
  EXPECT_GT(r["memory"]["peak_rss_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(r["memory"]["peak_allocated_bytes"].is_null());
  for (const char* k : {"device", "device_name", "device_memory_bytes", "driver_version", "cuda_version",
                        "cudnn_version", "torch_version", "mmref_commit", "mmref_dirty", "cpu_model", "cpu_cores",
                        "threads", "hostname", "time_utc"}) {
    EXPECT_TRUE(r["env"].contains(k)) << k;
  }
  EXPECT_EQ(r["env"]["device"], "cpu");
}

TEST_F(BenchRunner, RepeatsRunToSecondsButNotPastMax) {
  const RunSummary s = run(
      "target: test.fake\ndevice: cpu\npoints: [{batch: 1}]\nwarmup: {count: 1, seconds: 0.05}\n"
      "repeats: {count: 3, seconds: 30, max: 40}\n");
  ASSERT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.records[0]["latency_ms"]["n"], 40);  // the 30 s budget is cut by max
  EXPECT_GE(s.records[0]["warmup"]["seconds"].get<double>(), 0.05);
  EXPECT_GE(s.records[0]["warmup"]["count"].get<int64_t>(), 1);
}

TEST_F(BenchRunner, OutOfMemoryIsRecordedWithTheSizeAndTheSweepGoesOn) {
  const RunSummary s = run("target: test.fake\ndevice: cpu\nsweep: {batch: [16, 64, 128, 32]}\nrepeats: {count: 2}\n");
  ASSERT_EQ(s.records.size(), 4u);
  EXPECT_EQ(s.ok, 2);
  EXPECT_EQ(s.oom, 2);
  EXPECT_EQ(s.error, 0);
  EXPECT_EQ(s.records[0]["status"], "ok");
  for (int i : {1, 2}) {
    const auto& r = s.records[i];
    EXPECT_EQ(r["status"], "oom") << i;
    const std::string msg = r["error"];
    EXPECT_NE(msg.find("out of memory at"), std::string::npos) << msg;
    EXPECT_NE(msg.find(i == 1 ? "\"batch\":64" : "\"batch\":128"), std::string::npos) << msg;
    EXPECT_TRUE(r["latency_ms"].is_null());
  }
  EXPECT_EQ(s.records[3]["status"], "ok");  // the point after the OOMs still ran
  EXPECT_EQ(s.records[3]["point"]["batch"], 32);
}

TEST_F(BenchRunner, OtherErrorsAreRecordedAsErrors) {
  const RunSummary s = run("target: test.fake\ndevice: cpu\npoints: [{fail: true}, {batch: 2}]\nrepeats: {count: 1}\n");
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0]["status"], "error");
  EXPECT_NE(s.records[0]["error"].get<std::string>().find("boom"), std::string::npos);
  EXPECT_EQ(s.records[1]["status"], "ok");
  EXPECT_EQ(s.error, 1);
}

TEST_F(BenchRunner, PeersOkFailingAndMissing) {
  // The good peer echoes its arguments: --repeats must be mmref's count, --point the merged values.
  const std::string good = script("good.py",
                                  "import argparse, json\n"
                                  "ap = argparse.ArgumentParser()\n"
                                  "for a in ('--point', '--device', '--warmup', '--repeats', '--threads'): ap.add_argument(a)\n"
                                  "a = ap.parse_args()\n"
                                  "p = json.loads(a.point)\n"
                                  "assert p['extra'] == 7 and p['batch'] == 2 and a.device == 'cpu', a\n"
                                  "print('noise before the result')\n"
                                  "print(json.dumps({'times_ms': [2.0] * int(a.repeats), 'peak_rss_bytes': 123,\n"
                                  "                  'torch_version': 'fake-9.9'}))\n");
  const std::string bad = script("bad.py", "import sys\nsys.stderr.write('peer exploded\\n')\nsys.exit(3)\n");
  const RunSummary s = run("target: test.fake\ndevice: cpu\npeer: true\nrepeats: {count: 4}\nsettings: {batch: 2}\n"
                           "points: [{peer_script: '" + bad + "'}, {peer_script: '" + dir_ + "/none.py'}, "
                           "{peer_script: '" + good + "'}]\n");
  ASSERT_EQ(s.records.size(), 6u);  // mmref + peer per point
  EXPECT_EQ(s.ok, 3);
  EXPECT_EQ(s.peers_ok, 1);
  EXPECT_EQ(s.peers_failed, 2);
  EXPECT_EQ(s.records[1]["impl"], "python-eager");
  EXPECT_EQ(s.records[1]["status"], "error");
  EXPECT_NE(s.records[1]["error"].get<std::string>().find("peer exploded"), std::string::npos);
  EXPECT_NE(s.records[1]["error"].get<std::string>().find("exited with 3"), std::string::npos);
  EXPECT_TRUE(s.records[0]["peer_ratio"].is_null());
  EXPECT_EQ(s.records[3]["status"], "error");
  EXPECT_NE(s.records[3]["error"].get<std::string>().find("does not exist"), std::string::npos);
  const auto& m = s.records[4];
  const auto& p = s.records[5];
  EXPECT_EQ(p["status"], "ok");
  EXPECT_EQ(p["latency_ms"]["n"], 4);
  EXPECT_DOUBLE_EQ(p["latency_ms"]["p50"].get<double>(), 2.0);
  EXPECT_EQ(p["memory"]["peak_rss_bytes"], 123);
  EXPECT_EQ(p["env"]["torch_version"], "fake-9.9");
  EXPECT_NEAR(m["peer_ratio"].get<double>(), 2.0 / m["latency_ms"]["p50"].get<double>(), 1e-9);
}

TEST_F(BenchRunner, UnknownTargetFailsBeforeWritingAndDryRunListsPoints) {
  EXPECT_THROW(run("target: no.such\ndevice: cpu\n"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/out"));
  const BenchFile f = parse_bench_file(config::parse_yaml("name: d\ntarget: test.fake\nsweep: {batch: [1, 2]}\n", "d"), "d");
  const std::string text = describe_points(f);
  EXPECT_NE(text.find("{\"batch\":2}"), std::string::npos) << text;
  EXPECT_NE(text.find("1 bench(es), 2 point(s)"), std::string::npos) << text;
}

}  // namespace
}  // namespace mmref::bench
