// Task `clip_contrastive`: a small CLIP (models/clip/clip_model.h, OpenAI's ViT layout and parameter
// names, OpenAI's initialisation) trained from scratch with CLIP's symmetric contrastive loss on a
// captioned image corpus (the procedural shapes of `mmref data make images`, made when absent), tokenized
// with CLIP's own BPE vocabulary. Its export is an OpenAI-layout checkpoint that the harness's
// `clip_score` metric loads like the official ones: CLIP score and CLIP-feature FID for the diffusion
// experiments without downloadable weights.
//
//   data:  {dir: data/images (the corpus root; manifests in <dir>/<size>/), size: 32, count: 10000,
//           train, test, heldout (heldout.jsonl when present: unseen colour+shape pairs),
//           vocab: CLIP's bpe_simple_vocab_16e6.txt.gz, make_if_missing}
//   model: {embed_dim, vision_width, vision_layers, patch_size, text_width, text_layers, context_length}
//          (heads = width / 64 in both towers, as build_model infers them from a checkpoint)
//   train: the engine's keys
//
// The loss is CLIP's cross-entropy in both directions over the batch's cosine logits (x exp(logit_scale),
// the scale clamped at 100); images that share a caption text are all positives of it (soft targets),
// since the corpus repeats short captions. Validation on the test split: loss, image->text top-1 among
// the split's distinct captions, and the mean CLIP score of matching and of shuffled caption pairs.
// After training: <run>/clip.safetensors (EMA weights when train.ema_decay > 0), and summary.json with
// the same figures for the test and held-out splits.
#pragma once
#include <cstdint>
#include <string>

#include "train/task.h"
#include "train/trainer.h"

namespace mmref::train {

struct ClipTaskDataConfig {
  std::string dir = "data/images";
  int64_t size = 32, count = 10000;
  std::string train = "train.jsonl", test = "test.jsonl", heldout = "heldout.jsonl";
  std::string vocab = "../shared/golden/clip/bpe_simple_vocab_16e6.txt.gz";
  bool make_if_missing = true;
};

struct ClipTaskModelConfig {
  int64_t embed_dim = 128;
  int64_t vision_width = 128, vision_layers = 4, patch_size = 4;
  int64_t text_width = 128, text_layers = 3, context_length = 32;
};

class ClipTask : public Task {
 public:
  void parse(config::Reader& root) override;
  nlohmann::json run(TaskContext& ctx) override;

  ClipTaskDataConfig data;
  ClipTaskModelConfig model;
  TrainerConfig train;
};

}  // namespace mmref::train
