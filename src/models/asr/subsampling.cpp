// wenet's subsampling input layers; see subsampling.h.
#include "models/asr/subsampling.h"

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/normalization.h>

#include "core/error.h"

namespace mmref::models {

using torch::Tensor;

namespace {

// One step of wenet's mask slicing x_mask[:, :, start::step] applied to a prefix mask of n valid frames:
// the count of indices start + step * j < n, i.e. ceil((n - start) / step) clamped at 0.
int64_t slice_count(int64_t n, int64_t start, int64_t step) {
  return n <= start ? 0 : (n - start + step - 1) / step;
}
Tensor slice_count(const Tensor& n, int64_t start, int64_t step) {
  return at::div(n - start + (step - 1), step, "floor").clamp_min(0);
}

// The (start, step) slices of each input layer, in order.
std::vector<std::pair<int64_t, int64_t>> slices(WenetInputLayer layer) {
  switch (layer) {
    case WenetInputLayer::kConv2d:
      return {{2, 2}, {2, 2}};
    case WenetInputLayer::kConv2d6:
      return {{2, 2}, {4, 3}};
    case WenetInputLayer::kConv2d8:
      return {{2, 2}, {2, 2}, {2, 2}};
    case WenetInputLayer::kLinear:
      return {};
  }
  return {};
}

// Frequency bins after the convolutions (kernel 3 stride 2 is (f - 1) / 2; kernel 5 stride 3 is (f - 2) / 3).
int64_t freq_after_convs(WenetInputLayer layer, int64_t f) {
  switch (layer) {
    case WenetInputLayer::kConv2d:
      return ((f - 1) / 2 - 1) / 2;
    case WenetInputLayer::kConv2d6:
      return ((f - 1) / 2 - 2) / 3;
    case WenetInputLayer::kConv2d8:
      return (((f - 1) / 2 - 1) / 2 - 1) / 2;
    case WenetInputLayer::kLinear:
      return f;
  }
  return f;
}

torch::nn::Conv2d conv2d(int64_t in, int64_t out, int64_t k, int64_t s) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(s));
}

}  // namespace

WenetInputLayer parse_wenet_input_layer(const std::string& name) {
  if (name == "conv2d") return WenetInputLayer::kConv2d;
  if (name == "conv2d6") return WenetInputLayer::kConv2d6;
  if (name == "conv2d8") return WenetInputLayer::kConv2d8;
  if (name == "linear") return WenetInputLayer::kLinear;
  MMREF_FAIL("wenet input_layer '{}' is not supported: expected conv2d, conv2d6, conv2d8 or linear", name);
}

const char* wenet_input_layer_name(WenetInputLayer layer) {
  switch (layer) {
    case WenetInputLayer::kConv2d:
      return "conv2d";
    case WenetInputLayer::kConv2d6:
      return "conv2d6";
    case WenetInputLayer::kConv2d8:
      return "conv2d8";
    case WenetInputLayer::kLinear:
      return "linear";
  }
  return "?";
}

int64_t wenet_subsampling_rate(WenetInputLayer layer) {
  switch (layer) {
    case WenetInputLayer::kConv2d:
      return 4;
    case WenetInputLayer::kConv2d6:
      return 6;
    case WenetInputLayer::kConv2d8:
      return 8;
    case WenetInputLayer::kLinear:
      return 1;
  }
  return 1;
}

int64_t wenet_right_context(WenetInputLayer layer) {
  switch (layer) {
    case WenetInputLayer::kConv2d:
      return 6;
    case WenetInputLayer::kConv2d6:
      return 10;
    case WenetInputLayer::kConv2d8:
      return 14;
    case WenetInputLayer::kLinear:
      return 0;
  }
  return 0;
}

int64_t wenet_subsampled_length(WenetInputLayer layer, int64_t length) {
  for (const auto& [start, step] : slices(layer)) length = slice_count(length, start, step);
  return length;
}

Tensor wenet_subsampled_lengths(WenetInputLayer layer, const Tensor& lengths) {
  Tensor l = lengths.to(at::kLong);
  for (const auto& [start, step] : slices(layer)) l = slice_count(l, start, step);
  return l;
}

WenetSubsamplingImpl::WenetSubsamplingImpl(WenetInputLayer layer, int64_t idim, int64_t odim,
                                           double dropout_rate, double positional_dropout_rate)
    : layer_(layer), idim_(idim), odim_(odim) {
  const int64_t f = freq_after_convs(layer, idim);
  if (idim < 1 || odim < 1 || f < 1) {
    MMREF_FAIL(
        "wenet {} subsampling: input_size {} is too small (needs at least one frequency bin after the "
        "convolutions) or output_size {} < 1",
        wenet_input_layer_name(layer), idim, odim);
  }
  switch (layer) {
    case WenetInputLayer::kConv2d:
      conv = register_module("conv", torch::nn::Sequential(conv2d(1, odim, 3, 2), torch::nn::ReLU(),
                                                           conv2d(odim, odim, 3, 2), torch::nn::ReLU()));
      out = register_module("out", torch::nn::Sequential(torch::nn::Linear(odim * f, odim)));
      break;
    case WenetInputLayer::kConv2d6:
      conv = register_module("conv", torch::nn::Sequential(conv2d(1, odim, 3, 2), torch::nn::ReLU(),
                                                           conv2d(odim, odim, 5, 3), torch::nn::ReLU()));
      linear = register_module("linear", torch::nn::Linear(odim * f, odim));
      break;
    case WenetInputLayer::kConv2d8:
      conv = register_module(
          "conv", torch::nn::Sequential(conv2d(1, odim, 3, 2), torch::nn::ReLU(), conv2d(odim, odim, 3, 2),
                                        torch::nn::ReLU(), conv2d(odim, odim, 3, 2), torch::nn::ReLU()));
      linear = register_module("linear", torch::nn::Linear(odim * f, odim));
      break;
    case WenetInputLayer::kLinear:
      out = register_module(
          "out", torch::nn::Sequential(torch::nn::Linear(idim, odim),
                                       torch::nn::LayerNorm(torch::nn::LayerNormOptions({odim}).eps(1e-5)),
                                       torch::nn::Dropout(dropout_rate)));
      break;
  }
  pos_enc = register_module("pos_enc", RelPositionalEncoding(odim, positional_dropout_rate));
}

WenetEmbedOutput WenetSubsamplingImpl::forward(const Tensor& x, const Tensor& lengths) {
  if (x.dim() != 3 || x.size(2) != idim_) {
    MMREF_FAIL("wenet encoder: expected features (B, T, {}) (input_size {}), got [{}]", idim_, idim_,
               fmt::join(x.sizes(), ", "));
  }
  const int64_t t_out = wenet_subsampled_length(layer_, x.size(1));
  if (t_out < 1) {
    MMREF_FAIL(
        "wenet encoder: {} frames give no output frame after {} subsampling (needs at least {} frames), "
        "input [{}]",
        x.size(1), wenet_input_layer_name(layer_), wenet_right_context(layer_) + 1,
        fmt::join(x.sizes(), ", "));
  }
  Tensor y;
  if (layer_ == WenetInputLayer::kLinear) {
    y = out->forward(x);  // (B, T, D)
  } else {
    Tensor h = conv->forward(x.unsqueeze(1));  // (B, D, T', F')
    const int64_t b = h.size(0), c = h.size(1), t = h.size(2), f = h.size(3);
    MMREF_CHECK(t == t_out, "conv output {} frames vs mask slicing {}", t, t_out);
    h = h.transpose(1, 2).reshape({b, t, c * f});                                   // (B, T', D * F')
    y = layer_ == WenetInputLayer::kConv2d ? out->forward(h) : linear->forward(h);  // (B, T', D)
  }
  auto [xs, pos_emb] = pos_enc->forward(y);  // (B, T', D), (1, T', D)
  return {xs, pos_emb, wenet_subsampled_lengths(layer_, lengths)};
}

}  // namespace mmref::models
