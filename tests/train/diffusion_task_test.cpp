// Task diffusion_unet end to end on a small generated shapes corpus and on the digits: training lowers
// the fixed-batch validation loss, a resumed run continues bitwise from its checkpoint, the final samples
// are written (PNG + captions.jsonl) with their scene checks, a checkpoint samples deterministically per
// seed through load_diffusion_checkpoint, and LoRA fine-tuning leaves the base weights unchanged.
#include <gtest/gtest.h>

#include <fstream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "data/generators/corpus.h"
#include "data/media/image_io.h"
#include "train/diffusion_task.h"
#include "task_runner.h"

namespace {

class DiffusionTaskSlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(mmref::fs::make_temp_dir("mmref_diff_"));
    mmref::data::CorpusOptions co;
    co.out = *dir_ + "/images", co.count = 60, co.seed = 2, co.quiet = true;
    mmref::data::make_corpus("images", co);
  }
  static void TearDownTestSuite() {
    std::system(("rm -rf '" + *dir_ + "'").c_str());
    delete dir_;
  }

  static std::string config(const std::string& extra_data = "") {
    return "name: diff\ntask: diffusion_unet\nruntime: {threads: 2, seed: 5, deterministic: true}\n"
           "run: {root: '" + *dir_ + "/runs'}\n"
           "data: {kind: images, dir: '" + *dir_ + "/images', size: 32, make_if_missing: false" + extra_data + "}\n"
           "model: {preset: tiny, block_out_channels: [16, 32], down_block_types: [DownBlock2D, CrossAttnDownBlock2D], "
           "up_block_types: [CrossAttnUpBlock2D, UpBlock2D], norm_num_groups: 8, cross_attention_dim: 32, "
           "attention_head_dim: 4}\n"
           "text_encoder: {layers: 1, heads: 2}\n"
           "diffusion: {objective: vp, beta_schedule: squaredcos_cap_v2, min_snr_gamma: 5.0}\n"
           "sample: {sampler: {name: ddim, num_inference_steps: 4}, cfg: 2.0, count: 4, val_count: 4, final_count: 6, "
           "batch_size: 4}\n"
           "train: {steps: 60, batch_size: 8, lr: 2.0e-3, schedule: constant, warmup_steps: 5, ema_decay: 0.9, "
           "log_every: 20, eval_every: 60, checkpoint_every: 30, sample_every: 30}\n";
  }

  nlohmann::json train(const std::string& yaml, const std::vector<std::string>& overrides, std::string* run_dir,
                       const std::string& resume = "") {
    const std::string p = *dir_ + "/d.yaml";
    std::ofstream(p) << yaml;
    mmref::train::DiffusionUnetTask task;
    return mmref::test::run_task(task, p, overrides, run_dir, resume);
  }

  static std::string* dir_;
};
std::string* DiffusionTaskSlow::dir_ = nullptr;

TEST_F(DiffusionTaskSlow, TrainsResumesSamplesAndFinetunes) {
  std::string run_short, run;
  const auto s1 = train(config(), {"train.steps=2", "train.eval_every=2", "sample.final_count=0"}, &run_short);
  const auto s = train(config(), {}, &run);
  EXPECT_LT(s.at("val_loss").get<double>(), 0.8 * s1.at("val_loss").get<double>()) << s.dump();
  // Final samples: PNGs that decode at 32 px, captions.jsonl naming them, scene rates in [0, 1].
  const auto& ft = s.at("final_test");
  EXPECT_EQ(ft.at("samples"), 6);
  const at::Tensor img = mmref::data::load_image(run + "/final_samples/test/00000.png");
  EXPECT_EQ(img.size(1), 32);
  std::ifstream cj(run + "/final_samples/test/captions.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(cj, line)) {
    ++lines;
    EXPECT_TRUE(mmref::fs::exists(nlohmann::json::parse(line).at("path").get<std::string>()));
  }
  EXPECT_EQ(lines, 6);
  EXPECT_GE(ft.at("scene_all").get<double>(), 0.0);
  EXPECT_LE(ft.at("scene_all").get<double>(), 1.0);
  EXPECT_GE(ft.at("real_scene_all").get<double>(), 0.8);  // the checker on the real images
  EXPECT_TRUE(mmref::fs::exists(run + "/samples/step_00000030/grid.png"));
  EXPECT_TRUE(s.contains("final_heldout"));

  // Resume from step 30: the same final weights, bitwise (deterministic mode on the CPU).
  std::string same = run;
  const std::string ck60 = run + "/checkpoints/ckpt-00000060.safetensors";
  const mmref::Checkpoint straight = mmref::load_checkpoint(ck60);
  train(config(), {"sample.final_count=0"}, &same, run + "/checkpoints/ckpt-00000030.safetensors");
  const mmref::Checkpoint resumed = mmref::load_checkpoint(ck60);
  for (const auto& [k, v] : straight.tensors) {
    if (k.rfind("model.", 0) == 0) {
      ASSERT_TRUE(v.equal(resumed.tensors.at(k))) << k;
    }
  }

  // Sampling from the checkpoint: deterministic per seed, different across seeds, in [0, 1].
  auto L = mmref::train::load_diffusion_checkpoint(ck60);
  EXPECT_TRUE(L.used_ema);
  mmref::train::DiffusionCondition c;
  c.texts = {"a large red square on the left", "two small blue circles at the top"};
  const at::Tensor a = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample);
  const at::Tensor b = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample);
  EXPECT_TRUE(a.equal(b));
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));
  EXPECT_GE(a.min().item<double>(), 0.0);
  EXPECT_LE(a.max().item<double>(), 1.0);
  L.sample.seed = 1;
  EXPECT_FALSE(a.equal(mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample)));

  // LoRA on the attention projections from the base: base tensors bitwise unchanged, only adapters train,
  // the adapter folder is written.
  std::string lora_run;
  const auto sl = train(config(), {"finetune.base=" + ck60, "finetune.lora_r=4",
                                   "finetune.target_modules=.*attn[12]\\.to_(q|k|v|out\\.0)", "train.steps=10",
                                   "train.eval_every=10", "train.checkpoint_every=10", "train.ema_decay=0",
                                   "sample.final_count=0"},
                        &lora_run);
  EXPECT_LT(sl.at("trainable_parameters").get<int64_t>(), sl.at("parameters").get<int64_t>() / 5) << sl.dump();
  EXPECT_TRUE(mmref::fs::exists(lora_run + "/adapter/adapter_config.json"));
  const mmref::Checkpoint tuned = mmref::load_checkpoint(lora_run + "/checkpoints/ckpt-00000010.safetensors");
  int compared = 0;
  for (const auto& [k, v] : straight.tensors) {
    if (k.rfind("ema.", 0) != 0) continue;  // the base was loaded from its EMA weights
    const std::string base_key = "model." + k.substr(4);
    auto it = tuned.tensors.find(base_key);
    if (it == tuned.tensors.end()) continue;
    ASSERT_TRUE(v.to(it->second.scalar_type()).equal(it->second)) << base_key;
    ++compared;
  }
  EXPECT_GT(compared, 50);
}

TEST_F(DiffusionTaskSlow, BadConfigsAndMissingDataAreClearErrors) {
  std::string run;
  EXPECT_THROW(train(config(", conditioning: class"), {}, &run), mmref::Error);  // the shapes have no labels
  EXPECT_THROW(train(config(), {"sample.sampler.name=flow_euler"}, &run), mmref::ConfigError);
  try {
    train(config(), {"data.dir=" + *dir_ + "/nowhere"}, &run);
    ADD_FAILURE() << "a missing corpus was accepted";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere"), std::string::npos) << e.what();
  }
}

}  // namespace
