// SpeechFeatureDataset: manifest entries -> {"feats": (frames, num_mel_bins) Kaldi fbank, "tokens": (L)
// unit ids}, the examples an ASR model trains on. get() decodes the audio with FFmpeg (mono, resampled to
// sample_rate), scales it to Kaldi's int16 range and computes the fbank; it is thread-safe, so DataLoader
// workers call it concurrently. length() is the manifest duration in frames (100 per second at the
// default 10 ms shift), 0 when unknown, for bucketing and max_tokens batches.
// Errors name the manifest line and the file: "<manifest>:<line>: <path>: <why>" (the DataLoader adds the
// example index; with skip_bad it drops the example instead).
//
//   auto entries = read_manifest("data/speech/train.jsonl");
//   auto vocab = std::make_shared<CharVocab>(CharVocab::build(texts_of(entries)));
//   auto ds = std::make_shared<SpeechFeatureDataset>(entries, vocab, SpeechDatasetOptions{});
//
// Ref: wenet wenet/dataset/processor.py (decode -> resample -> fbank(80, dither) -> tokenize).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset/manifest.h"
#include "data/dataset/sampler.h"
#include "data/features/kaldi_fbank.h"
#include "data/text/vocab.h"

namespace mmref::data {

struct SpeechDatasetOptions {
  int sample_rate = 16000;
  KaldiFbankOptions fbank = [] {
    KaldiFbankOptions o;
    o.num_mel_bins = 80;  // wenet / Conformer recipes
    return o;
  }();
  std::string source;  // manifest path for error messages ("" = none)
};

class SpeechFeatureDataset : public Dataset {
 public:
  // vocab may be null: then examples carry no "tokens".
  SpeechFeatureDataset(std::vector<ManifestEntry> entries, std::shared_ptr<const UnitVocab> vocab,
                       SpeechDatasetOptions options);
  int64_t size() const override { return static_cast<int64_t>(entries_.size()); }
  Example get(int64_t index) const override;
  int64_t length(int64_t index) const override;
  const ManifestEntry& entry(int64_t index) const { return entries_.at(static_cast<size_t>(index)); }

 private:
  std::vector<ManifestEntry> entries_;
  std::shared_ptr<const UnitVocab> vocab_;
  SpeechDatasetOptions options_;
};

}  // namespace mmref::data
