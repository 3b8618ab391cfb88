// LoRA adapters: the trainable parameter count equals the analytic count; an adapted model starts at
// the base model; training moves only the adapters (base weights bitwise unchanged); merged outputs
// equal adapter outputs within 1e-6 (fp32) and unmerge restores the base; a saved PEFT-format adapter
// reloads onto a fresh base and reproduces the outputs; regex selection and errors.
#include <gtest/gtest.h>

#include <cstdlib>

#include <ATen/Functions.h>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/sgd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "core/state_dict.h"
#include "models/common/lora.h"

namespace mmref::models {
namespace {

// enc.fc1 (10 -> 20), enc.fc2 (20 -> 5), conv (4 -> 6, K 3, pad 1), head (5 -> 3): a tiny tree.
struct EncImpl : torch::nn::Module {
  EncImpl() {
    fc1 = register_module("fc1", LoraLinear(10, 20));
    fc2 = register_module("fc2", LoraLinear(20, 5));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::silu(fc1->forward(x))); }
  LoraLinear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Enc);

struct NetImpl : torch::nn::Module {
  NetImpl() {
    enc = register_module("enc", Enc());
    LoraConv1dOptions co;
    co.in_channels = 4, co.out_channels = 6, co.kernel_size = 3, co.padding = 1;
    conv = register_module("conv", LoraConv1d(co));
    head = register_module("head", LoraLinear(5, 3));
  }
  // x (N, 10), s (N, 4, T) -> (N, 3) + (N, 6, T) summed into one loss-friendly pair
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& s) {
    return {head->forward(enc->forward(x)), conv->forward(s)};
  }
  Enc enc{nullptr};
  LoraConv1d conv{nullptr};
  LoraLinear head{nullptr};
};
TORCH_MODULE(Net);

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

class LoraTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::make_temp_dir("mmref_lora_");
    torch::manual_seed(0);
    x_ = torch::randn({7, 10});
    s_ = torch::randn({7, 4, 11});
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
  torch::Tensor x_, s_;
};

TEST_F(LoraTest, CountsStartAtBaseAndTrainsOnlyAdapters) {
  Net net;
  auto [y0, z0] = net->forward(x_, s_);
  const auto base = module_state_dict(*net);
  std::map<std::string, torch::Tensor> base_copy;
  for (const auto& [k, t] : base) base_copy[k] = t.clone();
  LoraConfig c;
  c.r = 4, c.alpha = 8;
  const auto paths = apply_lora(*net, c);
  EXPECT_EQ(paths, (std::vector<std::string>{"enc.fc1", "enc.fc2", "conv", "head"}));
  // r (in + out) per Linear; conv: A (r, 4, 3) + B (6, r, 1)
  EXPECT_EQ(count_trainable(*net), 4 * (10 + 20) + 4 * (20 + 5) + 4 * 4 * 3 + 6 * 4 + 4 * (5 + 3));
  auto [y1, z1] = net->forward(x_, s_);
  EXPECT_TRUE(torch::equal(y0, y1));  // B = 0 at init
  EXPECT_TRUE(torch::equal(z0, z1));
  torch::optim::SGD opt(trainable_parameters(*net), torch::optim::SGDOptions(0.1));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    auto [y, z] = net->forward(x_, s_);
    (y.pow(2).mean() + z.pow(2).mean()).backward();
    opt.step();
  }
  auto [y2, z2] = net->forward(x_, s_);
  EXPECT_GT(max_abs(y2, y0), 1e-4);
  EXPECT_GT(max_abs(z2, z0), 1e-4);
  for (const auto& [k, t] : base_copy) EXPECT_TRUE(torch::equal(module_state_dict(*net).at(k), t)) << k;
}

TEST_F(LoraTest, MergeMatchesAdapterAndUnmergeRestores) {
  Net net;
  const auto w0 = net->enc->fc1->weight.clone(), cw0 = net->conv->weight.clone();
  LoraConfig c;
  c.r = 3, c.alpha = 6;
  apply_lora(*net, c);
  {
    torch::NoGradGuard ng;  // non-zero adapters, as after training
    for (auto& p : trainable_parameters(*net)) p.normal_(0, 0.3);
  }
  auto [ya, za] = net->forward(x_, s_);
  merge_lora(*net);
  EXPECT_TRUE(net->head->lora().merged);
  auto [ym, zm] = net->forward(x_, s_);
  EXPECT_LT(max_abs(ym, ya), 1e-6 * std::max(1.0, ya.abs().max().item<double>()));
  EXPECT_LT(max_abs(zm, za), 1e-6 * std::max(1.0, za.abs().max().item<double>()));
  EXPECT_GT(max_abs(net->enc->fc1->weight, w0), 1e-3);
  unmerge_lora(*net);
  EXPECT_LT(max_abs(net->enc->fc1->weight, w0), 1e-6);
  EXPECT_LT(max_abs(net->conv->weight, cw0), 1e-6);
  auto [yu, zu] = net->forward(x_, s_);
  EXPECT_LT(max_abs(yu, ya), 1e-5);
}

TEST_F(LoraTest, PeftAdapterFilesRoundTrip) {
  Net net;
  const auto base = module_state_dict(*net);
  LoraConfig c;
  c.r = 2, c.alpha = 4, c.dropout = 0.1, c.target_modules = "enc\\..*";
  EXPECT_EQ(apply_lora(*net, c), (std::vector<std::string>{"enc.fc1", "enc.fc2"}));
  {
    torch::NoGradGuard ng;
    for (auto& p : trainable_parameters(*net)) p.normal_(0, 0.3);
  }
  net->eval();  // dropout off
  auto [ya, za] = net->forward(x_, s_);
  save_lora_adapter(*net, c, dir_ + "/adapter");
  // PEFT key names and config fields
  const auto st = load_safetensors(dir_ + "/adapter/adapter_model.safetensors");
  std::vector<std::string> keys;
  for (const auto& [k, t] : st) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"base_model.model.enc.fc1.lora_A.weight", "base_model.model.enc.fc1.lora_B.weight",
                                            "base_model.model.enc.fc2.lora_A.weight", "base_model.model.enc.fc2.lora_B.weight"}));
  EXPECT_EQ(st.at("base_model.model.enc.fc1.lora_A.weight").sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(st.at("base_model.model.enc.fc1.lora_B.weight").sizes(), (std::vector<int64_t>{20, 2}));
  const auto j = nlohmann::json::parse(fs::read_file(dir_ + "/adapter/adapter_config.json"));
  EXPECT_EQ(j.at("peft_type"), "LORA");
  EXPECT_EQ(j.at("r"), 2);
  EXPECT_EQ(j.at("lora_alpha"), 4.0);
  EXPECT_EQ(j.at("target_modules"), "enc\\..*");
  // a fresh model with the same base weights + the adapter reproduces the outputs
  Net fresh;
  load_state_dict(*fresh, base);
  const LoraConfig got = load_lora_adapter(*fresh, dir_ + "/adapter");
  EXPECT_EQ(got.r, 2);
  fresh->eval();
  auto [yb, zb] = fresh->forward(x_, s_);
  EXPECT_TRUE(torch::allclose(yb, ya, 1e-6, 1e-7));
  EXPECT_TRUE(torch::equal(zb, za));
  // PEFT's list form of target_modules (names matched as path suffixes)
  auto j2 = j;
  j2["target_modules"] = {"fc1", "fc2"};
  fs::atomic_write(dir_ + "/adapter/adapter_config.json", j2.dump());
  Net fresh2;
  load_state_dict(*fresh2, base);
  EXPECT_NO_THROW(load_lora_adapter(*fresh2, dir_ + "/adapter"));
}

TEST_F(LoraTest, ErrorsNameThePatternAndFile) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const mmref::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  Net net;
  LoraConfig c;
  c.target_modules = "decoder\\..*";
  EXPECT_NE(message([&] { apply_lora(*net, c); }).find("matches none of the model's 4 adaptable layers (enc.fc1"),
            std::string::npos);
  c.target_modules = "enc[";
  EXPECT_NE(message([&] { apply_lora(*net, c); }).find("not a valid regex"), std::string::npos);
  c.target_modules = "head";
  c.r = 0;
  EXPECT_NE(message([&] { apply_lora(*net, c); }).find("rank r must be >= 1"), std::string::npos);
  c.r = 2;
  apply_lora(*net, c);
  EXPECT_NE(message([&] { apply_lora(*net, c); }).find("already enabled"), std::string::npos);
  EXPECT_NE(message([&] { load_lora_adapter(*net, dir_ + "/nope"); }).find("adapter_config.json' not found"),
            std::string::npos);
  LoraConv1dOptions go;
  go.in_channels = 4, go.out_channels = 4, go.kernel_size = 3, go.groups = 2;
  LoraConv1d grouped(go);
  EXPECT_NE(message([&] { grouped->enable_lora(c); }).find("groups == 1"), std::string::npos);
}

}  // namespace
}  // namespace mmref::models
