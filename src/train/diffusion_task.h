// Task `diffusion_unet`: image diffusion with diffusers' UNet2DConditionModel layout
// (models/diffusion/unet2d.h), trained by the engine (trainer.h: EMA, resume, LoRA, mixed precision, data
// parallel), on the local corpora: the captioned shapes (`mmref data make images`, text conditioning
// through a small jointly trained text encoder) or opencv-doc's handwritten digits (`digits`, class
// conditioning), or unconditional.
//
//   data:        {kind: images | digits, dir, size, train, valid, test, heldout, make_if_missing, count,
//                 seed, conditioning: text | class | none, cond_dropout (classifier-free guidance training),
//                 max_tokens, exclude_words, include_words, max_train, filter_eval}
//   model:       UNet2DConfig keys (preset: tiny | tiny_class | sd15, then overrides); in/out channels and
//                cross_attention_dim / num_class_embeds are set from the data when left at the preset
//   text_encoder: TextEncoderConfig keys (width = the UNet's cross_attention_dim), a small transformer
//                trained with the UNet; or {kind: clip, weights, vocab, heads, context}: CLIP's text tower
//                (diffusion::ClipTextAdapter) from an OpenAI or Hugging Face CLIP file (e.g. the
//                clip_contrastive task's clip.safetensors), frozen, its last_hidden_state over the whole
//                context as the UNet's encoder states (as Stable Diffusion); the null condition is the
//                empty caption's states; the UNet's cross_attention_dim is set to the tower's width; the
//                BPE vocab is copied into the run folder and the tower is kept in the checkpoint
//   diffusion:   {objective: vp | flow, prediction_type: epsilon | v_prediction | sample, schedule keys
//                 (num_train_timesteps, beta_schedule, beta_start, beta_end, rescale_betas_zero_snr),
//                 min_snr_gamma (0 = off), flow_timesteps: logit_normal | uniform, flow_shift}
//   sample:      {sampler: SamplerOptions map (models/diffusion/samplers.h), cfg, seed, count (the grid),
//                 val_count (scene-checked samples at each validation), final_count, batch_size}
//   finetune:    {base: a checkpoint of this task, lora_r, lora_alpha, lora_dropout, target_modules}
//   train:       the engine's keys
//
// The model's state-dict names: unet.* (diffusers' names) and text_encoder.* (CLIPTextModel-style for the
// jointly trained encoder; OpenAI's text names for the CLIP tower: token_embedding.weight, ...).
// Validation: the denoising loss on a fixed batch of test images at fixed timesteps and noise, and for the
// shapes corpus the scene checks (eval/scene_check.h: colour, count, shape, size, position from the
// caption) of val_count samples. Samples: a grid every train.sample_every steps and at the end. At the
// end: final_count samples for test and held-out captions in <run>/final_samples/{test,heldout}/ with
// captions.jsonl (for `mmref eval` CLIP score / FID / digits), the same split's real images at the training
// resolution in <run>/final_samples/{test,heldout}_real/ (the FID reference set), the scene-check rates
// of samples and real images (the checker's ceiling) in summary.json.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/clip/clip_tokenizer.h"
#include "models/common/lora.h"
#include "models/diffusion/samplers.h"
#include "models/diffusion/text_encoder.h"
#include "models/diffusion/unet2d.h"
#include "train/task.h"
#include "train/trainer.h"

namespace mmref::train {

struct DiffusionDataConfig {
  std::string kind = "images";  // images | digits (the corpus made when absent)
  std::string dir = "data/images";
  int64_t size = 32;            // images: the corpus's 32 or 64 px folder; digits: resized to this
  std::string train = "train.jsonl", valid = "test.jsonl", test = "test.jsonl", heldout = "heldout.jsonl";
  bool make_if_missing = true;
  int64_t count = 5000;         // scenes when the images corpus is made
  int64_t seed = 0;
  std::string conditioning = "text";  // text | class | none
  double cond_dropout = 0.1;          // probability a training sample's condition is replaced by the null one
  int64_t max_tokens = 24;
  std::vector<std::string> exclude_words;  // drop training captions containing any (a concept for LoRA)
  std::vector<std::string> include_words;  // keep only training captions containing one (LoRA data)
  int64_t max_train = 0;                   // 0 = all
  bool filter_eval = false;                // apply exclude/include_words to the valid and test splits too
};

struct DiffusionObjectiveConfig {
  std::string objective = "vp";  // vp (DDPM family) | flow (rectified flow)
  std::string prediction_type = "epsilon";
  diffusion::BetaScheduleOptions schedule;
  double min_snr_gamma = 0;      // > 0: min-SNR-gamma loss weights (vp only)
  diffusion::FlowTimestepSampling flow;
};

struct DiffusionSampleConfig {
  diffusion::SamplerOptions sampler;  // name, steps and the schedule (kept equal to the training one)
  double cfg = 3.0;                   // classifier-free guidance scale (1 = conditional only)
  uint64_t seed = 0;
  int64_t count = 16, val_count = 32, final_count = 200, batch_size = 32;
};

// The trained network: the UNet and (text conditioning) the text encoder, under "unet" / "text_encoder":
// the jointly trained TextEncoder, or with `clip` the frozen CLIP text tower (requires_grad off, so the
// optimizer leaves it alone).
class DiffusionNetImpl : public torch::nn::Module {
 public:
  DiffusionNetImpl(const diffusion::UNet2DConfig& unet, const diffusion::TextEncoderConfig* text,
                   const diffusion::ClipTextConfig* clip = nullptr);
  diffusion::UNet2DConditionModel unet{nullptr};
  diffusion::TextEncoder text_encoder{nullptr};  // null without text conditioning or with the CLIP tower
  diffusion::ClipTextAdapter clip_text{nullptr};  // the CLIP tower (registered as text_encoder)
  std::shared_ptr<const models::ClipTokenizer> clip_tokenizer;  // set with clip_text
  int64_t clip_context = 0;                                     // tokens per caption given to the tower
};
TORCH_MODULE(DiffusionNet);

// What a batch is conditioned on: captions (text), labels (class) or nothing.
struct DiffusionCondition {
  std::vector<std::string> texts;
  std::vector<int64_t> labels;
};

// Everything needed to sample from a trained net (the task and `mmref sample diffusion` share it).
// text_encoder.kind: clip. The tower's sizes come from its weights (ClipTextConfig::infer): from the
// weights file when training, from the checkpoint's text_encoder.* when sampling.
struct DiffusionClipTextSpec {
  std::string weights;  // CLIP file (OpenAI or Hugging Face names)
  std::string vocab;    // bpe_simple_vocab_16e6.txt.gz
  int64_t heads = 0;    // 0 = width / 64 (OpenAI's rule)
  int64_t context = 0;  // tokens per caption, SOT..EOT zero padded; 0 = the tower's context_length
  diffusion::ClipTextConfig config;  // filled by resolve_clip_text
};

struct DiffusionModelSpec {
  DiffusionDataConfig data;
  diffusion::UNet2DConfig unet;
  diffusion::TextEncoderConfig text;
  bool clip_text = false;  // text_encoder.kind: clip
  DiffusionClipTextSpec clip;
  DiffusionObjectiveConfig objective;
  int64_t num_classes = 0;  // class conditioning: labels 0..num_classes-1, null = num_classes
};

// Samples n images (n = texts.size() or labels.size(), or `n` when unconditional) as (n, C, S, S) float
// in [0, 1]; deterministic for (seed, batch_size). cfg != 1 runs the unconditional and conditional rows
// in one forward of 2B.
//
// With `init`, every sample starts from init->image: img2img runs the last strength x steps of the
// schedule from the image noised to that level (diffusers' get_timesteps); with init->mask, inpainting
// regenerates where the mask is 1 and keeps the image where it is 0 (the known region re-noised to each
// level, as diffusers' legacy inpaint loop). Without init the draws are exactly those of plain sampling.
struct DiffusionInit {
  at::Tensor image;       // (C, S, S) float in [0, 1] at the model's channels and resolution
  double strength = 1.0;  // (0, 1]; 1 = from pure noise (inpainting's usual setting)
  at::Tensor mask;        // (1, S, S) float in {0, 1}: 1 = generate; undefined = img2img only
};
at::Tensor generate_images(DiffusionNet& net, const DiffusionModelSpec& spec, const diffusion::TextVocab* vocab,
                           const DiffusionCondition& cond, int64_t n, const DiffusionSampleConfig& sc,
                           const DiffusionInit* init = nullptr);

// Reads an init image (any format load_image reads) and optionally a mask image (white = regenerate,
// black = keep; its mean over channels is thresholded at 0.5) into the model's channels and resolution
// (area averaging when shrinking, bilinear when enlarging). strength outside (0, 1] is a UsageError.
DiffusionInit load_diffusion_init(const DiffusionModelSpec& spec, const std::string& image_path,
                                  const std::string& mask_path, double strength);

// `mmref sample diffusion`: loads a checkpoint of this task (its run folder's config.yaml and vocab.json,
// or clip_vocab.txt.gz with the CLIP tower)
// into a net (EMA weights when the checkpoint has them and `ema`), ready for generate_images.
struct LoadedDiffusion {
  DiffusionModelSpec spec;
  DiffusionSampleConfig sample;
  std::shared_ptr<diffusion::TextVocab> vocab;  // null with the CLIP tower (net->clip_tokenizer instead)
  DiffusionNet net{nullptr};
  bool used_ema = false;
};
LoadedDiffusion load_diffusion_checkpoint(const std::string& checkpoint, bool ema = true);

class DiffusionUnetTask : public Task {
 public:
  void parse(config::Reader& root) override;
  nlohmann::json run(TaskContext& ctx) override;

  DiffusionModelSpec spec;
  DiffusionSampleConfig sample;
  TrainerConfig train;
  std::string finetune_base;
  models::LoraConfig lora{/*r=*/0};
};

// Reads the task's sections into spec/sample (shared by parse and the checkpoint loader).
void parse_diffusion_sections(config::Reader& root, DiffusionModelSpec& spec, DiffusionSampleConfig& sample);

}  // namespace mmref::train
