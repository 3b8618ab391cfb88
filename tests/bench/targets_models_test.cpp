// The model bench targets (src/bench/targets_asr.cpp, targets_diffusion.cpp) at tiny points:
//   AsrBenchTargets        asr.conformer.infer / train_step prepare and run; Work (audio seconds, units,
//                          FLOPs against the hand count below); LoRA; bad settings throw mmref::Error
//   DiffusionBenchTargets  diffusion.unet.forward / diffusion.sampler prepare and run; cfg doubles the
//                          rows (FLOPs) but not the units; sampler FLOPs = evaluations x UNet FLOPs
//   ModelBenchPeers        benchmarks/peers/{conformer_torchaudio,unet2d_eager}.py run once each through
//                          /usr/bin/python3 (Debian's python3-torch, python3-torchaudio) with the protocol
//   build/cpu/bin/mmref_bench_tests --gtest_filter='*BenchTargets*:ModelBenchPeers*'
//
// Hand count of the Conformer FLOPs (2 x multiply-adds) for the 8-dim model of kTinyConformerYaml
// (D 8, 2 heads, U 16 units, 1 block, kernel 3, conv2d x4), vocab 4, batch 1, 0.15 s = 15 frames:
//   conv 1:  t = (15-3)/2+1 = 7,  f = (80-3)/2+1 = 39    2 * 8 * 1 * 9 * 7 * 39  =  39,312
//   conv 2:  t = (7-3)/2+1 = 3,   f = (39-3)/2+1 = 19    2 * 8 * 8 * 9 * 3 * 19  =  65,664
//   embed.out Linear(8 * 19, 8) on 3 frames              2 * 3 * 152 * 8         =   7,296
//   block, T' = 3:  two feed-forwards 2 * (2 * 2 * 3 * 8 * 16)                   =   3,072
//                   linear_q, k, v, out 4 * 2 * 3 * 8 * 8                         =   1,536
//                   q k^T, q p^T, att v 3 * 2 * 3 * 3 * 8                          =     432
//                   conv module 2*3*8*16 + 2*3*8*3 + 2*3*8*8                      =   1,296
//   linear_pos (once per batch) 2 * 3 * 8 * 8                                      =     384
//   CTC Linear(8, 4) 2 * 3 * 8 * 4                                                 =     192
//   total                                                                          = 119,184
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/target.h"
#include "core/error.h"
#include "models/diffusion/unet2d.h"

namespace mmref::bench {
namespace {

const std::string kSource = MMREF_SOURCE_DIR;

constexpr const char* kTinyConformerYaml = R"(model:
  output_size: 8
  attention_heads: 2
  linear_units: 16
  num_blocks: 1
  dropout_rate: 0.0
  input_layer: conv2d
  cnn_module_kernel: 3
)";

Point point(nlohmann::json v) {
  Point p;
  p.values = std::move(v);
  return p;
}

std::string tiny_conformer_config() {
  const auto dir = std::filesystem::temp_directory_path() / "mmref_bench_targets_models_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "conformer_8.yaml").string();
  std::ofstream(path) << kTinyConformerYaml;
  return path;
}

Work prepare_and_run(const std::string& target, const nlohmann::json& values, int runs = 1) {
  auto t = make_target(target);
  const Work w = t->prepare(point(values));
  for (int i = 0; i < runs; ++i) t->run();
  return w;
}

void expect_error(const std::string& target, const nlohmann::json& values, const std::string& needle) {
  auto t = make_target(target);
  try {
    t->prepare(point(values));
    ADD_FAILURE() << target << " accepted " << values.dump();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(AsrBenchTargets, Registered) {
  int found = 0;
  for (const auto& [name, description] : target_list()) {
    if (name == "asr.conformer.infer" || name == "asr.conformer.train_step" || name == "diffusion.unet.forward" ||
        name == "diffusion.sampler") {
      ++found;
      EXPECT_FALSE(description.empty()) << name;
    }
  }
  EXPECT_EQ(found, 4);
}

TEST(AsrBenchTargets, InferDefaultModelWork) {
  // The default model: configs/asr/conformer_tiny.yaml's model section, found from any working directory
  // (relative paths fall back to the repository root).
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(std::filesystem::temp_directory_path());
  const Work w = prepare_and_run("asr.conformer.infer", {{"batch", 2}, {"seconds", 0.5}});
  std::filesystem::current_path(cwd);
  EXPECT_DOUBLE_EQ(w.audio_seconds, 1.0);
  EXPECT_DOUBLE_EQ(w.units, 1.0);
  EXPECT_EQ(w.unit, "audio s/s");
  EXPECT_GT(w.flops, 0);
}

TEST(AsrBenchTargets, InferFlopsMatchHandCount) {
  const std::string cfg = tiny_conformer_config();
  const Work w = prepare_and_run("asr.conformer.infer", {{"seconds", 0.15}, {"vocab", 4}, {"config", cfg}});
  EXPECT_DOUBLE_EQ(w.flops, 119184);
  EXPECT_DOUBLE_EQ(w.audio_seconds, 0.15);
  // Batch scales everything but linear_pos (once per batch).
  const Work w3 = prepare_and_run("asr.conformer.infer", {{"seconds", 0.15}, {"vocab", 4}, {"batch", 3}, {"config", cfg}});
  EXPECT_DOUBLE_EQ(w3.flops, 3 * (119184 - 384) + 384);
}

TEST(AsrBenchTargets, InferBackendsAndPresetRun) {
  const std::string cfg = tiny_conformer_config();
  for (const char* b : {"mmref", "reference", "torch"}) {
    EXPECT_NO_THROW(prepare_and_run("asr.conformer.infer", {{"seconds", 0.3}, {"backend", b}, {"config", cfg}})) << b;
  }
  EXPECT_NO_THROW(prepare_and_run("asr.conformer.infer", {{"seconds", 0.2}, {"preset", "tiny"}}));
  EXPECT_NO_THROW(prepare_and_run("asr.conformer.infer", {{"seconds", 0.3}, {"dtype", "bfloat16"}, {"config", cfg}}));
}

TEST(AsrBenchTargets, InferPeerCarriesTheModel) {
  // The runner asks for the peer before prepare(): it comes from the point alone.
  auto t = make_target("asr.conformer.infer");
  const Point p = point({{"batch", 2}, {"seconds", 0.5}, {"config", tiny_conformer_config()}});
  const PeerSpec s = t->peer(p);
  EXPECT_EQ(s.script, "benchmarks/peers/conformer_torchaudio.py");
  EXPECT_EQ(s.args.at("mode"), "infer");
  EXPECT_EQ(s.args.at("frames"), 50);
  EXPECT_EQ(s.args.at("batch"), 2);
  EXPECT_EQ(s.args.at("model").at("d_model"), 8);
  EXPECT_EQ(s.args.at("model").at("ffn"), 16);
  EXPECT_EQ(s.args.at("model").at("layers"), 1);
}

TEST(AsrBenchTargets, TrainStepRunsWithAndWithoutLora) {
  const std::string cfg = tiny_conformer_config();
  const nlohmann::json v = {{"batch", 2}, {"seconds", 0.3}, {"vocab", 4}, {"config", cfg}};
  const Work infer = prepare_and_run("asr.conformer.infer", v);
  auto t = make_target("asr.conformer.train_step");
  const Work w = t->prepare(point(v));
  t->run();
  t->run();
  EXPECT_DOUBLE_EQ(w.units, 1);
  EXPECT_EQ(w.unit, "steps/s");
  EXPECT_DOUBLE_EQ(w.audio_seconds, 0);
  EXPECT_DOUBLE_EQ(w.flops, 3 * infer.flops);
  const PeerSpec s = make_target("asr.conformer.train_step")->peer(point(v));
  EXPECT_EQ(s.args.at("mode"), "train");
  EXPECT_EQ(s.args.at("tokens"), 3);  // 12/s x 0.3 s = 3.6 -> 4, capped at T'/2 = 6/2 = 3 (30 frames -> 14 -> 6)

  nlohmann::json lv = v;
  lv["lora"] = true;
  auto tl = make_target("asr.conformer.train_step");
  const Work wl = tl->prepare(point(lv));
  tl->run();
  EXPECT_DOUBLE_EQ(wl.flops, 2 * infer.flops);
  EXPECT_TRUE(make_target("asr.conformer.train_step")->peer(point(lv)).script.empty());
}

TEST(AsrBenchTargets, BadSettingsThrow) {
  const std::string cfg = tiny_conformer_config();
  for (const char* t : {"asr.conformer.infer", "asr.conformer.train_step"}) {
    expect_error(t, {{"batch", -1}, {"config", cfg}}, "'batch' must be >= 1");
    expect_error(t, {{"seconds", 0}, {"config", cfg}}, "'seconds' must be > 0");
    expect_error(t, {{"seconds", 0.04}, {"config", cfg}}, "too short");
    expect_error(t, {{"preset", "huge"}}, "preset 'huge' is unknown");
    expect_error(t, {{"preset", "tiny"}, {"config", cfg}}, "not both");
    expect_error(t, {{"config", "no/such.yaml"}}, "does not exist");
    expect_error(t, {{"dtype", "int8"}, {"config", cfg}}, "dtype 'int8'");
    expect_error(t, {{"backend", "cudnn"}, {"config", cfg}}, "cudnn");
    expect_error(t, {{"batch", "two"}, {"config", cfg}}, "'batch' must be an integer");
  }
  expect_error("asr.conformer.train_step", {{"lora", true}, {"lora_target", "nothing"}, {"config", cfg}}, "nothing");
}

TEST(DiffusionBenchTargets, UnetForwardWork) {
  const Work w = prepare_and_run("diffusion.unet.forward", {{"batch", 2}, {"resolution", 16}});
  EXPECT_DOUBLE_EQ(w.units, 2);
  EXPECT_EQ(w.unit, "images/s");
  EXPECT_DOUBLE_EQ(w.audio_seconds, 0);
  EXPECT_GT(w.flops, 0);
  // cfg: twice the rows (so twice the FLOPs), the same images.
  auto t = make_target("diffusion.unet.forward");
  const Point p = point({{"batch", 2}, {"resolution", 16}, {"cfg", true}});
  const Work wc = t->prepare(p);
  t->run();
  EXPECT_DOUBLE_EQ(wc.units, 2);
  EXPECT_DOUBLE_EQ(wc.flops, 2 * w.flops);
  const PeerSpec s = make_target("diffusion.unet.forward")->peer(p);
  EXPECT_EQ(s.script, "benchmarks/peers/unet2d_eager.py");
  EXPECT_EQ(s.args.at("rows"), 4);
  EXPECT_EQ(s.args.at("unet").at("block_out_channels"), nlohmann::json({32, 64, 64}));
}

TEST(DiffusionBenchTargets, UnetPresetsConfigsAndBackends) {
  EXPECT_NO_THROW(prepare_and_run("diffusion.unet.forward", {{"preset", "tiny_class"}, {"resolution", 8}}));
  const Work shapes = prepare_and_run(
      "diffusion.unet.forward", {{"config", "configs/diffusion/shapes_32.yaml"}, {"resolution", 8}});
  const Work tiny = prepare_and_run("diffusion.unet.forward", {{"resolution", 8}});
  EXPECT_LT(shapes.flops, tiny.flops);  // 16/32/64 channels against 32/64/64
  for (const char* b : {"reference", "torch"}) {
    EXPECT_NO_THROW(prepare_and_run("diffusion.unet.forward", {{"resolution", 8}, {"attention_backend", b}})) << b;
  }
  EXPECT_NO_THROW(prepare_and_run("diffusion.unet.forward", {{"resolution", 8}, {"dtype", "bfloat16"}}));
}

TEST(DiffusionBenchTargets, SamplerWork) {
  const Work fwd = prepare_and_run("diffusion.unet.forward", {{"batch", 1}, {"resolution", 8}});
  const Work ddim = prepare_and_run("diffusion.sampler", {{"resolution", 8}, {"sampler", "ddim"}, {"steps", 2}});
  EXPECT_DOUBLE_EQ(ddim.units, 1);
  EXPECT_EQ(ddim.unit, "images/s");
  EXPECT_DOUBLE_EQ(ddim.flops, 2 * fwd.flops);
  const Work heun = prepare_and_run("diffusion.sampler", {{"resolution", 8}, {"sampler", "heun"}, {"steps", 2}});
  EXPECT_DOUBLE_EQ(heun.flops, 3 * fwd.flops);  // 2n - 1 evaluations
  const Work guided = prepare_and_run("diffusion.sampler",
                                      {{"resolution", 8}, {"sampler", "euler_a"}, {"steps", 2}, {"cfg", 3.0}}, 2);
  EXPECT_DOUBLE_EQ(guided.flops, 2 * 2 * fwd.flops);
}

TEST(DiffusionBenchTargets, BadSettingsThrow) {
  for (const char* t : {"diffusion.unet.forward", "diffusion.sampler"}) {
    expect_error(t, {{"batch", -1}}, "'batch' must be >= 1");
    expect_error(t, {{"preset", "huge"}}, "preset 'huge' is unknown");
    expect_error(t, {{"resolution", 18}}, "multiple of 4");
    expect_error(t, {{"cfg", -2.0}}, "'cfg' must be >= 0");
    expect_error(t, {{"preset", "tiny"}, {"config", "x.yaml"}}, "not both");
    expect_error(t, {{"dtype", "int8"}}, "dtype 'int8'");
  }
  expect_error("diffusion.sampler", {{"sampler", "nope"}, {"resolution", 8}}, "nope");
  expect_error("diffusion.sampler", {{"steps", 0}, {"resolution", 8}}, "'steps' must be >= 1");
}

// Runs the peer the way the runner does and returns its last stdout line as JSON.
nlohmann::json run_peer(const std::string& target, const nlohmann::json& values) {
  const PeerSpec s = make_target(target)->peer(point(values));  // as the runner: before prepare()
  nlohmann::json merged = values;
  merged.update(s.args);
  const std::string cmd = "cd '" + kSource + "' && /usr/bin/python3 " + s.script + " --point '" + merged.dump() +
                          "' --device cpu --warmup 1 --repeats 2 --threads 1";
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return nullptr;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const int rc = ::pclose(f);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const auto nl = out.rfind('\n');
  return nlohmann::json::parse(nl == std::string::npos ? out : out.substr(nl + 1));
}

void expect_protocol(const nlohmann::json& j) {
  ASSERT_TRUE(j.is_object()) << j.dump();
  ASSERT_EQ(j.at("times_ms").size(), 2u) << j.dump();
  for (const auto& t : j.at("times_ms")) EXPECT_GT(t.get<double>(), 0);
  EXPECT_GT(j.at("peak_rss_bytes").get<int64_t>(), 10 << 20);  // at least libtorch's own footprint
  EXPECT_FALSE(j.at("torch_version").get<std::string>().empty());
}

TEST(ModelBenchPeers, ConformerTorchaudio) {
  const std::string cfg = tiny_conformer_config();
  expect_protocol(run_peer("asr.conformer.infer", {{"batch", 2}, {"seconds", 0.5}, {"config", cfg}}));
  expect_protocol(run_peer("asr.conformer.train_step", {{"batch", 2}, {"seconds", 0.5}, {"config", cfg}}));
}

TEST(ModelBenchPeers, Unet2dEager) {
  const nlohmann::json j = run_peer("diffusion.unet.forward", {{"batch", 1}, {"resolution", 16}, {"cfg", true}});
  expect_protocol(j);
  // The same UNet: the eager model has the C++ preset's parameter count (tiny: 1,687,075).
  int64_t params = 0;
  for (const auto& t : diffusion::UNet2DConditionModel(diffusion::unet2d_preset("tiny"))->parameters()) params += t.numel();
  EXPECT_EQ(params, 1687075);
  EXPECT_EQ(j.at("parameters").get<int64_t>(), params);
}

}  // namespace
}  // namespace mmref::bench
