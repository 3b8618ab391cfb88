// CLIP against openai/CLIP (../shared/golden/clip): the BPE tokenizer on every caption case (ids,
// untruncated BPE, cleaned text, decode: exact), image and text features and logits (atol 1e-4 +
// rtol 1e-4), the CLIP score, and the same outputs from the weights renamed to Hugging Face names.
#include <gtest/gtest.h>

#include "../golden_test_util.h"

#include <cstdlib>
#include <fstream>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "models/clip/clip_model.h"
#include "models/clip/clip_tokenizer.h"

namespace {

void expect_close(const at::Tensor& got, const at::Tensor& want, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double excess = ((got - want).abs() - (1e-4 + 1e-4 * want.abs())).max().item<double>();
  EXPECT_LE(excess, 0) << what << ": max abs diff " << (got - want).abs().max().item<double>();
}

TEST(ClipGolden, TokenizerMatchesEveryCase) {
  const std::string dir = mmref::test::golden_path("clip");
  MMREF_REQUIRE_GOLDEN(dir);
  mmref::models::ClipTokenizer tok(dir + "/bpe_simple_vocab_16e6.txt.gz");
  EXPECT_EQ(tok.vocab_size(), 49408);
  std::ifstream in(dir + "/tokenizer.json");
  const auto j = nlohmann::json::parse(in);
  const auto& cases = j.at("cases");
  ASSERT_GE(cases.size(), 15u);
  std::vector<std::string> texts;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string text = c.at("text");
    texts.push_back(text);
    EXPECT_EQ(mmref::models::ClipTokenizer::clean(text), c.at("cleaned_text").get<std::string>()) << "case " << i;
    const auto bpe = tok.encode(text);
    EXPECT_EQ(bpe, c.at("bpe_ids_without_sot_eot_untruncated").get<std::vector<int64_t>>()) << "case " << i << ": " << text;
    EXPECT_EQ(tok.decode(bpe), c.at("decoded").get<std::string>()) << "case " << i;
  }
  const at::Tensor ids = tok.tokenize(texts);  // (N, 77), truncate
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto want = cases[i].at("ids").get<std::vector<int64_t>>();
    const at::Tensor row = ids[static_cast<int64_t>(i)];
    std::vector<int64_t> got(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + want.size());
    EXPECT_EQ(got, want) << "case " << i;
    EXPECT_EQ(row.narrow(0, static_cast<int64_t>(want.size()), 77 - static_cast<int64_t>(want.size())).abs().sum().item<int64_t>(), 0);
  }
  EXPECT_THROW(tok.tokenize({texts.back()}, 77, /*truncate=*/false), mmref::Error);
  const auto io = mmref::load_safetensors(dir + "/io.safetensors");
  EXPECT_TRUE(at::equal(ids.narrow(0, 0, 15), io.at("output.tokenizer_ids")));
}

class ClipModelGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = mmref::test::golden_path("clip");
    MMREF_REQUIRE_GOLDEN(dir_);
    sd_ = mmref::load_weights(dir_ + "/weights.safetensors");
    io_ = mmref::load_safetensors(dir_ + "/io.safetensors");
  }
  void check(mmref::models::ClipModel& m) {
    torch::NoGradGuard ng;
    expect_close(m->encode_image(io_.at("input.image")), io_.at("output.image_features"), "image features");
    expect_close(m->encode_text(io_.at("input.text")), io_.at("output.text_features"), "text features");
    const at::Tensor logits = m->logits_per_image(io_.at("input.image"), io_.at("input.text"));
    expect_close(logits, io_.at("output.logits_per_image"), "logits_per_image");
    expect_close(logits.t(), io_.at("output.logits_per_text"), "logits_per_text");
    // 100 x cos and the CLIP score.
    at::Tensor i = m->encode_image(io_.at("input.image")), t = m->encode_text(io_.at("input.text"));
    i = i / i.norm(2, -1, true), t = t / t.norm(2, -1, true);
    const at::Tensor cos100 = 100 * at::matmul(i, t.t());
    expect_close(cos100, io_.at("output.clip_cos100"), "100 cos");
    expect_close(cos100.clamp_min(0), io_.at("output.clip_score_pairwise"), "pairwise score");
    const at::Tensor matched = (100 * (i * t.narrow(0, 0, 2)).sum(-1)).mean().clamp_min(0);
    expect_close(matched, io_.at("output.clip_score_torchmetrics"), "torchmetrics score");
  }
  std::string dir_;
  std::map<std::string, at::Tensor> sd_, io_;
};

TEST_F(ClipModelGolden, FeaturesAndLogitsMatchOpenAiClip) {
  // The fixture's text heads (2) differ from what build_model infers (64 / 64 = 1): pass them.
  const auto cfg = mmref::models::ClipConfig::infer(sd_, /*text_heads=*/2);
  EXPECT_EQ(cfg.vision_layers, 2);
  EXPECT_EQ(cfg.image_resolution, 64);
  EXPECT_EQ(cfg.embed_dim, 64);
  EXPECT_EQ(mmref::models::ClipConfig::infer(sd_).transformer_heads, 1);
  mmref::models::ClipModel m(cfg);
  m->load(sd_);
  check(m);
  // The preprocessing path: image_01 -> normalize at the model's resolution (no resize needed) equals input.image.
  expect_close(mmref::models::clip_preprocess(io_.at("input.image_01"), 64), io_.at("input.image"), "preprocess");
}

TEST_F(ClipModelGolden, HuggingFaceNamesLoadToTheSameModel) {
  // Rename to CLIPModel keys (split in_proj into q/k/v, transpose projections) and load those.
  std::map<std::string, at::Tensor> hf;
  for (const auto& [k, v] : sd_) {
    std::string key = k;
    auto rep = [&](const std::string& a, const std::string& b) {
      if (key.rfind(a, 0) == 0) key = b + key.substr(a.size());
    };
    if (k == "visual.proj") {
      hf["visual_projection.weight"] = v.t().contiguous();
      continue;
    }
    if (k == "text_projection") {
      hf["text_projection.weight"] = v.t().contiguous();
      continue;
    }
    rep("visual.transformer.resblocks.", "vision_model.encoder.layers.");
    rep("transformer.resblocks.", "text_model.encoder.layers.");
    for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
             {".attn.out_proj.", ".self_attn.out_proj."}, {".ln_1.", ".layer_norm1."}, {".ln_2.", ".layer_norm2."},
             {".mlp.c_fc.", ".mlp.fc1."}, {".mlp.c_proj.", ".mlp.fc2."}}) {
      const auto p = key.find(a);
      if (p != std::string::npos) key = key.substr(0, p) + b + key.substr(p + a.size());
    }
    const auto ip = key.find(".attn.in_proj_");
    if (ip != std::string::npos) {
      const std::string kind = key.substr(ip + 14);
      const auto parts = v.chunk(3, 0);
      const std::string base = key.substr(0, ip) + ".self_attn.";
      hf[base + "q_proj." + kind] = parts[0], hf[base + "k_proj." + kind] = parts[1], hf[base + "v_proj." + kind] = parts[2];
      continue;
    }
    static const std::map<std::string, std::string> flat = {
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
        {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
        {"ln_final.weight", "text_model.final_layer_norm.weight"},
        {"ln_final.bias", "text_model.final_layer_norm.bias"}};
    if (auto it = flat.find(key); it != flat.end()) key = it->second;
    hf[key] = v;
  }
  hf["text_model.embeddings.position_ids"] = at::arange(77).unsqueeze(0);
  mmref::models::ClipModel m(mmref::models::ClipConfig::infer(sd_, 2));
  m->load(hf);
  check(m);
}

TEST(ClipTokenizer, MissingOrWrongVocabularyIsAClearError) {
  EXPECT_THROW(mmref::models::ClipTokenizer("/nonexistent/bpe.txt.gz"), mmref::Error);
}

}  // namespace
