// Task diffusion_unet end to end on a small generated shapes corpus: training lowers the fixed-batch
// validation loss (VP and rectified-flow objectives), a resumed run continues bitwise from its
// checkpoint, the final samples are written (PNG + captions.jsonl) with their scene checks, a checkpoint
// samples deterministically per seed through load_diffusion_checkpoint, inpainting keeps the masked-off
// region and img2img stays near its init image, and LoRA fine-tuning leaves the base weights unchanged.
// Class conditioning is trained on the real digits (DiffusionDigitsSlow); text conditioning on a frozen
// CLIP text tower (DiffusionClipGolden: CLIP's BPE vocabulary from the golden fixtures).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/checkpoint.h"
#include "core/compat.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "data/generators/corpus.h"
#include "data/media/image_io.h"
#include "../golden_test_util.h"
#include "models/clip/clip_model.h"
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

  // Inpainting: the mask's black half is the init image exactly, the white half is generated.
  const std::string init_png = run + "/final_samples/test_real/00000.png";
  at::Tensor mask = at::zeros({3, 32, 32});
  mask.narrow(2, 16, 16).fill_(1.0);
  mmref::data::save_image(*dir_ + "/mask.png", mask);
  const auto in = mmref::train::load_diffusion_init(L.spec, init_png, *dir_ + "/mask.png", 1.0);
  const at::Tensor init_img = mmref::data::load_image(init_png, true);
  ASSERT_TRUE(at::allclose(in.image, init_img));
  const at::Tensor ip = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample, &in);
  for (int64_t i = 0; i < 2; ++i) {
    EXPECT_LT((ip[i].narrow(2, 0, 16) - init_img.narrow(2, 0, 16)).abs().max().item<double>(), 1e-5) << i;
    EXPECT_GT((ip[i].narrow(2, 16, 16) - init_img.narrow(2, 16, 16)).abs().mean().item<double>(), 0.02) << i;
  }
  // img2img: a low strength runs only the last step(s) from the noised image, so the result stays much
  // closer to the image than a sample from pure noise; deterministic for the seed.
  auto i2i = mmref::train::load_diffusion_init(L.spec, init_png, "", 0.3);
  const at::Tensor near = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample, &i2i);
  EXPECT_TRUE(near.equal(mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample, &i2i)));
  const at::Tensor far = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample);
  EXPECT_LT((near - init_img).abs().mean().item<double>(), 0.5 * (far - init_img).abs().mean().item<double>());
  // A larger init image is area-resized to the model's 32 px; bad strengths and empty masks are errors.
  mmref::data::save_image(*dir_ + "/big.png", at::ones({3, 64, 48}) * 0.25);
  const auto big = mmref::train::load_diffusion_init(L.spec, *dir_ + "/big.png", "", 0.5);
  EXPECT_EQ(big.image.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_NEAR(big.image.mean().item<double>(), 0.25, 0.01);
  EXPECT_THROW(mmref::train::load_diffusion_init(L.spec, init_png, "", 0.0), mmref::UsageError);
  EXPECT_THROW(mmref::train::load_diffusion_init(L.spec, init_png, "", 1.5), mmref::UsageError);
  mmref::data::save_image(*dir_ + "/black.png", at::zeros({3, 32, 32}));
  EXPECT_THROW(mmref::train::load_diffusion_init(L.spec, init_png, *dir_ + "/black.png", 1.0), mmref::UsageError);

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

// The rectified-flow objective through the same task: the velocity loss falls, flow_euler samples are
// written, and the checkpoint samples deterministically with flow_heun.
TEST_F(DiffusionTaskSlow, FlowMatchingTrainsAndSamples) {
  const std::vector<std::string> flow{"diffusion.objective=flow", "diffusion.min_snr_gamma=0", "sample.sampler.name=flow_euler"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), flow.begin(), flow.end());
    return extra;
  };
  std::string r0, run;
  const auto s0 = train(config(), with({"train.steps=2", "train.eval_every=2", "sample.final_count=0"}), &r0);
  const auto s = train(config(), with({"train.steps=40", "train.eval_every=40", "train.checkpoint_every=40",
                                       "train.sample_every=0"}),
                       &run);
  EXPECT_LT(s.at("val_loss").get<double>(), 0.8 * s0.at("val_loss").get<double>()) << s.dump();
  EXPECT_EQ(s.at("sampler"), "flow_euler");
  EXPECT_EQ(s.at("final_test").at("samples"), 6);
  EXPECT_EQ(mmref::data::load_image(run + "/final_samples/test/00005.png").size(2), 32);
  auto L = mmref::train::load_diffusion_checkpoint(run + "/checkpoints/ckpt-00000040.safetensors");
  L.sample.sampler.name = "flow_heun";
  L.sample.sampler.validate();
  mmref::train::DiffusionCondition c;
  c.texts = {"a small green triangle in the center"};
  const at::Tensor a = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 1, L.sample);
  EXPECT_TRUE(a.equal(mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 1, L.sample)));
  EXPECT_TRUE(at::isfinite(a).all().item<bool>());
}

// On a GPU (scripts/gpu_check.sh runs `ctest -L gpu`): the engine moves the model to cuda:0, bf16
// autocast trains (the loss falls), fp16 trains under dynamic loss scaling, a run resumes on the GPU from
// its checkpoint (optimizer moments loaded onto the device), and the checkpoint samples the same images
// on the GPU as on the CPU up to kernel rounding (the noise is drawn on the CPU).
class DiffusionGpu : public DiffusionTaskSlow {};
TEST_F(DiffusionGpu, TrainsOnCudaInBf16AndFp16ResumesAndSamplesLikeTheCpu) {
  if (mmref::compat::torch_cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const std::vector<std::string> gpu{"runtime.device=cuda", "runtime.deterministic=false", "sample.final_count=2",
                                     "train.sample_every=0"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), gpu.begin(), gpu.end());
    return extra;
  };
  std::string r0, run, r16;
  const auto s0 = train(config(), with({"train.steps=2", "train.eval_every=2", "train.precision=bf16"}), &r0);
  const auto s = train(config(), with({"train.precision=bf16", "train.steps=60", "train.checkpoint_every=30"}), &run);
  EXPECT_LT(s.at("val_loss").get<double>(), 0.8 * s0.at("val_loss").get<double>()) << s.dump();
  std::string same = run;
  const auto sr = train(config(), with({"train.precision=bf16", "train.steps=60", "train.checkpoint_every=30"}), &same,
                        run + "/checkpoints/ckpt-00000030.safetensors");
  EXPECT_EQ(sr.at("start_step").get<int64_t>(), 30);
  EXPECT_TRUE(std::isfinite(sr.at("val_loss").get<double>()));
  const auto s16 = train(config(), with({"train.precision=fp16", "train.steps=10", "train.eval_every=10"}), &r16);
  EXPECT_GT(s16.at("loss_scale").get<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(s16.at("val_loss").get<double>()));
  auto L = mmref::train::load_diffusion_checkpoint(run + "/checkpoints/ckpt-00000060.safetensors");
  mmref::train::DiffusionCondition c;
  c.texts = {"a large red square on the left", "two small blue circles at the top"};
  const at::Tensor cpu = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample);
  L.net->to(c10::Device(c10::kCUDA, 0));
  const at::Tensor cuda = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample);
  EXPECT_TRUE(cuda.device().is_cpu());
  EXPECT_LT((cpu - cuda).abs().mean().item<double>(), 0.02);
}

// text_encoder.kind: clip on a freshly initialised small CLIP (OpenAI layout, saved as a CLIP file):
// the UNet cross-attends to the tower's width, the tower stays frozen (the checkpoint's text_encoder.*
// equal the file's), the run keeps the BPE vocab, and the checkpoint samples deterministically with
// guidance (the null condition is the empty caption), different captions giving different images.
class DiffusionClipGolden : public DiffusionTaskSlow {
 protected:
  void SetUp() override {
    if (!mmref::fs::exists(vocab())) GTEST_SKIP() << "no CLIP vocabulary at " << vocab() << " (set MMREF_GOLDEN_DIR)";
  }
  static std::string vocab() { return mmref::test::golden_path("clip/bpe_simple_vocab_16e6.txt.gz"); }
  // The shapes config with the jointly trained encoder swapped for the CLIP tower.
  static std::string clip_config(const std::string& weights) {
    std::string y = config();
    const std::string from = "text_encoder: {layers: 1, heads: 2}";
    y.replace(y.find(from), from.size(), "text_encoder: {kind: clip, weights: '" + weights + "', vocab: '" + vocab() + "'}");
    return y;
  }
};

TEST_F(DiffusionClipGolden, FrozenClipTextTowerConditionsTheUnet) {
  mmref::models::ClipConfig cc;
  cc.embed_dim = 32, cc.image_resolution = 32, cc.vision_layers = 1, cc.vision_width = 64, cc.vision_patch_size = 16;
  cc.context_length = 20, cc.transformer_width = 64, cc.transformer_heads = 1, cc.transformer_layers = 1;
  at::manual_seed(3);
  mmref::models::ClipModel clip(cc);
  clip->initialize_parameters();
  const std::string weights = *dir_ + "/clip.safetensors";
  const auto clip_sd = mmref::module_state_dict(*clip);
  mmref::save_safetensors(weights, clip_sd, {{"format", "openai-clip"}});

  std::string r0, run;
  const std::vector<std::string> quick{"train.sample_every=0", "sample.final_count=2"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), quick.begin(), quick.end());
    return extra;
  };
  const auto s0 = train(clip_config(weights), with({"train.steps=2", "train.eval_every=2"}), &r0);
  const auto s = train(clip_config(weights), with({"train.steps=40", "train.eval_every=40", "train.checkpoint_every=40"}), &run);
  EXPECT_LT(s.at("val_loss").get<double>(), 0.8 * s0.at("val_loss").get<double>()) << s.dump();
  EXPECT_TRUE(mmref::fs::exists(run + "/clip_vocab.txt.gz"));
  EXPECT_FALSE(mmref::fs::exists(run + "/vocab.json"));

  const std::string ckpt = run + "/checkpoints/ckpt-00000040.safetensors";
  const mmref::Checkpoint ck = mmref::load_checkpoint(ckpt);
  for (const char* k : {"token_embedding.weight", "positional_embedding", "transformer.resblocks.0.attn.in_proj_weight",
                        "ln_final.weight"}) {
    ASSERT_TRUE(ck.tensors.count(std::string("model.text_encoder.") + k)) << k;
    EXPECT_TRUE(ck.tensors.at(std::string("model.text_encoder.") + k).equal(clip_sd.at(k))) << k << " changed: not frozen";
  }
  // The UNet's cross-attention keys take the tower's width (64), not the config's cross_attention_dim (32).
  bool saw_cross = false;
  for (const auto& [k, v] : ck.tensors) {
    if (k.rfind("model.unet.", 0) == 0 && k.find("attn2.to_k.weight") != std::string::npos) {
      EXPECT_EQ(v.size(1), 64) << k;
      saw_cross = true;
    }
  }
  EXPECT_TRUE(saw_cross);

  auto L = mmref::train::load_diffusion_checkpoint(ckpt);
  ASSERT_TRUE(L.net->clip_text);
  EXPECT_EQ(L.vocab, nullptr);
  EXPECT_EQ(L.net->clip_context, 20);
  mmref::train::DiffusionCondition c;
  c.texts = {"a large red square on the left", "two small blue circles at the top"};
  const at::Tensor a = mmref::train::generate_images(L.net, L.spec, nullptr, c, 2, L.sample);
  EXPECT_TRUE(a.equal(mmref::train::generate_images(L.net, L.spec, nullptr, c, 2, L.sample)));
  EXPECT_TRUE(at::isfinite(a).all().item<bool>());
  mmref::train::DiffusionCondition other;
  other.texts = {"a large red square on the left", "a large red square on the left"};
  const at::Tensor b = mmref::train::generate_images(L.net, L.spec, nullptr, other, 2, L.sample);
  EXPECT_LT((a[0] - b[0]).abs().max().item<double>(), 1e-5);  // same caption, seed and row
  EXPECT_GT((a[1] - b[1]).abs().mean().item<double>(), 1e-3);  // another caption

  // A missing tower file is a config error naming the key.
  std::string bad;
  try {
    train(clip_config(*dir_ + "/no_such_clip.safetensors"), with({"train.steps=1"}), &bad);
    ADD_FAILURE() << "a missing CLIP file trained";
  } catch (const mmref::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("text_encoder.weights"), std::string::npos) << e.what();
  }
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

namespace {

// Class conditioning on the real handwritten digits (opencv-doc's digits.png through `data make digits`):
// the loss falls, the final samples are written, and each label samples deterministically.
TEST(DiffusionDigitsSlow, ClassConditionedTrainsAndSamplesPerLabel) {
  const std::string dir = mmref::fs::make_temp_dir("mmref_diff_digits_");
  mmref::data::CorpusOptions co;
  co.out = dir + "/digits", co.quiet = true;
  mmref::data::make_corpus("digits", co);
  const std::string yaml =
      "name: dd\ntask: diffusion_unet\nruntime: {threads: 2, seed: 3, deterministic: true}\n"
      "run: {root: '" + dir + "/runs'}\n"
      "data: {kind: digits, dir: '" + dir + "/digits', size: 32, train: train.jsonl, valid: test.jsonl, "
      "test: test.jsonl, conditioning: class, cond_dropout: 0.1, make_if_missing: false, max_train: 500}\n"
      "model: {preset: tiny_class, block_out_channels: [16, 32], down_block_types: [DownBlock2D, DownBlock2D], "
      "up_block_types: [UpBlock2D, UpBlock2D], norm_num_groups: 8}\n"
      "diffusion: {objective: vp, beta_schedule: squaredcos_cap_v2}\n"
      "sample: {sampler: {name: ddim, num_inference_steps: 4}, cfg: 2.0, count: 10, final_count: 4, batch_size: 4}\n"
      "train: {steps: 40, batch_size: 16, lr: 2.0e-3, schedule: constant, warmup_steps: 5, log_every: 20, "
      "eval_every: 40, checkpoint_every: 40, sample_every: 0}\n";
  std::ofstream(dir + "/d.yaml") << yaml;
  std::string r0, run;
  mmref::train::DiffusionUnetTask t0, t1;
  const auto s0 = mmref::test::run_task(t0, dir + "/d.yaml", {"train.steps=2", "train.eval_every=2", "sample.final_count=0"}, &r0);
  const auto s = mmref::test::run_task(t1, dir + "/d.yaml", {}, &run);
  EXPECT_LT(s.at("val_loss").get<double>(), 0.8 * s0.at("val_loss").get<double>()) << s.dump();
  const at::Tensor png = mmref::data::load_image(run + "/final_samples/test/00003.png");
  EXPECT_EQ(png.size(2), 32);
  auto L = mmref::train::load_diffusion_checkpoint(run + "/checkpoints/ckpt-00000040.safetensors");
  EXPECT_EQ(L.spec.num_classes, 10);
  mmref::train::DiffusionCondition c;
  c.labels = {0, 7};
  const at::Tensor a = mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  EXPECT_TRUE(a.equal(mmref::train::generate_images(L.net, L.spec, L.vocab.get(), c, 2, L.sample)));
  EXPECT_FALSE(a[0].equal(a[1]));
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
