// wenet's input layers ("embed"): Conv2dSubsampling4/6/8 (input_layer conv2d / conv2d6 / conv2d8) and
// LinearNoSubsampling (input_layer linear), each followed by the relative positional encoding
// (embed.pos_enc), with wenet's parameter names:
//   conv2d   embed.conv.{0,2}.*   (Conv2d 1->D k3 s2, ReLU, Conv2d D->D k3 s2, ReLU)  embed.out.0.*
//   conv2d6  embed.conv.{0,2}.*   (k3 s2, then k5 s3)                                 embed.linear.*
//   conv2d8  embed.conv.{0,2,4}.* (three k3 s2)                                       embed.linear.*
//   linear   embed.out.0.* (Linear), embed.out.1.* (LayerNorm eps 1e-5)
// Output lengths follow wenet's mask slicing (x_mask[:, :, 2::2][:, :, 2::2] etc.), which equals the
// convolution arithmetic, so a valid output frame only ever sees valid input frames:
//   conv2d  T' = ((T - 1) / 2 - 1) / 2        conv2d6 T' = ((T - 1) / 2 - 2) / 3
//   conv2d8 T' = (((T - 1) / 2 - 1) / 2 - 1) / 2   (floor division, lengths clamped at 0)
//
// Ref: wenet-e2e/wenet 015469960db7 wenet/models/transformer/subsampling.py.
// Tests: tests/models/conformer_test.cpp (lengths), conformer_golden_test.cpp (embed output).
#pragma once
#include <cstdint>
#include <string>
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "models/asr/rel_attention.h"

namespace mmref::models {

enum class WenetInputLayer { kConv2d, kConv2d6, kConv2d8, kLinear };

// "conv2d" | "conv2d6" | "conv2d8" | "linear"; anything else throws mmref::Error listing those.
WenetInputLayer parse_wenet_input_layer(const std::string& name);
const char* wenet_input_layer_name(WenetInputLayer layer);
int64_t wenet_subsampling_rate(WenetInputLayer layer);  // 4, 6, 8, 1
int64_t wenet_right_context(WenetInputLayer layer);     // 6, 10, 14, 0 (input frames past the first)
// Valid output frames for `lengths` valid input frames (int64 tensor of any shape, or one number).
at::Tensor wenet_subsampled_lengths(WenetInputLayer layer, const at::Tensor& lengths);
int64_t wenet_subsampled_length(WenetInputLayer layer, int64_t length);

struct WenetEmbedOutput {
  torch::Tensor x;        // (B, T', D) scaled by sqrt(D), before the encoder layers
  torch::Tensor pos_emb;  // (1, T', D)
  torch::Tensor lengths;  // (B,) int64 valid output frames
};

class WenetSubsamplingImpl : public torch::nn::Module {
 public:
  WenetSubsamplingImpl(WenetInputLayer layer, int64_t idim, int64_t odim, double dropout_rate,
                       double positional_dropout_rate);
  // x (B, T, idim), lengths (B,) int64 -> subsampled, position-scaled x with its pos_emb and lengths.
  // Throws mmref::Error naming the shapes when x is not (B, T, idim) or T is shorter than one output frame.
  WenetEmbedOutput forward(const torch::Tensor& x, const torch::Tensor& lengths);

  WenetInputLayer layer() const { return layer_; }
  RelPositionalEncoding pos_enc{nullptr};

 private:
  WenetInputLayer layer_;
  int64_t idim_, odim_;
  torch::nn::Sequential conv{nullptr};  // conv2d*: Conv2d, ReLU, ...
  torch::nn::Sequential out{nullptr};   // conv2d: (Linear); linear: (Linear, LayerNorm, Dropout)
  torch::nn::Linear linear{nullptr};    // conv2d6, conv2d8
};
TORCH_MODULE(WenetSubsampling);

}  // namespace mmref::models
