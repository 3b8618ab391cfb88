// The Conformer encoders against their references (../shared/golden/conformer_wenet and
// conformer_torchaudio; MMREF_GOLDEN_DIR overrides the root): the constructor config is read from each
// case.json, weights load by their reference names, and outputs are compared on valid frames only (the
// fixtures' rule) with the suggested atol 1e-4 + rtol 1e-4; wenet's masks and torchaudio's lengths
// exactly. Every kernel backend (mmref, torch, reference) must pass.
//   MMREF_GOLDEN_DIR=/work/shared/golden build/cpu/tests/mmref_models_tests --gtest_filter='ConformerGolden*'
#include <gtest/gtest.h>

#include "../golden_test_util.h"

#include <cstdlib>
#include <fstream>
#include <iostream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "models/asr/conformer_torchaudio.h"
#include "models/asr/conformer_wenet.h"

namespace {

using mmref::kernels::AttentionBackend;
using mmref::kernels::ConvBackend;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

struct Tolerance {
  double atol = 1e-4, rtol = 1e-4;
};

Tolerance tolerance(const nlohmann::json& c) {
  Tolerance t;
  if (c.contains("suggested_tolerance")) {
    t.atol = c["suggested_tolerance"].value("atol", t.atol);
    t.rtol = c["suggested_tolerance"].value("rtol", t.rtol);
  }
  return t;
}

// Compares rows [0, lengths[b]) of (B, T, D) tensors; returns the max abs difference.
double expect_close_valid(const at::Tensor& got, const at::Tensor& want, const at::Tensor& lengths,
                          Tolerance tol, const std::string& what) {
  EXPECT_EQ(got.sizes(), want.sizes()) << what;
  if (got.sizes() != want.sizes()) return 1e30;
  double max_abs = 0;
  for (int64_t b = 0; b < got.size(0); ++b) {
    const int64_t n = lengths[b].item<int64_t>();
    const at::Tensor g = got[b].narrow(0, 0, n), w = want[b].narrow(0, 0, n);
    const at::Tensor diff = (g.to(at::kDouble) - w.to(at::kDouble)).abs();
    if (n == 0) continue;
    max_abs = std::max(max_abs, diff.max().item<double>());
    const double excess = (diff - (tol.atol + tol.rtol * w.to(at::kDouble).abs())).max().item<double>();
    EXPECT_LE(excess, 0) << what << " row " << b << ": max abs diff " << diff.max().item<double>();
  }
  return max_abs;
}

mmref::models::WenetConformerConfig wenet_config(const nlohmann::json& j) {
  mmref::models::WenetConformerConfig c;
  c.input_size = j.at("input_size");
  c.output_size = j.at("output_size");
  c.attention_heads = j.value("attention_heads", c.attention_heads);
  c.linear_units = j.value("linear_units", c.linear_units);
  c.num_blocks = j.value("num_blocks", c.num_blocks);
  c.dropout_rate = j.value("dropout_rate", c.dropout_rate);
  c.positional_dropout_rate = j.value("positional_dropout_rate", c.positional_dropout_rate);
  c.attention_dropout_rate = j.value("attention_dropout_rate", c.attention_dropout_rate);
  c.input_layer = j.value("input_layer", c.input_layer);
  c.pos_enc_layer_type = j.value("pos_enc_layer_type", c.pos_enc_layer_type);
  c.selfattention_layer_type = j.value("selfattention_layer_type", c.selfattention_layer_type);
  c.macaron_style = j.value("macaron_style", c.macaron_style);
  c.use_cnn_module = j.value("use_cnn_module", c.use_cnn_module);
  c.cnn_module_kernel = j.value("cnn_module_kernel", c.cnn_module_kernel);
  c.causal = j.value("causal", c.causal);
  c.cnn_module_norm = j.value("cnn_module_norm", c.cnn_module_norm);
  c.normalize_before = j.value("normalize_before", c.normalize_before);
  c.activation_type = j.value("activation_type", c.activation_type);
  return c;
}

TEST(ConformerGolden, WenetEncoderMatchesReference) {
  const std::string dir = mmref::test::golden_path("conformer_wenet");
  MMREF_REQUIRE_GOLDEN(dir);
  ASSERT_TRUE(mmref::fs::exists(dir + "/weights.safetensors")) << dir;
  const nlohmann::json cs = read_json(dir + "/case.json");
  const Tolerance tol = tolerance(cs);
  const auto weights = mmref::load_weights(dir + "/weights.safetensors");
  mmref::models::WenetConformerConfig c = wenet_config(cs.at("config"));
  c.global_cmvn = weights.count("global_cmvn.mean") > 0;
  mmref::models::WenetConformerEncoder enc(c);
  enc->load(weights);
  const auto io = mmref::load_safetensors(dir + "/io.safetensors");
  const at::Tensor want_masks = io.at("output.masks").to(at::kBool);  // (B, 1, T')
  const at::Tensor want_lengths = want_masks.sum(-1).squeeze(1);      // (B,)
  torch::NoGradGuard ng;
  for (auto [ab, cb] : {std::pair{AttentionBackend::kMmref, ConvBackend::kMmref},
                        std::pair{AttentionBackend::kTorch, ConvBackend::kTorch},
                        std::pair{AttentionBackend::kReference, ConvBackend::kReference}}) {
    const std::string name = mmref::kernels::attention_backend_name(ab);
    enc->attention_backend = ab;
    enc->conv_backend = cb;
    const auto out = enc->forward(io.at("input.x"), io.at("input.lengths"));
    EXPECT_TRUE(at::equal(out.masks, want_masks)) << name;
    EXPECT_TRUE(at::equal(out.lengths, want_lengths)) << name;
    if (io.count("output.embed_xs")) {
      expect_close_valid(out.embed_x, io.at("output.embed_xs"), want_lengths, tol, name + " embed_xs");
    }
    if (io.count("output.pos_emb")) {
      const at::Tensor pe = io.at("output.pos_emb");
      EXPECT_LE((out.pos_emb - pe).abs().max().item<double>(), 1e-6) << name << " pos_emb";
    }
    const double err = expect_close_valid(out.y, io.at("output.y"), want_lengths, tol, name + " y");
    std::cout << "[conformer_wenet] backend " << name << ": y max abs err on valid frames " << err
              << " (atol " << tol.atol << " + rtol " << tol.rtol << ")\n";
  }
}

TEST(ConformerGolden, TorchaudioConformerMatchesReference) {
  const std::string dir = mmref::test::golden_path("conformer_torchaudio");
  MMREF_REQUIRE_GOLDEN(dir);
  ASSERT_TRUE(mmref::fs::exists(dir + "/weights.safetensors")) << dir;
  const nlohmann::json cs = read_json(dir + "/case.json");
  const Tolerance tol = tolerance(cs);
  const nlohmann::json& j = cs.at("config");
  mmref::models::TorchaudioConformerConfig c;
  c.input_dim = j.at("input_dim");
  c.num_heads = j.at("num_heads");
  c.ffn_dim = j.at("ffn_dim");
  c.num_layers = j.at("num_layers");
  c.depthwise_conv_kernel_size = j.at("depthwise_conv_kernel_size");
  c.dropout = j.value("dropout", 0.0);
  const nlohmann::json d = cs.value("defaults_used", nlohmann::json::object());
  c.use_group_norm = j.value("use_group_norm", d.value("use_group_norm", false));
  c.convolution_first = j.value("convolution_first", d.value("convolution_first", false));
  mmref::models::TorchaudioConformer net(c);
  net->load(dir + "/weights.safetensors");
  const auto io = mmref::load_safetensors(dir + "/io.safetensors");
  torch::NoGradGuard ng;
  for (auto [ab, cb] : {std::pair{AttentionBackend::kMmref, ConvBackend::kMmref},
                        std::pair{AttentionBackend::kTorch, ConvBackend::kTorch},
                        std::pair{AttentionBackend::kReference, ConvBackend::kReference}}) {
    const std::string name = mmref::kernels::attention_backend_name(ab);
    net->backends = {ab, cb};
    const auto [y, lengths] = net->forward(io.at("input.x"), io.at("input.lengths"));
    EXPECT_TRUE(at::equal(lengths, io.at("output.lengths"))) << name;
    const double err = expect_close_valid(y, io.at("output.y"), io.at("output.lengths"), tol, name + " y");
    std::cout << "[conformer_torchaudio] backend " << name << ": y max abs err on valid frames " << err
              << " (atol " << tol.atol << " + rtol " << tol.rtol << ")\n";
  }
}

}  // namespace
