// Task `asr_conformer`: wenet's Conformer encoder + CTC over characters, trained by the engine
// (trainer.h: resume, LoRA, data parallel, mixed precision all apply), on a JSONL speech corpus (the
// local espeak-ng/flite/festival corpus is made with `mmref data make speech` when absent).
//
//   data:     {dir, train, valid, test, make_if_missing, count, seed, num_workers, bucket_by_length,
//              max_valid}   transcripts are normalised (lower case, numbers as words, punctuation
//                           removed but apostrophes) before the character vocabulary (units.txt in the run)
//   model:    WenetConformerConfig keys (models/asr/conformer_wenet.h), input_size 80 (fbank)
//   specaug:  {freq_masks, freq_width, time_masks, time_width, time_width_ratio}  (Park et al. 2019, no warp)
//   decode:   {method: greedy | beam, beam}
//   train:    the engine's keys; finetune: {base, lora_r, lora_alpha, lora_dropout, target_modules, freeze}
//
// Validation: CTC loss and greedy CER/WER on up to data.max_valid dev utterances. At the end: WER/CER
// on the test split (greedy and beam), hypotheses in <run>/test_hyp.jsonl for `mmref eval`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/asr_transcriber.h"
#include "models/asr/conformer_wenet.h"
#include "models/common/lora.h"
#include "train/task.h"
#include "train/trainer.h"

namespace mmref::train {

struct AsrDataConfig {
  std::string dir = "data/speech";
  std::string train = "train.jsonl", valid = "dev.jsonl", test = "test.jsonl";
  bool make_if_missing = true;
  int64_t count = 2000;  // utterances when the corpus is made
  int64_t seed = 0;
  int num_workers = 2;
  bool bucket_by_length = true;
  int64_t max_valid = 100;
  int64_t max_test = 0;  // 0 = the whole test split
  // CTC output units: "char" (characters), or SentencePiece subwords "bpe" / "unigram" trained on the
  // training transcripts (<run>/spm.model; data/text/piece_vocab.h) with `vocab_size` pieces.
  std::string units = "char";
  int64_t vocab_size = 128;
};

struct SpecAugConfig {
  int64_t freq_masks = 2, freq_width = 10;   // up to freq_width mel bins per mask
  int64_t time_masks = 2, time_width = 40;   // up to min(time_width, ratio x length) frames per mask
  double time_width_ratio = 0.1;
};


struct AsrFinetuneConfig {
  std::string base;
  models::LoraConfig lora{/*r=*/0};
  std::string freeze;
};

// Decoding, transcript normalisation and `transcribe_files` live in eval/asr_transcriber.h (the
// evaluation harness scores TTS intelligibility with them); these names keep the task's API.
using eval::AsrDecodeConfig;
using eval::AsrTranscript;
using eval::normalize_transcript;
using eval::transcribe_files;

class AsrConformerTask : public Task {
 public:
  void parse(config::Reader& root) override;
  nlohmann::json run(TaskContext& ctx) override;

  AsrDataConfig data;
  models::WenetConformerConfig model;
  SpecAugConfig specaug;
  AsrDecodeConfig decode;
  TrainerConfig train;
  AsrFinetuneConfig finetune;
};

}  // namespace mmref::train
