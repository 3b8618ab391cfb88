// Task `digit_classifier`: pytorch/examples' MNIST CNN (models/classifier/digit_cnn.h) trained on
// opencv-doc's handwritten digits (`mmref data make digits`, made when absent) through the engine. Its
// checkpoint is the feature network of the harness's `digits` metric (eval/digit_classifier.h:
// classifier FID and the label accuracy of class-conditional diffusion samples).
//
//   data:  {dir: data/digits, size: 32 (the resolution the diffusion model sees; the CNN then resizes to
//           28 as it does for every scored image), train, test, make_if_missing, shift: 2 (random
//           translation augmentation in pixels)}
//   train: the engine's keys
//
// Validation: test-set cross-entropy and accuracy. summary.json: test_accuracy (EMA weights when
// train.ema_decay > 0, the weights the metric loads), n_test.
#pragma once
#include <cstdint>
#include <string>

#include "train/task.h"
#include "train/trainer.h"

namespace mmref::train {

struct DigitClassifierDataConfig {
  std::string dir = "data/digits";
  int64_t size = 32;
  std::string train = "train.jsonl", test = "test.jsonl";
  bool make_if_missing = true;
  int64_t shift = 2;
};

class DigitClassifierTask : public Task {
 public:
  void parse(config::Reader& root) override;
  nlohmann::json run(TaskContext& ctx) override;

  DigitClassifierDataConfig data;
  TrainerConfig train;
};

}  // namespace mmref::train
