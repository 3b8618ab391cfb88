// Unit tests of the Conformer encoders (wenet's ConformerEncoder and torchaudio's Conformer) on small
// random models: subsampled lengths, padding invariance, gradients, kernel backends against the plain
// reference in float64, input validation, checkpoint key handling, config parsing, stochastic depth and
// the causal conv. The reference comparisons are in conformer_golden_test.cpp.
//   build/cpu/tests/mmref_models_tests --gtest_filter='Conformer*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include <ATen/Functions.h>
#include <torch/utils.h>

#include "core/config.h"
#include "core/error.h"
#include "core/state_dict.h"
#include "models/asr/chunk_mask.h"
#include "models/asr/conformer_torchaudio.h"
#include "models/asr/conformer_wenet.h"

namespace {

using mmref::kernels::AttentionBackend;
using mmref::kernels::ConvBackend;
using mmref::models::TorchaudioConformer;
using mmref::models::TorchaudioConformerConfig;
using mmref::models::WenetConformerConfig;
using mmref::models::WenetConformerEncoder;
using mmref::models::WenetInputLayer;

WenetConformerConfig tiny_wenet() {
  WenetConformerConfig c;
  c.input_size = 20, c.output_size = 16, c.attention_heads = 2, c.linear_units = 32, c.num_blocks = 2;
  c.cnn_module_kernel = 5;
  c.dropout_rate = c.positional_dropout_rate = c.attention_dropout_rate = 0;
  return c;
}

TorchaudioConformerConfig tiny_torchaudio() {
  TorchaudioConformerConfig c;
  c.input_dim = 16, c.num_heads = 2, c.ffn_dim = 24, c.num_layers = 2, c.depthwise_conv_kernel_size = 7;
  return c;
}

// Random non-trivial BatchNorm statistics, so eval mode is not an identity.
void randomize_batch_norm(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  for (const auto& item : m.named_buffers()) {
    const std::string& name = item.key();
    at::Tensor b = item.value();
    if (name.find("running_mean") != std::string::npos) b.copy_(0.1 * at::randn_like(b));
    if (name.find("running_var") != std::string::npos) b.uniform_(0.5, 1.5);
  }
}

double max_abs(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mmref::Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- subsampling lengths
// Valid output frames for T valid input frames, worked out by hand from wenet's mask slicing
// (x_mask[:, :, 2::2] keeps indices 2, 4, ...: ceil((n - 2) / 2) = (n - 1) / 2 of n frames;
// [:, :, 4::3] keeps ceil((n - 4) / 3) = (n - 2) / 3):
//      T | conv2d (x4) | conv2d6 (x6) | conv2d8 (x8)
//      0 |      0      |      0       |      0
//      6 |      0      |      0       |      0        6 -> 2 -> 0
//      7 |      1      |      0       |      0        7 -> 3 -> 1 (x4); 3 -> (3-2)/3 = 0 (x6)
//     10 |      1      |      0       |      0
//     11 |      2      |      1       |      0       11 -> 5 -> 2 (x4); 5 -> 1 (x6); 5 -> 2 -> 0 (x8)
//     14 |      2      |      1       |      0
//     15 |      3      |      1       |      1       15 -> 7 -> 3 -> 1 (x8)
//     95 |     23      |     15       |     11       95 -> 47 -> 23 -> 11
//    120 |     29      |     19       |     14      120 -> 59 -> 29 -> 14
//   1000 |    249      |    165       |    124     1000 -> 499 -> 249 -> 124
TEST(ConformerWenet, SubsampledLengthsMatchTheHandTable) {
  struct Row {
    int64_t t, x4, x6, x8;
  };
  const Row table[] = {{0, 0, 0, 0},      {6, 0, 0, 0},         {7, 1, 0, 0},  {10, 1, 0, 0},
                       {11, 2, 1, 0},     {14, 2, 1, 0},        {15, 3, 1, 1}, {95, 23, 15, 11},
                       {120, 29, 19, 14}, {1000, 249, 165, 124}};
  for (const Row& r : table) {
    EXPECT_EQ(mmref::models::wenet_subsampled_length(WenetInputLayer::kConv2d, r.t), r.x4) << r.t;
    EXPECT_EQ(mmref::models::wenet_subsampled_length(WenetInputLayer::kConv2d6, r.t), r.x6) << r.t;
    EXPECT_EQ(mmref::models::wenet_subsampled_length(WenetInputLayer::kConv2d8, r.t), r.x8) << r.t;
    EXPECT_EQ(mmref::models::wenet_subsampled_length(WenetInputLayer::kLinear, r.t), r.t);
  }
  // The tensor form agrees with wenet's slicing itself, done here on an explicit prefix mask.
  for (WenetInputLayer layer :
       {WenetInputLayer::kConv2d, WenetInputLayer::kConv2d6, WenetInputLayer::kConv2d8}) {
    const int64_t tmax = 200;
    const at::Tensor lengths = at::arange(tmax + 1, at::kLong);
    at::Tensor mask = at::arange(tmax, at::kLong).unsqueeze(0) < lengths.unsqueeze(1);  // (N, T)
    mask = mask.slice(1, 2, tmax, 2);
    mask = layer == WenetInputLayer::kConv2d6 ? mask.slice(1, 4, mask.size(1), 3)
                                              : mask.slice(1, 2, mask.size(1), 2);
    if (layer == WenetInputLayer::kConv2d8) mask = mask.slice(1, 2, mask.size(1), 2);
    EXPECT_TRUE(at::equal(mmref::models::wenet_subsampled_lengths(layer, lengths), mask.sum(1)))
        << mmref::models::wenet_input_layer_name(layer);
  }
}

TEST(ConformerWenet, ForwardOutputLengthsForEachSubsampling) {
  torch::manual_seed(1);
  for (const char* layer : {"conv2d", "conv2d6", "conv2d8"}) {
    WenetConformerConfig c = tiny_wenet();
    c.input_layer = layer;
    WenetConformerEncoder enc(c);
    torch::NoGradGuard ng;
    const auto out = enc->forward(at::randn({2, 120, 20}), at::tensor({120, 95}, at::kLong));
    const WenetInputLayer l = mmref::models::parse_wenet_input_layer(layer);
    const int64_t t_out = mmref::models::wenet_subsampled_length(l, 120);
    EXPECT_EQ(out.y.sizes(), (std::vector<int64_t>{2, t_out, 16})) << layer;
    EXPECT_EQ(out.lengths[0].item<int64_t>(), t_out) << layer;
    EXPECT_EQ(out.lengths[1].item<int64_t>(), mmref::models::wenet_subsampled_length(l, 95)) << layer;
    EXPECT_EQ(out.masks.sizes(), (std::vector<int64_t>{2, 1, t_out}));
    EXPECT_EQ(out.masks.sum().item<int64_t>(), out.lengths.sum().item<int64_t>());
    EXPECT_EQ(enc->subsampling_rate(), std::string(layer) == "conv2d"    ? 4
                                       : std::string(layer) == "conv2d6" ? 6
                                                                         : 8);
    EXPECT_EQ(enc->output_size(), 16);
  }
}

// ---------------------------------------------------------------- padding invariance
// wenet zeroes padded frames before pointwise_conv1, whose bias makes them glu(bias) != 0; the symmetric
// depthwise conv reads those across the end of an utterance, where an unpadded utterance sees zeros.
// So exact invariance holds (in wenet too: checked against its ConvolutionModule) for a causal conv
// module, or for a symmetric one with a zero pointwise_conv1 bias; with the bias the last valid frames
// differ, which the second test pins down as reference behaviour.
void zero_pointwise_conv1_bias(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  for (const auto& item : m.named_parameters()) {
    if (item.key().find("pointwise_conv1.bias") != std::string::npos) item.value().zero_();
  }
}

TEST(ConformerWenet, PaddedBatchMatchesEachUtteranceAlone) {
  for (const char* norm : {"batch_norm", "layer_norm"}) {
    for (bool causal : {false, true}) {
      torch::manual_seed(2);
      WenetConformerConfig c = tiny_wenet();
      c.cnn_module_norm = norm;
      c.causal = causal;
      WenetConformerEncoder enc(c);
      randomize_batch_norm(*enc);
      if (!causal) zero_pointwise_conv1_bias(*enc);
      const std::vector<int64_t> lens = {83, 60, 31};
      at::Tensor x = at::randn({3, 83, 20});
      // Garbage in the padding: it must not reach any valid output frame.
      x[1].narrow(0, 60, 23).fill_(50.0);
      x[2].narrow(0, 31, 52).normal_(0, 100);
      torch::NoGradGuard ng;
      for (auto [ab, cb] : {std::pair{AttentionBackend::kMmref, ConvBackend::kMmref},
                            std::pair{AttentionBackend::kTorch, ConvBackend::kTorch}}) {
        enc->attention_backend = ab;
        enc->conv_backend = cb;
        const auto batch = enc->forward(x, at::tensor(lens, at::kLong));
        for (int64_t b = 0; b < 3; ++b) {
          const auto one =
              enc->forward(x[b].narrow(0, 0, lens[b]).unsqueeze(0), at::tensor({lens[b]}, at::kLong));
          const int64_t n = one.y.size(1);
          ASSERT_EQ(batch.lengths[b].item<int64_t>(), n);
          EXPECT_LT(max_abs(batch.y[b].narrow(0, 0, n), one.y[0]), 1e-5)
              << norm << (causal ? " causal" : "") << " row " << b << " backend " << static_cast<int>(ab);
        }
      }
    }
  }
}

TEST(ConformerWenet, SymmetricConvWithBiasSeesPaddingAsGluOfBias) {
  torch::manual_seed(2);
  WenetConformerConfig c = tiny_wenet();
  c.num_blocks = 1;  // one layer: only frames within (kernel - 1) / 2 = 2 of the end can differ
  WenetConformerEncoder enc(c);
  randomize_batch_norm(*enc);
  const at::Tensor x = at::randn({2, 83, 20});
  torch::NoGradGuard ng;
  const auto batch = enc->forward(x, at::tensor({83, 60}, at::kLong));
  const auto one = enc->forward(x[1].narrow(0, 0, 60).unsqueeze(0), at::tensor({60}, at::kLong));
  const int64_t n = one.y.size(1);  // 14 valid frames
  ASSERT_EQ(batch.lengths[1].item<int64_t>(), n);
  EXPECT_LT(max_abs(batch.y[1].narrow(0, 0, n - 2), one.y[0].narrow(0, 0, n - 2)), 1e-5);
  EXPECT_GT(max_abs(batch.y[1].narrow(0, n - 2, 2), one.y[0].narrow(0, n - 2, 2)), 1e-4);
}

// torchaudio does not zero padded frames before its depthwise conv; with kernel size 1 the conv does
// not mix frames, so the key padding mask alone must make padded batches exact.
TEST(ConformerTorchaudio, PaddedBatchMatchesEachUtteranceWithPointwiseConv) {
  torch::manual_seed(3);
  TorchaudioConformerConfig c = tiny_torchaudio();
  c.depthwise_conv_kernel_size = 1;
  TorchaudioConformer net(c);
  randomize_batch_norm(*net);
  const std::vector<int64_t> lens = {40, 25};
  at::Tensor x = at::randn({2, 40, 16});
  x[1].narrow(0, 25, 15).fill_(30.0);
  torch::NoGradGuard ng;
  const auto [y, l] = net->forward(x, at::tensor(lens, at::kLong));
  EXPECT_TRUE(at::equal(l, at::tensor(lens, at::kLong)));
  for (int64_t b = 0; b < 2; ++b) {
    const auto [y1, l1] =
        net->forward(x[b].narrow(0, 0, lens[b]).unsqueeze(0), at::tensor({lens[b]}, at::kLong));
    EXPECT_LT(max_abs(y[b].narrow(0, 0, lens[b]), y1[0]), 1e-5) << b;
  }
}

// ---------------------------------------------------------------- gradients
void expect_every_parameter_has_a_gradient(torch::nn::Module& m, const std::string& what) {
  for (const auto& item : m.named_parameters()) {
    const std::string& name = item.key();
    const at::Tensor& p = item.value();
    ASSERT_TRUE(p.grad().defined()) << what << ": no gradient for " << name;
    EXPECT_TRUE(at::isfinite(p.grad()).all().item<bool>()) << what << ": non-finite gradient for " << name;
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0) << what << ": zero gradient for " << name;
  }
}

TEST(ConformerWenet, GradientsReachEveryParameter) {
  for (const char* layer : {"conv2d", "conv2d6", "conv2d8"}) {
    torch::manual_seed(4);
    WenetConformerConfig c = tiny_wenet();
    c.input_layer = layer;
    c.dropout_rate = c.attention_dropout_rate = 0.1;
    c.global_cmvn = true;
    WenetConformerEncoder enc(c);
    enc->train();
    const auto out = enc->forward(at::randn({2, 90, 20}), at::tensor({90, 64}, at::kLong));
    const at::Tensor w = at::randn_like(out.y);
    (out.y * w * out.masks.transpose(1, 2)).sum().backward();
    expect_every_parameter_has_a_gradient(*enc, layer);
  }
}

TEST(ConformerTorchaudio, GradientsReachEveryParameter) {
  for (bool group_norm : {false, true}) {
    torch::manual_seed(5);
    TorchaudioConformerConfig c = tiny_torchaudio();
    c.use_group_norm = group_norm;
    c.convolution_first = group_norm;
    c.dropout = 0.1;
    TorchaudioConformer net(c);
    net->train();
    const auto [y, l] = net->forward(at::randn({2, 30, 16}), at::tensor({30, 21}, at::kLong));
    (y * at::randn_like(y)).sum().backward();
    expect_every_parameter_has_a_gradient(*net, group_norm ? "group_norm" : "batch_norm");
  }
}

// The fused kernels against the plain reference composition, forward and backward, in float64.
TEST(ConformerWenet, KernelsMatchTheReferenceInFloat64) {
  torch::manual_seed(6);
  WenetConformerEncoder enc(tiny_wenet());
  randomize_batch_norm(*enc);
  enc->to(at::kDouble);
  const at::Tensor x = at::randn({2, 60, 20}, at::kDouble);
  const at::Tensor lens = at::tensor({60, 41}, at::kLong);
  std::map<std::string, at::Tensor> grads[2];
  at::Tensor ys[2];
  int i = 0;
  for (auto [ab, cb] : {std::pair{AttentionBackend::kMmref, ConvBackend::kMmref},
                        std::pair{AttentionBackend::kReference, ConvBackend::kReference}}) {
    enc->zero_grad();
    enc->attention_backend = ab;
    enc->conv_backend = cb;
    const auto out = enc->forward(x, lens);
    (out.y * out.masks.transpose(1, 2) * at::cos(out.y)).sum().backward();
    ys[i] = out.y.detach();
    for (const auto& item : enc->named_parameters()) grads[i][item.key()] = item.value().grad().clone();
    ++i;
  }
  EXPECT_LT(max_abs(ys[0], ys[1]), 1e-10);
  for (const auto& [name, g] : grads[0]) EXPECT_LT(max_abs(g, grads[1][name]), 1e-9) << name;
}

TEST(ConformerTorchaudio, KernelsMatchTheReferenceInFloat64) {
  torch::manual_seed(7);
  TorchaudioConformerConfig c = tiny_torchaudio();
  c.use_group_norm = true;
  TorchaudioConformer net(c);
  net->to(at::kDouble);
  const at::Tensor x = at::randn({2, 33, 16}, at::kDouble);
  const at::Tensor lens = at::tensor({33, 20}, at::kLong);
  net->backends = {AttentionBackend::kMmref, ConvBackend::kMmref};
  const at::Tensor a = net->forward(x, lens).first;
  net->backends = {AttentionBackend::kReference, ConvBackend::kReference};
  const at::Tensor b = net->forward(x, lens).first;
  EXPECT_LT(max_abs(a, b), 1e-10);
}

// ---------------------------------------------------------------- input validation
TEST(ConformerWenet, BadInputNamesTheShapes) {
  WenetConformerEncoder enc(tiny_wenet());
  torch::NoGradGuard ng;
  std::string m = error_of([&] { enc->forward(at::randn({1, 50, 40}), at::tensor({50}, at::kLong)); });
  EXPECT_NE(m.find("(B, T, 20)"), std::string::npos) << m;
  EXPECT_NE(m.find("[1, 50, 40]"), std::string::npos) << m;
  m = error_of([&] { enc->forward(at::randn({50, 20}), at::tensor({50}, at::kLong)); });
  EXPECT_NE(m.find("[50, 20]"), std::string::npos) << m;
  m = error_of([&] { enc->forward(at::randn({2, 50, 20}), at::tensor({50}, at::kLong)); });
  EXPECT_NE(m.find("lengths [1]"), std::string::npos) << m;
  m = error_of([&] { enc->forward(at::randn({1, 50, 20}), at::tensor({51}, at::kLong)); });
  EXPECT_NE(m.find("[0, T = 50]"), std::string::npos) << m;
  m = error_of([&] { enc->forward(at::randn({1, 6, 20}), at::tensor({6}, at::kLong)); });
  EXPECT_NE(m.find("at least 7 frames"), std::string::npos) << m;
}

TEST(ConformerTorchaudio, BadInputNamesTheShapes) {
  TorchaudioConformer net(tiny_torchaudio());
  torch::NoGradGuard ng;
  std::string m = error_of([&] { net->forward(at::randn({2, 30, 80}), at::tensor({30, 30}, at::kLong)); });
  EXPECT_NE(m.find("(B, T, 16)"), std::string::npos) << m;
  EXPECT_NE(m.find("[2, 30, 80]"), std::string::npos) << m;
  m = error_of([&] { net->forward(at::randn({2, 30, 16}), at::tensor({30, 31}, at::kLong)); });
  EXPECT_NE(m.find("T = 30"), std::string::npos) << m;
}

// ---------------------------------------------------------------- weights and config
TEST(ConformerWenet, LoadsTheEncoderPartOfAnAsrModelCheckpoint) {
  torch::manual_seed(8);
  WenetConformerEncoder a(tiny_wenet()), b(tiny_wenet());
  randomize_batch_norm(*a);
  std::map<std::string, at::Tensor> ckpt;
  for (const auto& [k, v] : mmref::module_state_dict(*a)) {
    if (k != "embed.pos_enc.pe") ckpt["encoder." + k] = v.clone();  // old checkpoints lack pe
  }
  ckpt["ctc.ctc_lo.weight"] = at::randn({10, 16});
  ckpt["decoder.embed.0.weight"] = at::randn({10, 16});
  b->load(ckpt);
  torch::NoGradGuard ng;
  const at::Tensor x = at::randn({1, 40, 20});
  EXPECT_TRUE(
      at::equal(a->forward(x, at::tensor({40}, at::kLong)).y, b->forward(x, at::tensor({40}, at::kLong)).y));
  // CMVN statistics in the file but not in the config: say which setting to change.
  ckpt["encoder.global_cmvn.mean"] = at::zeros({20});
  ckpt["encoder.global_cmvn.istd"] = at::ones({20});
  const std::string m = error_of([&] { b->load(ckpt); });
  EXPECT_NE(m.find("global_cmvn: true"), std::string::npos) << m;
  // And with it: (x - mean) * istd before the embed.
  WenetConformerConfig c = tiny_wenet();
  c.global_cmvn = true;
  WenetConformerEncoder d(c);
  ckpt["encoder.global_cmvn.mean"] = at::full({20}, 0.5);
  ckpt["encoder.global_cmvn.istd"] = at::full({20}, 2.0);
  d->load(ckpt);
  EXPECT_LT(max_abs(d->forward(x, at::tensor({40}, at::kLong)).y,
                    a->forward((x - 0.5) * 2.0, at::tensor({40}, at::kLong)).y),
            1e-5);
  // Strict: a missing tensor is named.
  ckpt.erase("encoder.encoders.1.norm_final.weight");
  const std::string missing = error_of([&] { d->load(ckpt); });
  EXPECT_NE(missing.find("encoders.1.norm_final.weight"), std::string::npos) << missing;
}

TEST(ConformerWenet, ParsesEncoderConf) {
  using mmref::config::Reader;
  const auto n = mmref::config::parse_yaml(
      "output_size: 144\nattention_heads: 4\nlinear_units: 256\nnum_blocks: 3\ninput_layer: conv2d6\n"
      "cnn_module_kernel: 8\ncausal: true\ncnn_module_norm: layer_norm\nstatic_chunk_size: 0\n"
      "use_dynamic_chunk: false\n",
      "enc.yaml");
  Reader r(&n, "", nullptr);
  WenetConformerConfig c;
  mmref::models::parse(r, c);
  EXPECT_EQ(c.output_size, 144);
  EXPECT_EQ(c.input_layer, "conv2d6");
  EXPECT_TRUE(c.causal);
  EXPECT_EQ(c.cnn_module_norm, "layer_norm");
  for (const char* bad : {"output_sise: 3\n", "attention_heads: 5\n", "cnn_module_kernel: 8\n",
                          "static_chunk_size: -1\n", "input_layer: conv1d\n", "dropout_rate: 1.5\n"}) {
    const auto nb = mmref::config::parse_yaml(bad, "bad.yaml");
    Reader rb(&nb, "", nullptr);
    WenetConformerConfig cb;
    EXPECT_THROW(mmref::models::parse(rb, cb), mmref::ConfigError) << bad;
  }
  EXPECT_EQ(mmref::models::wenet_conformer_preset("tiny").output_size, 144);
  EXPECT_EQ(mmref::models::wenet_conformer_preset("aishell").num_blocks, 12);
  EXPECT_THROW(mmref::models::wenet_conformer_preset("huge"), mmref::Error);
}

TEST(ConformerTorchaudio, ParsesConfigAndLoadsItsOwnStateDict) {
  const auto n = mmref::config::parse_yaml(
      "input_dim: 16\nnum_heads: 2\nffn_dim: 24\nnum_layers: 1\n"
      "depthwise_conv_kernel_size: 7\nuse_group_norm: true\n",
      "ta.yaml");
  mmref::config::Reader r(&n, "", nullptr);
  TorchaudioConformerConfig c;
  mmref::models::parse(r, c);
  EXPECT_TRUE(c.use_group_norm);
  const auto nb = mmref::config::parse_yaml("depthwise_conv_kernel_size: 8\n", "ta.yaml");
  mmref::config::Reader rb(&nb, "", nullptr);
  TorchaudioConformerConfig cb;
  EXPECT_THROW(mmref::models::parse(rb, cb), mmref::ConfigError);
  TorchaudioConformer a(c), b(c);
  const auto sd = mmref::module_state_dict(*a);
  EXPECT_TRUE(sd.count("conformer_layers.0.conv_module.sequential.3.weight"));  // GroupNorm at index 3
  EXPECT_TRUE(sd.count("conformer_layers.0.ffn2.sequential.4.bias"));
  EXPECT_TRUE(sd.count("conformer_layers.0.self_attn.in_proj_weight"));
  b->load(sd);
}

// ---------------------------------------------------------------- stochastic depth, causal conv
TEST(ConformerWenet, StochasticDepthOnlyInTraining) {
  torch::manual_seed(9);
  WenetConformerConfig c = tiny_wenet();
  c.num_blocks = 4;
  c.layer_drop_prob = 0.5;
  WenetConformerEncoder enc(c);
  WenetConformerConfig c0 = c;
  c0.layer_drop_prob = 0;
  WenetConformerEncoder plain(c0);
  plain->load(mmref::module_state_dict(*enc));
  const at::Tensor x = at::randn({1, 40, 20});
  const at::Tensor l = at::tensor({40}, at::kLong);
  torch::NoGradGuard ng;
  EXPECT_TRUE(at::equal(enc->forward(x, l).y, plain->forward(x, l).y));  // eval: every layer, unscaled
  enc->train();
  plain->train();
  std::set<double> sums;
  for (int i = 0; i < 12; ++i) sums.insert(enc->forward(x, l).y.sum().item<double>());
  EXPECT_GE(sums.size(), 3u);  // different layer subsets
  const double plain_sum = plain->forward(x, l).y.sum().item<double>();
  EXPECT_EQ(sums.count(plain_sum), 0u);  // kept layers are scaled by 1 / (1 - p)
}

TEST(ConformerWenet, CausalConvModuleDoesNotSeeTheFuture) {
  torch::manual_seed(10);
  for (bool causal : {true, false}) {
    mmref::models::WenetConvolutionModule conv(8, 5, /*use_layer_norm=*/false, causal,
                                               mmref::models::WenetActivation::kSwish);
    conv->eval();
    torch::NoGradGuard ng;
    const at::Tensor x = at::randn({1, 30, 8});
    at::Tensor x2 = x.clone();
    x2.narrow(1, 10, 20).normal_();
    const at::Tensor a = conv->forward(x, at::Tensor(), ConvBackend::kMmref);
    const at::Tensor b = conv->forward(x2, at::Tensor(), ConvBackend::kMmref);
    const double past = max_abs(a.narrow(1, 0, 10), b.narrow(1, 0, 10));
    if (causal) {
      EXPECT_EQ(past, 0) << "frames before 10 changed when only frames >= 10 did";
    } else {
      EXPECT_GT(past, 0) << "a symmetric conv should see 2 frames ahead";
    }
  }
}

// ---- streaming: chunk masks (models/asr/chunk_mask.h) ----

TEST(ConformerChunkMask, SubsequentChunkMaskHandValues) {
  using mmref::models::subsequent_chunk_mask;
  const at::Tensor m = subsequent_chunk_mask(4, 2, -1, at::kCPU);
  EXPECT_TRUE(at::equal(m, at::tensor({1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}).reshape({4, 4}).to(at::kBool)));
  // One left chunk, the last chunk short: frame 4 (chunk 2) sees frames 2..5, frame 6 (chunk 3) sees 4..6.
  const at::Tensor l = subsequent_chunk_mask(7, 2, 1, at::kCPU);
  EXPECT_TRUE(at::equal(l[4], at::tensor({0, 0, 1, 1, 1, 1, 0}).to(at::kBool)));
  EXPECT_TRUE(at::equal(l[6], at::tensor({0, 0, 0, 0, 1, 1, 1}).to(at::kBool)));
  EXPECT_TRUE(at::equal(l[1], at::tensor({1, 1, 0, 0, 0, 0, 0}).to(at::kBool)));
  EXPECT_THROW(subsequent_chunk_mask(4, 0, -1, at::kCPU), mmref::Error);
}

TEST(ConformerChunkMask, ChooseChunkFollowsWenet) {
  using mmref::models::choose_chunk;
  mmref::models::ChunkSettings s;
  EXPECT_EQ(choose_chunk(s, 100, true).chunk_size, 0);  // no streaming configured: full context
  s.static_chunk_size = 8, s.num_decoding_left_chunks = 2;
  EXPECT_EQ(choose_chunk(s, 100, true).chunk_size, 8);
  EXPECT_EQ(choose_chunk(s, 100, true).num_left_chunks, -1);
  EXPECT_EQ(choose_chunk(s, 100, false).num_left_chunks, 2);
  s = {};
  s.use_dynamic_chunk = true;
  EXPECT_EQ(choose_chunk(s, 100, false).chunk_size, 0);  // inference, decoding_chunk_size 0: full
  s.decoding_chunk_size = 16;
  EXPECT_EQ(choose_chunk(s, 100, false).chunk_size, 16);
  // Training: full context when the draw exceeds T/2 (about half the time), else 1..25.
  torch::manual_seed(3);
  s.use_dynamic_left_chunk = true;
  int full = 0;
  for (int i = 0; i < 400; ++i) {
    const auto c = choose_chunk(s, 100, true);
    if (c.chunk_size == 0) {
      ++full;
      continue;
    }
    EXPECT_GE(c.chunk_size, 1);
    EXPECT_LE(c.chunk_size, 25);
    EXPECT_GE(c.num_left_chunks, 0);
    EXPECT_LT(c.num_left_chunks, std::max<int64_t>(1, 99 / c.chunk_size));
  }
  EXPECT_GT(full, 150);
  EXPECT_LT(full, 250);
}

// The streaming property: with static chunks of 4 output frames and a causal conv module, the first
// chunk's output does not change when input beyond its receptive field does (conv2d x4 subsampling:
// output frame t reads input frames 4t..4t+6, so chunk 0 = frames 0..3 reads up to input frame 18);
// without chunks (full context) it does. Dynamic-chunk models decode the same with decoding_chunk_size.
TEST(ConformerChunkMask, ChunkedEncoderDoesNotSeeLaterChunks) {
  torch::manual_seed(11);
  const at::Tensor x = at::randn({1, 64, 20});
  at::Tensor x2 = x.clone();
  x2.narrow(1, 19, 45).normal_();
  const at::Tensor len = at::full({1}, 64, at::kLong);
  for (int64_t chunk : {4, 0}) {
    WenetConformerConfig c = tiny_wenet();
    c.causal = true, c.cnn_module_kernel = 4, c.static_chunk_size = chunk;
    WenetConformerEncoder enc(c);
    randomize_batch_norm(*enc);
    enc->eval();
    torch::NoGradGuard ng;
    const at::Tensor a = enc->forward(x, len).y, b = enc->forward(x2, len).y;
    ASSERT_EQ(a.size(1), 15);
    const double first = max_abs(a.narrow(1, 0, 4), b.narrow(1, 0, 4));
    if (chunk > 0) {
      EXPECT_EQ(first, 0) << "chunk 0 saw later input";
      EXPECT_GT(max_abs(a.narrow(1, 4, 11), b.narrow(1, 4, 11)), 1e-3);
      // The same weights as a dynamic-chunk model decoding with chunk 4 give the same output.
      WenetConformerConfig cd = c;
      cd.static_chunk_size = 0, cd.use_dynamic_chunk = true;
      WenetConformerEncoder dyn(cd);
      mmref::load_state_dict(*dyn, mmref::module_state_dict(*enc));
      dyn->eval();
      dyn->decoding_chunk_size = 4;
      EXPECT_LT(max_abs(dyn->forward(x, len).y, a), 1e-6);
      dyn->decoding_chunk_size = 0;  // full context
      EXPECT_GT(max_abs(dyn->forward(x, len).y, a), 1e-4);
      // The attention kernels agree under the chunk mask.
      enc->attention_backend = AttentionBackend::kReference;
      EXPECT_LT(max_abs(enc->forward(x, len).y, a), 1e-5);
    } else {
      EXPECT_GT(first, 1e-4) << "full context should see the whole utterance";
    }
  }
  // Dynamic chunk training runs forward and backward with random chunks.
  WenetConformerConfig c = tiny_wenet();
  c.causal = true, c.cnn_module_kernel = 4, c.use_dynamic_chunk = true, c.use_dynamic_left_chunk = true;
  WenetConformerEncoder enc(c);
  enc->train();
  for (int i = 0; i < 4; ++i) {
    const at::Tensor y = enc->forward(at::randn({2, 120, 20}), at::full({2}, 120, at::kLong)).y;
    ASSERT_TRUE(y.isfinite().all().item<bool>());
    y.pow(2).mean().backward();
  }
  EXPECT_TRUE(enc->encoders->ptr<mmref::models::WenetConformerEncoderLayerImpl>(0)
                  ->self_attn->linear_q->weight.grad().defined());
}

}  // namespace
