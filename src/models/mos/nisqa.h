// NISQA (Mittag et al., "NISQA: A Deep CNN-Self-Attention Model for Multidimensional Speech Quality
// Prediction with Crowdsourced Datasets", Interspeech 2021): a learned, non-intrusive speech-quality (MOS)
// predictor. The network, with the reference state-dict names so the released weights load by name:
//
//   mel segments (B, N, 1, n_mels, seg_length), N = ceil((frames - seg_length + 1) / seg_hop)
//   cnn.model.*             AdaptCNN per segment: conv1..conv6 + bn1..bn6 (+ fc when cnn_fc_out_h), with
//                           adaptive max pools to cnn_pool_1/2/3        -> (B, N, cnn fan_out)
//   time_dependency.model.* SelfAttention: linear -> norm1 (-> pos_encoder.pe) -> layers.K {self_attn
//                           (nn.MultiheadAttention: in_proj_weight/bias, out_proj), linear1, linear2,
//                           norm1, norm2} with key padding                      -> (B, N, td_sa_d_model)
//   time_dependency_2.model.*  (model "NISQA" only) a second SelfAttention or skipped (td_2: skip)
//   pool.model.*            PoolAttFF (linear1, linear2, linear3) or PoolAtt (linear1, linear2):
//                           masked attention pooling over the N segments              -> (B, 1)
//   pool_layers.{0..4}.model.*  (model "NISQA_DIM") five such pools: MOS, NOI, DIS, COL, LOUD in that
//                           order (NISQA_lib.predict_dim)                              -> (B, 5)
//
// nisqa.tar (NISQA_DIM: MOS + noisiness, coloration, discontinuity, loudness) and nisqa_tts.tar /
// nisqa_mos_only.tar (NISQA: one output) are torch.save checkpoints {'args', 'model_state_dict', ...};
// load_nisqa reads them (nisqa_checkpoint.h) or a safetensors file plus the args as JSON. The args pick
// the options below; options NISQA has but this port does not (cnn_model standard/dff/skip, td lstm,
// pool avg/max/last_step, the double-ended NISQA_DE) are rejected by name.
//
// The front end (nisqa_features.h) is NISQA's get_librosa_melspec + segment_specs: resample to ms_sr when
// the args set one (ms_sr: null keeps the input rate), hop = int(sr * ms_hop_length), window =
// int(sr * ms_win_length), |STFT| -> Slaney mel -> dB (top_db 80 per clip), then segments. A clip with
// more than ms_max_segments segments is an error, as in the reference (raise it with set_max_segments).
// The wave is one channel (NISQA's ms_channel picks a file's channel; here the caller does, or mixes).
// Padded batches give the one-by-one results: each clip gets its own spectrogram, the CNN sees only
// valid segments (the reference packs them), attention masks padded keys and pooling padded steps.
//
// Ref: gabrielmittag/NISQA nisqa/NISQA_lib.py (NISQA, NISQA_DIM, Framewise, AdaptCNN, TimeDependency,
//      SelfAttention, SelfAttentionLayer, PositionalEncoding, Pooling, PoolAtt, PoolAttFF, segment_specs,
//      get_librosa_melspec), nisqa/NISQA_model.py (_loadModel: args -> model options).
// Tests: tests/models/nisqa_test.cpp (Nisqa: variants, batching, errors; NisqaReference: a plain-PyTorch
//        re-implementation and a numpy librosa front end, tests/models/nisqa_reference.py).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include "kernels/attention/attention.h"

namespace mmref::models {

// The NISQA args this port reads (names as in the checkpoint's 'args'); defaults are the reference's
// (NISQA_lib.NISQA's constructor for the network, config/train_nisqa_cnn_sa_ap.yaml for the front end).
struct NisqaConfig {
  std::string model = "NISQA";  // "NISQA" (MOS only) | "NISQA_DIM" (MOS + 4 dimensions)
  // Front end.
  std::optional<double> ms_sr;  // resample to this rate; nullopt (null): keep the input's rate
  double ms_fmax = 20000;
  int64_t ms_n_fft = 4096;
  double ms_hop_length = 0.01;  // seconds
  double ms_win_length = 0.02;  // seconds
  int64_t ms_n_mels = 48;
  int64_t ms_seg_length = 15;  // frames, odd
  int64_t ms_seg_hop_length = 4;
  int64_t ms_max_segments = 1300;  // <= 0: no limit
  // Framewise CNN ("adapt").
  std::string cnn_model = "adapt";
  int64_t cnn_c_out_1 = 16, cnn_c_out_2 = 32, cnn_c_out_3 = 64;
  std::array<int64_t, 2> cnn_kernel_size = {3, 3};
  double cnn_dropout = 0.2;
  std::array<int64_t, 2> cnn_pool_1 = {24, 7}, cnn_pool_2 = {12, 5}, cnn_pool_3 = {6, 3};
  std::optional<int64_t> cnn_fc_out_h;
  // Time dependency: "self_att" or "skip"; td_2 the same (model "NISQA" only).
  struct SelfAtt {
    int64_t d_model = 64, nhead = 1, num_layers = 2, h = 64;
    bool pos_enc = false;
    double dropout = 0.1;
  };
  std::string td = "self_att";
  SelfAtt td_sa;
  std::string td_2 = "skip";
  SelfAtt td_2_sa;
  // Pooling: "att" (PoolAttFF with pool_att_h hidden units, PoolAtt when it is null).
  std::string pool = "att";
  std::optional<int64_t> pool_att_h = 128;
  double pool_att_dropout = 0.1;

  bool dim() const { return model == "NISQA_DIM"; }
  int64_t num_outputs() const { return dim() ? 5 : 1; }
  // Throws mmref::ConfigError naming the option (and "supported: ..." for choices this port lacks).
  void validate() const;
  // From a checkpoint's args: the keys above are read (null where the reference allows it), training and
  // dataset keys (tr_*, csv_*, name, ...) ignored, an unknown ms_/cnn_/td_/pool_ key is an error.
  // `where` names the source in messages.
  static NisqaConfig from_args(const nlohmann::json& args, const std::string& where);
  // The args JSON from_args reads back (what write_nisqa_safetensors stores).
  nlohmann::json to_args() const;
};

// AdaptCNN: six 2-D convolutions with BatchNorm and ReLU, adaptive max pools after 1, 2 and 4.
class NisqaAdaptCnnImpl : public torch::nn::Module {
 public:
  explicit NisqaAdaptCnnImpl(const NisqaConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // (S, 1, n_mels, seg_length) -> (S, fan_out)
  int64_t fan_out() const { return fan_out_; }

 private:
  std::array<int64_t, 2> pool_1_, pool_2_, pool_3_;
  int64_t fan_out_;
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::BatchNorm2d> bns_;
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(NisqaAdaptCnn);

// One post-norm Transformer encoder layer: x = norm1(x + MHA(x)); x = norm2(x + linear2(relu(linear1(x)))).
class NisqaSelfAttentionLayerImpl : public torch::nn::Module {
 public:
  NisqaSelfAttentionLayerImpl(int64_t d_model, int64_t nhead, int64_t hidden);
  // (B, N, D) with (B,) valid lengths (padded keys masked) -> (B, N, D)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& lengths,
                        kernels::AttentionBackend backend);

 private:
  int64_t nhead_;
  std::shared_ptr<torch::nn::Module> self_attn;
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr}, linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
};
TORCH_MODULE(NisqaSelfAttentionLayer);

// SelfAttention: linear (fan_in -> d_model), norm1, optional sinusoidal positional encoding, layers.
class NisqaSelfAttentionImpl : public torch::nn::Module {
 public:
  NisqaSelfAttentionImpl(int64_t input_size, const NisqaConfig::SelfAtt& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& lengths,
                        kernels::AttentionBackend backend);  // (B, N, fan_in) -> (B, N, d_model)

 private:
  torch::nn::Linear linear{nullptr};
  torch::nn::LayerNorm norm1{nullptr};
  torch::Tensor pe;  // pos_encoder.pe (3000, 1, d_model), only with pos_enc
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(NisqaSelfAttention);

// PoolAttFF (hidden > 0: linear1 d->h, relu, linear2 h->1 scores; linear3 d->1) or PoolAtt (linear1 d->1
// scores, linear2 d->1): softmax over valid steps, weighted sum, output layer.
class NisqaPoolAttImpl : public torch::nn::Module {
 public:
  NisqaPoolAttImpl(int64_t d_input, std::optional<int64_t> hidden);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& lengths);  // (B, N, D) -> (B, 1)

 private:
  bool ff_;
  torch::nn::Linear linear1{nullptr}, linear2{nullptr}, linear3{nullptr};
};
TORCH_MODULE(NisqaPoolAtt);

class NisqaImpl : public torch::nn::Module {
 public:
  explicit NisqaImpl(const NisqaConfig& c);

  // segments (B, N, 1, n_mels, seg_length) float, zero-padded past n_wins[b]; n_wins (B,) int64 >= 1
  // -> (B, num_outputs): MOS, or MOS, NOI, DIS, COL, LOUD.
  torch::Tensor forward(const torch::Tensor& segments, const torch::Tensor& n_wins);
  // The front end for one clip: 1-D wave at sample_rate -> (n_mels, frames) dB, float64 (CPU or the
  // wave's device). Too-short clips (fewer than ms_seg_length frames) are an error naming the minimum.
  torch::Tensor melspec(const torch::Tensor& wave, int64_t sample_rate) const;
  // (n_mels, frames) -> (N, 1, n_mels, seg_length) float32; more than ms_max_segments is an error.
  torch::Tensor segments(const torch::Tensor& spec) const;

  const NisqaConfig& config() const { return c_; }
  // Longer clips than the checkpoint's ms_max_segments (x seg_hop x hop seconds) need a higher limit.
  void set_max_segments(int64_t n) { c_.ms_max_segments = n; }
  kernels::AttentionBackend attention_backend = kernels::AttentionBackend::kMmref;

 private:
  NisqaConfig c_;
  std::shared_ptr<torch::nn::Module> cnn, time_dependency, time_dependency_2;
  NisqaAdaptCnn cnn_model{nullptr};
  NisqaSelfAttention td_model{nullptr}, td2_model{nullptr};
  std::shared_ptr<torch::nn::Module> pool;
  torch::nn::ModuleList pool_layers{nullptr};
  std::vector<NisqaPoolAtt> pools_;
};
TORCH_MODULE(Nisqa);

// A torch.save checkpoint (.tar/.pth/.pt: nisqa.tar, nisqa_tts.tar, ...) or a safetensors file whose
// args sit in its __metadata__["args"]; with args_json_path, the args come from that JSON file. Strict:
// a missing file, missing/unexpected/mis-shaped keys or unsupported args are one-line mmref errors.
// The model is in eval mode on the CPU.
Nisqa load_nisqa(const std::string& path, const std::string& args_json_path = "");
// Weights + args (config().to_args()) as one safetensors file that load_nisqa reads back.
void save_nisqa_safetensors(Nisqa& m, const std::string& path);

struct MosPrediction {
  double mos = 0;
  std::optional<double> noi, col, dis, loud;  // NISQA_DIM models only
};

// One clip: 1-D float wave (any rate; resampled only when the args set ms_sr).
MosPrediction predict(Nisqa& m, const at::Tensor& wave, int64_t sample_rate);
// Several clips at one rate, one forward pass.
std::vector<MosPrediction> predict_batch(Nisqa& m, const std::vector<at::Tensor>& waves, int64_t sample_rate);
// A padded batch: waves (B, T), lengths (B,) valid samples per row.
std::vector<MosPrediction> predict_batch(Nisqa& m, const at::Tensor& waves, const at::Tensor& lengths,
                                         int64_t sample_rate);

}  // namespace mmref::models
