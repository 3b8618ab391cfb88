// The digits metrics' classifier; see digit_classifier.h.
#include "eval/digit_classifier.h"

#include <cctype>

#include <ATen/Functions.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/state_dict.h"

namespace mmref::eval {

DigitClassifier load_digit_classifier(const std::string& path) {
  if (!fs::exists(path)) {
    MMREF_FAIL("digit classifier '{}' does not exist (train one: mmref train configs/eval/digit_classifier.yaml)", path);
  }
  std::map<std::string, at::Tensor> sd = load_weights(path);
  std::string prefix;
  DigitClassifier c;
  c.path = path, c.weights = "state_dict";
  for (const char* p : {"ema.", "model."}) {
    if (sd.count(std::string(p) + "fc2.weight")) {
      prefix = p, c.weights = std::string(p, std::char_traits<char>::length(p) - 1);
      break;
    }
  }
  auto it = sd.find(prefix + "fc2.weight");
  if (it == sd.end()) {
    MMREF_FAIL("digit classifier '{}': no fc2.weight (want a digit_classifier checkpoint or the pytorch/examples "
               "MNIST Net state dict)", path);
  }
  c.net = models::DigitCnn(it->second.size(0));
  std::map<std::string, at::Tensor> own;
  for (const auto& [k, v] : sd) {
    if (k.rfind(prefix, 0) == 0) own[k.substr(prefix.size())] = v;
  }
  if (!prefix.empty()) {
    // A training checkpoint also holds the optimizer and RNG state: keep only the model's tensors.
    std::map<std::string, at::Tensor> model;
    for (const auto& kv : module_state_dict(*c.net)) {
      if (own.count(kv.first)) model[kv.first] = own[kv.first];
    }
    own = model;
  }
  try {
    load_state_dict(*c.net, own);
  } catch (const Error& e) {
    MMREF_FAIL("digit classifier '{}': {}", path, e.what());
  }
  c.net->eval();
  return c;
}

DigitOutputs classify_digits(DigitClassifier& c, const std::vector<at::Tensor>& images, int64_t batch_size) {
  torch::NoGradGuard ng;
  c.net->eval();
  std::vector<at::Tensor> feats, logits;
  for (size_t b = 0; b < images.size(); b += static_cast<size_t>(batch_size)) {
    std::vector<at::Tensor> batch;
    for (size_t i = b; i < std::min(images.size(), b + static_cast<size_t>(batch_size)); ++i) {
      batch.push_back(models::DigitCnnImpl::preprocess(images[i].unsqueeze(0)));
    }
    const at::Tensor f = c.net->features(at::cat(batch));
    feats.push_back(f.to(at::kDouble));
    logits.push_back(c.net->logits_from_features(f));
  }
  DigitOutputs o;
  if (images.empty()) return o;
  o.features = at::cat(feats);
  o.logits = at::cat(logits);
  const at::Tensor pred = o.logits.argmax(1).contiguous();
  o.predicted.assign(pred.data_ptr<int64_t>(), pred.data_ptr<int64_t>() + pred.numel());
  return o;
}

int64_t digit_of_caption(const std::string& caption) {
  for (size_t i = caption.size(); i-- > 0;) {
    if (!std::isdigit(static_cast<unsigned char>(caption[i]))) continue;
    const bool alone = (i == 0 || !std::isalnum(static_cast<unsigned char>(caption[i - 1]))) &&
                       (i + 1 == caption.size() || !std::isalnum(static_cast<unsigned char>(caption[i + 1])));
    if (alone) return caption[i] - '0';
  }
  MMREF_FAIL("caption '{}' names no digit (want e.g. \"7\")", caption);
}

}  // namespace mmref::eval
