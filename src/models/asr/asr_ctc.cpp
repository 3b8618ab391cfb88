// The CTC recognizer; see asr_ctc.h.
#include "models/asr/asr_ctc.h"

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/state_dict.h"

namespace mmref::models {

AsrCtcModelImpl::AsrCtcModelImpl(const WenetConformerConfig& encoder_cfg, int64_t vocab_size) : vocab_(vocab_size) {
  if (vocab_size < 2) MMREF_FAIL("ASR model: vocabulary of {} units (needs blank + at least one unit)", vocab_size);
  encoder = register_module("encoder", WenetConformerEncoder(encoder_cfg));
  ctc = register_module("ctc", std::make_shared<torch::nn::Module>());
  ctc_lo = ctc->register_module("ctc_lo", LoraLinear(encoder_cfg.output_size, vocab_size));
}

AsrCtcOutput AsrCtcModelImpl::forward(const torch::Tensor& feats, const torch::Tensor& lengths) {
  const WenetEncoderOutput e = encoder->forward(feats, lengths);
  return {at::log_softmax(ctc_lo->forward(e.y), -1), e.lengths};
}

void AsrCtcModelImpl::load(const std::map<std::string, at::Tensor>& sd) {
  // The encoder part through the encoder's own loader (it fills the positional table older wenet
  // checkpoints lack); then the CTC projection.
  encoder->load(sd);
  std::map<std::string, at::Tensor> head;
  for (const auto& [k, v] : sd) {
    if (k.rfind("ctc.ctc_lo.", 0) == 0) head[k.substr(11)] = v;
  }
  if (!head.count("weight") || !head.count("bias")) {
    MMREF_FAIL("ASR model weights: no ctc.ctc_lo.weight/bias (a wenet ASRModel or an asr_conformer checkpoint "
               "has them)");
  }
  LoadOptions o;
  o.ignore_unexpected_regex = {"^lora_"};
  load_state_dict(*ctc_lo, head, o);
}

}  // namespace mmref::models
