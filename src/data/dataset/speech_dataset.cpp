// SpeechFeatureDataset; see speech_dataset.h.
#include "data/dataset/speech_dataset.h"

#include <cmath>

#include <ATen/Functions.h>

#include "core/error.h"
#include "data/media/audio_io.h"

namespace mmref::data {

SpeechFeatureDataset::SpeechFeatureDataset(std::vector<ManifestEntry> entries, std::shared_ptr<const UnitVocab> vocab,
                                           SpeechDatasetOptions options)
    : entries_(std::move(entries)), vocab_(std::move(vocab)), options_(std::move(options)) {
  if (options_.sample_rate < 8000 || options_.sample_rate > 48000) {
    MMREF_FAIL("speech dataset: sample_rate {} is out of range (8000..48000)", options_.sample_rate);
  }
}

Example SpeechFeatureDataset::get(int64_t index) const {
  const ManifestEntry& e = entry(index);
  const std::string where =
      options_.source.empty() ? e.path : fmt::format("{}:{}: {}", options_.source, e.line, e.path);
  try {
    AudioOptions ao;
    ao.sample_rate = options_.sample_rate;
    ao.channels = 1;
    const at::Tensor wave = load_audio(e.path, ao);  // (1, T) in [-1, 1]
    const int64_t need = kaldi_window_size(options_.sample_rate, options_.fbank.frame_length_ms);
    if (wave.size(1) < need) {
      MMREF_FAIL("{} samples at {} Hz is shorter than one {} ms frame", wave.size(1), options_.sample_rate,
                 options_.fbank.frame_length_ms);
    }
    Example ex;
    ex.id = e.path;
    ex.tensors["feats"] = kaldi_fbank(wave[0] * 32768.0, options_.sample_rate, options_.fbank);
    ex.length = ex.tensors["feats"].size(0);
    if (vocab_) {
      if (e.text.empty()) MMREF_FAIL("empty transcript");
      ex.tensors["tokens"] = at::tensor(vocab_->encode(e.text), at::TensorOptions().dtype(at::kLong));
    }
    return ex;
  } catch (const std::exception& err) {
    MMREF_FAIL("{}: {}", where, err.what());
  }
}

int64_t SpeechFeatureDataset::length(int64_t index) const {
  const double d = entry(index).duration;
  return d > 0 ? static_cast<int64_t>(std::lround(d * 1000.0 / options_.fbank.frame_shift_ms)) : 0;
}

}  // namespace mmref::data
