// The CTC speech recognizer: wenet's ConformerEncoder ("encoder.*") and its CTC projection
// ("ctc.ctc_lo.*", wenet's CTC module), so the encoder+CTC part of a wenet ASRModel checkpoint loads
// (its attention-decoder "decoder.*" keys are ignored; CTC decoding is what mmref does).
// forward: (B, T, 80) fbank and lengths -> (B, T', V) log-probabilities and T' lengths.
#pragma once
#include <map>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "models/asr/conformer_wenet.h"
#include "models/common/lora.h"

namespace mmref::models {

struct AsrCtcOutput {
  torch::Tensor log_probs;  // (B, T', V) log-softmax over units (blank = 0)
  torch::Tensor lengths;    // (B,) int64
};

class AsrCtcModelImpl : public torch::nn::Module {
 public:
  AsrCtcModelImpl(const WenetConformerConfig& encoder, int64_t vocab_size);
  AsrCtcOutput forward(const torch::Tensor& feats, const torch::Tensor& lengths);
  // wenet ASRModel names (encoder.*, ctc.ctc_lo.*; decoder.* ignored) or this model's own checkpoint.
  void load(const std::map<std::string, at::Tensor>& state_dict);
  int64_t vocab_size() const { return vocab_; }

  WenetConformerEncoder encoder{nullptr};
  std::shared_ptr<torch::nn::Module> ctc;
  LoraLinear ctc_lo{nullptr};

 private:
  int64_t vocab_;
};
TORCH_MODULE(AsrCtcModel);

}  // namespace mmref::models
