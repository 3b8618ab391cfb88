// The `mmref` binary as users run it: exit codes (0 ok, 2 usage/config, 1 runtime), one-line errors,
// `mmref info`, and the default experiment end to end in a temporary folder.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include <torch/version.h>

#include "cli_test_util.h"
#include "core/fs.h"
#include "core/safetensors.h"

namespace {

using mmref_cli_test::Result;
using mmref_cli_test::slurp;

class Cli : public mmref_cli_test::CliFixture {
 protected:
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }

  // A small, fast variant of configs/default.yaml.
  std::string small_config(const std::string& extra = "") {
    return "name: t\ntask: mlp_regression\nruntime: {threads: 1, deterministic: true}\n"
           "data: {path: data/reg.safetensors, train_samples: 512, val_samples: 128}\n"
           "model: {hidden: 16, layers: 2}\n"
           "train: {steps: 40, batch_size: 32, log_every: 10, eval_every: 20, checkpoint_every: 20}\n" +
           extra;
  }

  // The error main() printed: exactly one "mmref: error:" line, and it is the last line on stderr.
  static bool one_error_line(const std::string& err) {
    size_t n = 0, pos = 0;
    while ((pos = err.find("mmref: error:", pos)) != std::string::npos) ++n, ++pos;
    const auto last = err.rfind("mmref: error:");
    return n == 1 && err.find('\n', last) == err.size() - 1 && err.find("[error]") == std::string::npos;
  }

  static int lines(const std::string& s) {
    int n = 0;
    for (char c : s) n += c == '\n';
    return n;
  }
};

TEST_F(Cli, HelpForEverySubcommandExitsZero) {
  EXPECT_EQ(mmref("--help").code, 0);
  for (const char* sub : {"train", "finetune", "sample", "eval", "bench", "data", "info"}) {
    Result r = mmref(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST_F(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(mmref("").code, 2);
  EXPECT_EQ(mmref("frobnicate").code, 2);
  EXPECT_EQ(mmref("train").code, 2);  // CONFIG is required
  EXPECT_EQ(mmref("info --threads -3").code, 2);
}

TEST_F(Cli, InfoReportsVersionsAndThreadsInEffect) {
  Result r = mmref("info");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("mmref      0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libtorch   " TORCH_VERSION), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cuDNN"), std::string::npos);
  EXPECT_NE(r.out.find("GPU"), std::string::npos);
  const unsigned cores = std::thread::hardware_concurrency();
  EXPECT_NE(r.out.find("threads    intra-op " + std::to_string(cores) + " (default: all cores)"),
            std::string::npos) << r.out;

  r = mmref("info --threads 1 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cpu"]["intra_op_threads"], 1);
  EXPECT_EQ(j["libtorch"]["version"], TORCH_VERSION);
  EXPECT_TRUE(j["cuda"]["gpus"].is_array());
  EXPECT_FALSE(j["cuda"]["status"].get<std::string>().empty());
}

TEST_F(Cli, ConfigErrorsExitTwoWithOneLineNamingFileAndKey) {
  Result r = mmref("train missing.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("config file 'missing.yaml' not found"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;

  write("syntax.yaml", "name: x\ntask: [unclosed\n");
  r = mmref("train syntax.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("syntax.yaml:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("YAML syntax error"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;

  write("typo.yaml", small_config("extra_key_never_known: 1\n"));
  write("typo2.yaml", "name: t\ntask: mlp_regression\ntrain:\n  stpes: 10\n");
  r = mmref("train typo2.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("typo2.yaml:4:3: train.stpes: unknown key; did you mean 'steps'?"), std::string::npos)
      << r.err;

  write("ok.yaml", small_config());
  r = mmref("train ok.yaml train.lr=abc");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("train.lr: expected a number, got 'abc'"), std::string::npos) << r.err;

  r = mmref("train ok.yaml train.steps=0");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("train.steps: must be between 1"), std::string::npos) << r.err;

  write("planned.yaml", "name: t\ntask: dit_video\n");
  r = mmref("train planned.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("not implemented in this build"), std::string::npos) << r.err;
}

TEST_F(Cli, PlannedSubcommandsSaySoAndExitTwo) {
  for (const char* sub : {"sample video --prompt cat"}) {
    Result r = mmref(sub);
    EXPECT_EQ(r.code, 2) << sub;
    EXPECT_NE(r.err.find("nothing was run"), std::string::npos) << sub << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
}

TEST_F(Cli, EvalConfigErrorsExitTwoNamingTheKey) {
  Result r = mmref("eval missing.yaml");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  write("e.yaml", "eval: {out: res}\nmetrics:\n  fdi: {real: a, fake: b, weights: w}\n");
  r = mmref("eval e.yaml");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("did you mean 'fid'"), std::string::npos) << r.err;
  write("e2.yaml", "metrics:\n  wer: {references: r.txt, hypotheses: h.txt, casing: lower}\n");
  r = mmref("eval e2.yaml");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("e2.yaml:2"), std::string::npos) << r.err;  // file:line of the bad key
}

TEST_F(Cli, DataMakeUnknownKindListsKinds) {
  Result r = mmref("data make nope --out corpus");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("unknown kind 'nope'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("speech, speech_real, video"), std::string::npos) << r.err;
  r = mmref("data list");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* k : {"regression", "speech", "speech_real", "video", "video_real", "images", "digits", "photos"})
    EXPECT_NE(r.out.find(k), std::string::npos) << k << ": " << r.out;
}

TEST_F(Cli, DataMakeImagesCorpusIsIncremental) {
  Result r = mmref("data make images --out imgs --count 12 --seed 3 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("wrote imgs", 0), 0u) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/imgs/corpus.json"));
  r = mmref("data make images --out imgs --count 12 --seed 3 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("up to date", 0), 0u) << r.out;
  r = mmref("data make speech --out sp --sample-rate 100");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("sample rate 100 is out of range"), std::string::npos) << r.err;
}

TEST_F(Cli, BenchLoaderMeasuresASpeechManifest) {
  Result r = mmref("data make speech --out sp --count 24 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  r = mmref("bench loader sp/train.jsonl --batches 3 --batch-size 4 --step-ms 5 --workers 1 --json b.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("loader alone"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wait fraction"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(slurp(dir_ + "/b.json"));
  EXPECT_GT(j.at("examples_per_s").get<double>(), 0);
  EXPECT_GE(j.at("wait_fraction").get<double>(), 0);
  EXPECT_LE(j.at("wait_fraction").get<double>(), 1);
  EXPECT_EQ(j.at("batches").get<int>(), 3);
  r = mmref("bench loader missing.jsonl");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("missing.jsonl"), std::string::npos) << r.err;
  write("bad.jsonl", "{\"path\": \"nope.wav\", \"text\": \"hi\"}\n");
  r = mmref("bench loader bad.jsonl --batches 1 --batch-size 1 --workers 0");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("bad.jsonl:1"), std::string::npos) << r.err;
}

TEST_F(Cli, FinetuneTrainsLoraAdaptersOnAFrozenBase) {
  write("ok.yaml", small_config());
  Result r = mmref("train ok.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string run = r.out.substr(r.out.find("outputs: ") + 9, r.out.find('\n', r.out.find("outputs: ")) - r.out.find("outputs: ") - 9);
  const std::string base = run + "/checkpoints/ckpt-00000040.safetensors";
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/" + base)) << base;
  // without finetune.base: a usage error, nothing run
  r = mmref("finetune ok.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("no finetune.base"), std::string::npos) << r.err;
  // LoRA r 2 on net.0 and net.1 (8 -> 16 -> 1): 2 * (8 + 16) + 2 * (16 + 1) trainable parameters
  r = mmref("finetune ok.yaml name=ft finetune.base=" + base + " finetune.lora_r=2 finetune.lora_alpha=4 "
            "'finetune.target_modules=net\\.[01]' train.steps=20");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string ft = r.out.substr(r.out.find("outputs: ") + 9, r.out.find('\n', r.out.find("outputs: ")) - r.out.find("outputs: ") - 9);
  const auto summary = nlohmann::json::parse(slurp(dir_ + "/" + ft + "/summary.json"));
  EXPECT_EQ(summary.at("trainable_parameters").get<int64_t>(), 2 * (8 + 16) + 2 * (16 + 1));
  const auto cfg = nlohmann::json::parse(slurp(dir_ + "/" + ft + "/adapter/adapter_config.json"));
  EXPECT_EQ(cfg.at("peft_type"), "LORA");
  EXPECT_EQ(cfg.at("r"), 2);
  // base weights bitwise unchanged, adapters trained (B is no longer zero)
  const auto b = mmref::load_safetensors(dir_ + "/" + base);
  const auto f = mmref::load_safetensors(dir_ + "/" + ft + "/checkpoints/ckpt-00000020.safetensors");
  for (const char* k : {"model.net.0.weight", "model.net.0.bias", "model.net.1.weight", "model.net.1.bias"}) {
    EXPECT_TRUE(torch::equal(b.at(k), f.at(k))) << k;
  }
  EXPECT_GT(f.at("model.net.0.lora_B.weight").abs().sum().item<double>(), 0.0);
  const auto adapter = mmref::load_safetensors(dir_ + "/" + ft + "/adapter/adapter_model.safetensors");
  EXPECT_EQ(adapter.size(), 4u);
  EXPECT_TRUE(adapter.count("base_model.model.net.1.lora_A.weight"));
  // a bad freeze regex is a config error naming the key
  r = mmref("finetune ok.yaml name=ft2 finetune.base=" + base + " 'finetune.freeze=net['");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("finetune.freeze"), std::string::npos) << r.err;
}

TEST_F(Cli, SigintCheckpointsExits130AndResumes) {
  // A run far too long to finish: SIGINT after 2 s must end the step, write a checkpoint, exit 130 with
  // status "interrupted", and --resume auto must continue from it.
  write("long.yaml", small_config("run: {keep_checkpoints: 2}\n"));
  // Wait until the loop runs (its "model:" log line, then 0.5 s) rather than a fixed delay: a signal
  // before the handler exists would be ignored (background jobs of sh ignore SIGINT). A watchdog kills the
  // run after 60 s so a broken handler fails the test instead of hanging it.
  const std::string cmd = "cd '" + dir_ + "' && sh -c '\"" MMREF_BIN "\" train long.yaml train.steps=100000000 "
                          "train.checkpoint_every=100000000 > out.txt 2> err.txt < /dev/null & p=$!; i=0; "
                          "while [ $i -lt 600 ] && ! grep -qs \"model: MLP\" runs/t/*/log.txt; do sleep 0.1; "
                          "i=$((i+1)); done; sleep 0.5; kill -INT $p; (sleep 60; kill -9 $p) > /dev/null 2>&1 & w=$!; "
                          "wait $p; echo $? > rc.txt; kill $w 2>/dev/null; true'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(std::stoi(slurp(dir_ + "/rc.txt")), 130) << slurp(dir_ + "/err.txt");
  const std::string err = slurp(dir_ + "/err.txt");
  EXPECT_NE(err.find("interrupted at step"), std::string::npos) << err;
  EXPECT_NE(err.find("--resume auto"), std::string::npos) << err;
  std::string run;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/runs/t")) run = e.path().string();
  const auto summary = nlohmann::json::parse(slurp(run + "/summary.json"));
  EXPECT_EQ(summary.at("status"), "interrupted");
  std::vector<std::string> ckpts;
  for (const auto& e : std::filesystem::directory_iterator(run + "/checkpoints")) {
    if (e.path().extension() == ".safetensors") ckpts.push_back(e.path().filename().string());
  }
  ASSERT_EQ(ckpts.size(), 1u);
  const int64_t stopped_at = std::stoll(ckpts[0].substr(5, 8));
  EXPECT_GT(stopped_at, 0);
  Result r = mmref("train long.yaml train.steps=" + std::to_string(stopped_at + 10) +
                   " train.checkpoint_every=100000000 --resume auto");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto resumed = nlohmann::json::parse(slurp(run + "/summary.json"));
  EXPECT_EQ(resumed.at("status"), "ok");
  EXPECT_EQ(resumed.at("steps_run"), 10);
}

TEST_F(Cli, DataMakeRegressionIsIncremental) {
  Result r = mmref("data make regression --out reg --train-samples 100 --val-samples 10");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote reg/regression.safetensors (100 train, 10 val"), std::string::npos) << r.out;
  r = mmref("data make regression --out reg --train-samples 100 --val-samples 10");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("up to date"), std::string::npos) << r.out;
}

TEST_F(Cli, TrainWritesRunFolderAndEffectiveConfigReRuns) {
  write("ok.yaml", small_config());
  Result r = mmref("train ok.yaml model.hidden=8");
  ASSERT_EQ(r.code, 0) << r.err;
  auto p = r.out.find("outputs: ");
  ASSERT_NE(p, std::string::npos) << r.out;
  const std::string run = r.out.substr(p + 9, r.out.find('\n', p) - p - 9);
  const std::string abs = dir_ + "/" + run;
  for (const char* f : {"config.yaml", "metrics.jsonl", "summary.json", "log.txt", "checkpoints/latest"}) {
    EXPECT_TRUE(mmref::fs::exists(abs + "/" + f)) << f;
  }
  auto summary = nlohmann::json::parse(slurp(abs + "/summary.json"));
  EXPECT_EQ(summary["status"], "ok");
  EXPECT_EQ(summary["steps"], 40);
  EXPECT_GT(summary["wall_time_s"].get<double>(), 0.0);
  // 40 steps / log_every 10 -> 4 train lines, eval at 20 and 40 -> 2 val lines.
  EXPECT_EQ(lines(slurp(abs + "/metrics.jsonl")), 6);
  const std::string eff = slurp(abs + "/config.yaml");
  EXPECT_NE(eff.find("hidden: 8"), std::string::npos) << eff;       // the override
  EXPECT_NE(eff.find("weight_decay: 0.01"), std::string::npos) << eff;  // a default, filled in
  // The effective config runs as is.
  r = mmref("train " + run + "/config.yaml");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(Cli, ResumeAutoContinuesNewestRunFromItsCheckpoint) {
  write("ok.yaml", small_config());
  Result first = mmref("train ok.yaml train.steps=20");
  ASSERT_EQ(first.code, 0) << first.err;
  Result second = mmref("train ok.yaml --resume auto");
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_NE(second.err.find("at step 20"), std::string::npos) << second.err;
  const auto run_of = [](const std::string& out) {
    auto p = out.find("outputs: ");
    return out.substr(p + 9, out.find('\n', p) - p - 9);
  };
  EXPECT_EQ(run_of(first.out), run_of(second.out));  // same run folder, appended
  auto summary = nlohmann::json::parse(slurp(dir_ + "/" + run_of(second.out) + "/summary.json"));
  EXPECT_EQ(summary["steps_run"], 20);
  EXPECT_EQ(mmref("train ok.yaml --resume nowhere").code, 2);
}

TEST_F(Cli, RuntimeFailureExitsOneAndKeepsCheckpoint) {
  write("bad_data.yaml", small_config());
  std::system(("mkdir -p '" + dir_ + "/data' && head -c 100 /dev/urandom > '" + dir_ + "/data/reg.safetensors'").c_str());
  Result r = mmref("train bad_data.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("data/reg.safetensors"), std::string::npos) << r.err;
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  std::system(("rm -f '" + dir_ + "/data/reg.safetensors'").c_str());

  // A learning rate that blows the weights up: step 1 is finite and checkpointed, then the loss is not.
  write("nan.yaml", small_config());
  r = mmref("train nan.yaml train.lr=1e12 train.grad_clip=0 train.warmup_steps=0 train.checkpoint_every=1");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.err.find("loss is"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ckpt-00000001.safetensors"), std::string::npos) << r.err;
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  // The failure is recorded next to the checkpoint that survived it, which still loads.
  auto p = r.err.find("Last good checkpoint: ");
  ASSERT_NE(p, std::string::npos);
  p += 22;
  const std::string ck = r.err.substr(p, r.err.find(".safetensors", p) + 12 - p);
  const std::string run_dir = ck.substr(0, ck.find("/checkpoints/"));
  auto summary = nlohmann::json::parse(slurp(dir_ + "/" + run_dir + "/summary.json"));
  EXPECT_EQ(summary["status"], "failed");
  EXPECT_NE(slurp(dir_ + "/" + run_dir + "/log.txt").find("loss is"), std::string::npos);
  EXPECT_EQ(mmref("data make regression --out x").code, 0);  // sanity: binary still fine
  EXPECT_TRUE(mmref::fs::exists(dir_ + "/" + ck));
}

}  // namespace

namespace {

// The run folder named on the "outputs: " line.
std::string run_of(const std::string& out) {
  auto p = out.find("outputs: ");
  return p == std::string::npos ? "" : out.substr(p + 9, out.find('\n', p) - p - 9);
}

}  // namespace

TEST_F(Cli, DataParallelTwoProcessesMatchOneProcessWithTheDoubleBatch) {
  // 2 workers x batch 16 (Gloo on loopback, gradients all-reduced) against 1 process x batch 32: the
  // same samples per step, so the same weights after 40 steps within 1e-6; also with accumulation.
  write("dp.yaml", small_config());
  for (const char* accum : {"1", "2"}) {
    const std::string a = std::string(" train.grad_accum_steps=") + accum;
    Result two = mmref("train dp.yaml --nproc 2 train.batch_size=16 run.root=r2" + a);
    ASSERT_EQ(two.code, 0) << two.err;
    Result one = mmref("train dp.yaml train.batch_size=32 run.root=r1" + a);
    ASSERT_EQ(one.code, 0) << one.err;
    const std::string r2 = run_of(two.out), r1 = run_of(one.out);
    const auto s2 = nlohmann::json::parse(slurp(dir_ + "/" + r2 + "/summary.json"));
    EXPECT_EQ(s2.at("world_size"), 2);
    EXPECT_EQ(s2.at("threads"), 1);
    const auto w2 = mmref::load_safetensors(dir_ + "/" + r2 + "/checkpoints/ckpt-00000040.safetensors");
    const auto w1 = mmref::load_safetensors(dir_ + "/" + r1 + "/checkpoints/ckpt-00000040.safetensors");
    int compared = 0;
    for (const auto& [k, t] : w1) {
      if (k.rfind("model.", 0) != 0) continue;
      ASSERT_TRUE(w2.count(k)) << k;
      EXPECT_LT((t - w2.at(k)).abs().max().item<double>(), 1e-6) << k << " accum " << accum;
      ++compared;
    }
    EXPECT_EQ(compared, 4);
    // Rank 0 alone wrote a run folder.
    int runs = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/r2/t")) runs += e.is_directory();
    EXPECT_EQ(runs, std::string(accum) == "1" ? 1 : 2);
  }
}

TEST_F(Cli, DataParallelDeadWorkerMakesTheOthersFailNotHang) {
  // Two ranks started by hand as a launcher would (torchrun's variables); rank 1 is killed with SIGKILL
  // once training runs. Rank 0 must exit 1 with an error naming the failed collective well before the
  // watchdog (90 s; distributed.timeout_s is 30).
  write("dp.yaml", small_config());
  const std::string port = std::to_string(20000 + ::getpid() % 20000);
  const std::string run = "\"" MMREF_BIN "\" train dp.yaml train.steps=100000000 train.checkpoint_every=100000000 "
                          "distributed.timeout_s=30";
  const std::string cmd =
      "cd '" + dir_ + "' && sh -c 'export WORLD_SIZE=2 MASTER_PORT=" + port + "; RANK=0 timeout 90 " + run +
      " > out0.txt 2> err0.txt < /dev/null & p0=$!; RANK=1 " + run +
      " > out1.txt 2> err1.txt < /dev/null & p1=$!; i=0; while [ $i -lt 600 ] && ! grep -qs \"data parallel: rank 0\" "
      "runs/t/*/log.txt; do sleep 0.1; i=$((i+1)); done; sleep 1; kill -9 $p1; wait $p0; echo $? > rc.txt; true'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string err = slurp(dir_ + "/err0.txt");
  EXPECT_EQ(std::stoi(slurp(dir_ + "/rc.txt")), 1) << err;  // 124 would mean the watchdog fired: a hang
  EXPECT_TRUE(one_error_line(err)) << err;
  EXPECT_NE(err.find("data parallel, rank 0 of 2"), std::string::npos) << err;
  EXPECT_NE(err.find("failed"), std::string::npos) << err;
}

TEST_F(Cli, DataParallelSigintStopsAllWorkersAndResumes) {
  // SIGINT to the --nproc parent is forwarded: every rank agrees to stop after the same step, rank 0
  // writes one checkpoint, the parent exits 130; --resume auto --nproc 2 continues from it.
  write("dp.yaml", small_config());
  const std::string cmd = "cd '" + dir_ + "' && sh -c '\"" MMREF_BIN "\" train dp.yaml --nproc 2 train.steps=100000000 "
                          "train.checkpoint_every=100000000 > out.txt 2> err.txt < /dev/null & p=$!; i=0; "
                          "while [ $i -lt 600 ] && ! grep -qs \"data parallel: rank 0\" runs/t/*/log.txt; do sleep 0.1; "
                          "i=$((i+1)); done; sleep 1; kill -INT $p; (sleep 60; kill -9 $p) > /dev/null 2>&1 & w=$!; "
                          "wait $p; echo $? > rc.txt; kill $w 2>/dev/null; true'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(std::stoi(slurp(dir_ + "/rc.txt")), 130) << slurp(dir_ + "/err.txt");
  std::string run;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/runs/t")) run = e.path().string();
  std::vector<std::string> ckpts;
  for (const auto& e : std::filesystem::directory_iterator(run + "/checkpoints")) {
    if (e.path().extension() == ".safetensors") ckpts.push_back(e.path().filename().string());
  }
  ASSERT_EQ(ckpts.size(), 1u) << slurp(dir_ + "/err.txt");
  const int64_t stopped_at = std::stoll(ckpts[0].substr(5, 8));
  Result r = mmref("train dp.yaml --nproc 2 train.steps=" + std::to_string(stopped_at + 10) +
                   " train.checkpoint_every=100000000 --resume auto");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto resumed = nlohmann::json::parse(slurp(run + "/summary.json"));
  EXPECT_EQ(resumed.at("steps_run"), 10);
  EXPECT_EQ(resumed.at("world_size"), 2);
}

TEST_F(Cli, BenchTrainStepComparesBareEngineAndPythonEager) {
  Result r = mmref("bench train-step --hidden 32 --layers 2 --batch-size 16 --steps 20 --warmup 2 --rounds 1 "
                   "--json step.json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("overhead"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(slurp(dir_ + "/step.json"));
  EXPECT_GT(j.at("bare_ms").get<double>(), 0);
  EXPECT_GT(j.at("engine_ms").get<double>(), 0);
  // Debian's python3-torch is a test dependency (scripts/install_deps.sh): the peer must have run.
  ASSERT_TRUE(j.contains("python_ms")) << r.out;
  EXPECT_GT(j.at("python_over_engine").get<double>(), 0);
}

namespace {

// `mmref train` on a diffusion config (a few steps of a small UNet on a small shapes corpus), then
// `mmref sample diffusion` from its checkpoint: PNGs + prompts.jsonl; a class label for a text model and
// a missing checkpoint are one-line errors with exit 2 / 1.
TEST_F(Cli, DiffusionTrainThenSampleWritesImages) {
  Result r = mmref("data make images --out shapes --count 30 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  write("d.yaml",
        "name: d\ntask: diffusion_unet\nruntime: {threads: 2}\n"
        "data: {kind: images, dir: shapes, size: 32, make_if_missing: false}\n"
        "model: {preset: tiny, block_out_channels: [16, 32], down_block_types: [DownBlock2D, CrossAttnDownBlock2D], "
        "up_block_types: [CrossAttnUpBlock2D, UpBlock2D], norm_num_groups: 8, cross_attention_dim: 32, "
        "attention_head_dim: 4}\n"
        "text_encoder: {layers: 1, heads: 2}\n"
        "sample: {sampler: {name: ddim, num_inference_steps: 2}, count: 2, val_count: 0, final_count: 0}\n"
        "train: {steps: 2, batch_size: 4, log_every: 1, eval_every: 2, checkpoint_every: 2}\n");
  r = mmref("train d.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string ck = [&] {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/runs/d")) {
      if (e.path().filename() == "ckpt-00000002.safetensors") return e.path().string();
    }
    return std::string();
  }();
  ASSERT_FALSE(ck.empty());
  r = mmref("sample diffusion --checkpoint " + ck +
            " --prompt 'a large red square on the left' --prompt 'two small blue circles at the top' --count 2 "
            "--steps 3 --sampler euler --cfg 2 --seed 4 --out imgs");
  ASSERT_EQ(r.code, 0) << r.err;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(mmref::fs::exists(dir_ + "/imgs/0000" + std::to_string(i) + ".png")) << i;
  const std::string jl = slurp(dir_ + "/imgs/prompts.jsonl");
  EXPECT_EQ(lines(jl), 4);
  EXPECT_NE(jl.find("\"sampler\":\"euler\""), std::string::npos) << jl;
  r = mmref("sample diffusion --checkpoint " + ck + " --label 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--prompt"), std::string::npos) << r.err;
  r = mmref("sample diffusion --checkpoint nowhere.safetensors --prompt x");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nowhere.safetensors"), std::string::npos) << r.err;
  // img2img and inpainting from the command line: an init image in another format and size (a 40 x 24
  // binary PPM, resized to the model's 32 px) and a mask whose black half is kept; the options are
  // recorded in prompts.jsonl (the kept region's exactness: DiffusionTaskSlow). --mask alone is a usage error.
  auto ppm = [&](const std::string& name, int w, int h, auto rgb) {
    std::ofstream f(dir_ + "/" + name, std::ios::binary);
    f << "P6\n" << w << " " << h << "\n255\n";
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int c = 0; c < 3; ++c) f.put(static_cast<char>(rgb(x, y, c)));
      }
    }
  };
  ppm("init.ppm", 40, 24, [](int x, int, int c) { return c == 0 && x < 20 ? 220 : 30; });
  ppm("mask.ppm", 32, 32, [](int x, int, int) { return x >= 16 ? 255 : 0; });
  r = mmref("sample diffusion --checkpoint " + ck + " --prompt 'a large red square on the left' --init-image " +
            dir_ + "/init.ppm --strength 0.5 --steps 4 --out i2i");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(mmref::fs::exists(dir_ + "/i2i/00000.png"));
  EXPECT_NE(slurp(dir_ + "/i2i/prompts.jsonl").find("\"strength\":0.5"), std::string::npos);
  r = mmref("sample diffusion --checkpoint " + ck + " --prompt 'a large red square on the left' --init-image " +
            dir_ + "/init.ppm --mask " + dir_ + "/mask.ppm --steps 3 --out inpaint");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(mmref::fs::exists(dir_ + "/inpaint/00000.png"));
  const std::string ij = slurp(dir_ + "/inpaint/prompts.jsonl");
  EXPECT_NE(ij.find("\"mask\""), std::string::npos) << ij;
  EXPECT_NE(ij.find("\"strength\":1.0"), std::string::npos) << ij;
  r = mmref("sample diffusion --checkpoint " + ck + " --prompt x --mask " + dir_ + "/mask.ppm");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(one_error_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--init-image"), std::string::npos) << r.err;
}

}  // namespace
