// The digits metrics' feature network: pytorch/examples' MNIST CNN (models/classifier/digit_cnn.h)
// trained by mmref on opencv-doc's digits (task digit_classifier, configs/eval/digit_classifier.yaml),
// or the example's own mnist_cnn.pt. Behind the harness's `digits` metric:
//   digits_fid      Frechet distance between real and generated images in the CNN's 128-d fc1 space
//                   ("classifier FID", the MNIST papers' substitute for Inception FID; not comparable
//                   with Inception FID values, and only between runs scored with the same weights file)
//   digits_accuracy the fraction of class-conditional samples the CNN assigns their conditioning label
//   digits_real_accuracy the CNN's accuracy on the real set (the ceiling of digits_accuracy)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "models/classifier/digit_cnn.h"

namespace mmref::eval {

struct DigitClassifier {
  models::DigitCnn net{nullptr};
  std::string path, weights;  // weights: "ema" / "model" (a digit_classifier run's checkpoint) or "state_dict"
};

// A ckpt-*.safetensors of a digit_classifier run (its EMA weights when it has them), or a state dict
// (.pt/.pth/.safetensors) with the example's names. Throws mmref::Error naming the file.
DigitClassifier load_digit_classifier(const std::string& path);

struct DigitOutputs {
  at::Tensor features;  // (N, 128) float64
  at::Tensor logits;    // (N, classes) float
  std::vector<int64_t> predicted;
};
// Images (C, H, W) float in [0, 1] of any sizes, in batches, eval mode, no grad.
DigitOutputs classify_digits(DigitClassifier& c, const std::vector<at::Tensor>& images, int64_t batch_size = 64);

// The digit a caption names: the text "7", or the last standalone digit of a caption ("a handwritten 7").
// Throws mmref::Error quoting the caption when it names none.
int64_t digit_of_caption(const std::string& caption);

}  // namespace mmref::eval
