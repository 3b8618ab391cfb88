// NISQA: the network, loading and prediction (args parsing: nisqa_config.cpp); see nisqa.h.
#include "models/mos/nisqa.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <ATen/Functions.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/state_dict.h"
#include "kernels/dispatch.h"
#include "models/mos/nisqa_checkpoint.h"
#include "models/mos/nisqa_features.h"

namespace mmref::models {

using nlohmann::json;
using torch::Tensor;

namespace {
constexpr int64_t kPosEncMaxLen = 3000;  // PositionalEncoding(max_len=3000)
}  // namespace

// ---- modules ------------------------------------------------------------------------------------------

NisqaAdaptCnnImpl::NisqaAdaptCnnImpl(const NisqaConfig& c)
    : pool_1_(c.cnn_pool_1), pool_2_(c.cnn_pool_2), pool_3_(c.cnn_pool_3) {
  namespace nn = torch::nn;
  const auto& k = c.cnn_kernel_size;
  const int64_t pad_w = k[1] == 1 ? 0 : 1;  // a width-1 kernel is a 1-D conv over mel bands
  const std::array<int64_t, 6> in = {
      1, c.cnn_c_out_1, c.cnn_c_out_2, c.cnn_c_out_3, c.cnn_c_out_3, c.cnn_c_out_3};
  const std::array<int64_t, 6> out = {c.cnn_c_out_1, c.cnn_c_out_2, c.cnn_c_out_3,
                                      c.cnn_c_out_3, c.cnn_c_out_3, c.cnn_c_out_3};
  for (size_t i = 0; i < 6; ++i) {
    // conv6's kernel spans the whole pooled width, so each segment ends as one column.
    const bool last = i == 5;
    auto o = nn::Conv2dOptions(in[i], out[i], std::vector<int64_t>{k[0], last ? pool_3_[1] : k[1]})
                 .padding(std::vector<int64_t>{1, last ? 0 : pad_w});
    convs_.push_back(register_module(fmt::format("conv{}", i + 1), nn::Conv2d(o)));
    bns_.push_back(register_module(fmt::format("bn{}", i + 1), nn::BatchNorm2d(out[i])));
  }
  fan_out_ = c.cnn_c_out_3 * pool_3_[0];
  if (c.cnn_fc_out_h) {
    fc = register_module("fc", nn::Linear(fan_out_, *c.cnn_fc_out_h));
    fan_out_ = *c.cnn_fc_out_h;
  }
}

Tensor NisqaAdaptCnnImpl::forward(const Tensor& input) {
  auto block = [&](size_t i, const Tensor& x) { return at::relu(bns_[i]->forward(convs_[i]->forward(x))); };
  Tensor x = block(0, input);                                             // (S, c1, H, W)
  x = std::get<0>(at::adaptive_max_pool2d(x, {pool_1_[0], pool_1_[1]}));  // (S, c1, 24, 7)
  x = block(1, x);                                                        // (S, c2, 24, 7)
  x = std::get<0>(at::adaptive_max_pool2d(x, {pool_2_[0], pool_2_[1]}));  // (S, c2, 12, 5)
  x = block(3, block(2, x));                                              // (S, c3, 12, 5)
  x = std::get<0>(at::adaptive_max_pool2d(x, {pool_3_[0], pool_3_[1]}));  // (S, c3, 6, 3)
  x = block(5, block(4, x));                                              // (S, c3, 6, 1)
  x = x.reshape({-1, convs_[5]->options.out_channels() * pool_3_[0]});    // (S, c3 * 6)
  if (fc) x = fc->forward(x);                                             // (S, fc_out_h)
  return x;
}

NisqaSelfAttentionLayerImpl::NisqaSelfAttentionLayerImpl(int64_t d, int64_t nhead, int64_t hidden)
    : nhead_(nhead) {
  namespace nn = torch::nn;
  self_attn = register_module("self_attn", std::make_shared<nn::Module>());
  // nn.MultiheadAttention's init: xavier_uniform in_proj, zero biases.
  const double bound = std::sqrt(6.0 / static_cast<double>(d + 3 * d));
  in_proj_weight =
      self_attn->register_parameter("in_proj_weight", at::empty({3 * d, d}).uniform_(-bound, bound));
  in_proj_bias = self_attn->register_parameter("in_proj_bias", at::zeros({3 * d}));
  out_proj = self_attn->register_module("out_proj", nn::Linear(d, d));
  linear1 = register_module("linear1", nn::Linear(d, hidden));
  linear2 = register_module("linear2", nn::Linear(hidden, d));
  norm1 = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({d})));
  norm2 = register_module("norm2", nn::LayerNorm(nn::LayerNormOptions({d})));
}

Tensor NisqaSelfAttentionLayerImpl::forward(const Tensor& x, const Tensor& lengths,
                                            kernels::AttentionBackend backend) {
  const int64_t b = x.size(0), n = x.size(1), d = x.size(2), hd = d / nhead_;
  const Tensor qkv =
      at::linear(x, in_proj_weight, in_proj_bias).view({b, n, 3, nhead_, hd}).permute({2, 0, 3, 1, 4});
  kernels::AttentionOptions o;
  o.k_lengths = lengths;  // key_padding_mask; padded queries are computed and later pooled away
  const Tensor y = kernels::attention(qkv[0], qkv[1], qkv[2], o, backend);         // (B, H, N, hd)
  const Tensor a = out_proj->forward(y.permute({0, 2, 1, 3}).reshape({b, n, d}));  // (B, N, D)
  const Tensor h = norm1->forward(x + a);                                          // (B, N, D)
  return norm2->forward(h + linear2->forward(at::relu(linear1->forward(h))));      // (B, N, D)
}

NisqaSelfAttentionImpl::NisqaSelfAttentionImpl(int64_t input_size, const NisqaConfig::SelfAtt& c) {
  namespace nn = torch::nn;
  linear = register_module("linear", nn::Linear(input_size, c.d_model));
  norm1 = register_module("norm1", nn::LayerNorm(nn::LayerNormOptions({c.d_model})));
  layers = register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i)
    layers->push_back(NisqaSelfAttentionLayer(c.d_model, c.nhead, c.h));
  if (c.pos_enc) {
    // The PyTorch tutorial's sinusoidal table, (max_len, 1, d_model), stored in the state dict.
    const Tensor pos = at::arange(kPosEncMaxLen, at::kFloat).unsqueeze(1);
    const Tensor div = at::exp(at::arange(0, c.d_model, 2, at::kFloat) *
                               (-std::log(10000.0) / static_cast<double>(c.d_model)));
    Tensor table = at::zeros({kPosEncMaxLen, c.d_model});
    table.slice(1, 0, c.d_model, 2).copy_(at::sin(pos * div));
    table.slice(1, 1, c.d_model, 2).copy_(at::cos(pos * div).narrow(1, 0, c.d_model / 2));
    auto pos_encoder = register_module("pos_encoder", std::make_shared<nn::Module>());
    pe = pos_encoder->register_buffer("pe", table.unsqueeze(1));
  }
}

Tensor NisqaSelfAttentionImpl::forward(const Tensor& input, const Tensor& lengths,
                                       kernels::AttentionBackend backend) {
  Tensor x = norm1->forward(linear->forward(input));  // (B, N, D)
  if (pe.defined()) {
    if (x.size(1) > pe.size(0))
      MMREF_FAIL("NISQA positional encoding: {} segments exceed its table of {}", x.size(1), pe.size(0));
    x = x + pe.narrow(0, 0, x.size(1)).permute({1, 0, 2});  // (B, N, D)
  }
  for (size_t i = 0; i < layers->size(); ++i)
    x = layers->ptr<NisqaSelfAttentionLayerImpl>(i)->forward(x, lengths, backend);
  return x;  // (B, N, D)
}

NisqaPoolAttImpl::NisqaPoolAttImpl(int64_t d, std::optional<int64_t> hidden) : ff_(hidden.has_value()) {
  namespace nn = torch::nn;
  if (ff_) {
    linear1 = register_module("linear1", nn::Linear(d, *hidden));
    linear2 = register_module("linear2", nn::Linear(*hidden, 1));
    linear3 = register_module("linear3", nn::Linear(d, 1));
  } else {
    linear1 = register_module("linear1", nn::Linear(d, 1));
    linear2 = register_module("linear2", nn::Linear(d, 1));
  }
}

Tensor NisqaPoolAttImpl::forward(const Tensor& x, const Tensor& lengths) {
  Tensor att = ff_ ? linear2->forward(at::relu(linear1->forward(x))) : linear1->forward(x);  // (B, N, 1)
  const Tensor valid =
      at::arange(x.size(1), lengths.options()).unsqueeze(0) < lengths.unsqueeze(1);  // (B, N)
  att = att.transpose(2, 1).masked_fill(valid.logical_not().unsqueeze(1),
                                        -std::numeric_limits<double>::infinity());
  att = at::softmax(att, /*dim=*/2);                  // (B, 1, N)
  const Tensor pooled = at::bmm(att, x).squeeze(1);   // (B, D)
  return (ff_ ? linear3 : linear2)->forward(pooled);  // (B, 1)
}

NisqaImpl::NisqaImpl(const NisqaConfig& c) : c_(c) {
  c_.validate();
  cnn = register_module("cnn", std::make_shared<torch::nn::Module>());
  cnn_model = cnn->register_module("model", NisqaAdaptCnn(c_));
  int64_t width = cnn_model->fan_out();
  if (c_.td == "self_att") {
    time_dependency = register_module("time_dependency", std::make_shared<torch::nn::Module>());
    td_model = time_dependency->register_module("model", NisqaSelfAttention(width, c_.td_sa));
    width = c_.td_sa.d_model;
  }
  if (!c_.dim() && c_.td_2 == "self_att") {
    time_dependency_2 = register_module("time_dependency_2", std::make_shared<torch::nn::Module>());
    td2_model = time_dependency_2->register_module("model", NisqaSelfAttention(width, c_.td_2_sa));
    width = c_.td_2_sa.d_model;
  }
  auto make_pool = [&]() {
    auto p = std::make_shared<torch::nn::Module>();
    pools_.push_back(p->register_module("model", NisqaPoolAtt(width, c_.pool_att_h)));
    return p;
  };
  if (c_.dim()) {
    pool_layers = register_module("pool_layers", torch::nn::ModuleList());
    for (int i = 0; i < 5; ++i) pool_layers->push_back(make_pool());
  } else {
    pool = register_module("pool", make_pool());
  }
  eval();
}

Tensor NisqaImpl::forward(const Tensor& segments, const Tensor& n_wins) {
  if (segments.dim() != 5 || segments.size(2) != 1 || segments.size(3) != c_.ms_n_mels ||
      segments.size(4) != c_.ms_seg_length) {
    MMREF_FAIL("NISQA: expected segments (B, N, 1, {}, {}), got {}", c_.ms_n_mels, c_.ms_seg_length,
               fmt::format("{}", fmt::join(segments.sizes(), ", ")));
  }
  const int64_t b = segments.size(0), n_pad = segments.size(1);
  const Tensor lengths_cpu = n_wins.to(at::kCPU, at::kLong).reshape({-1});
  if (lengths_cpu.size(0) != b || b == 0)
    MMREF_FAIL("NISQA: n_wins must hold one count per clip ({} clips)", b);
  const int64_t lo = lengths_cpu.min().item<int64_t>(), n = lengths_cpu.max().item<int64_t>();
  if (lo < 1 || n > n_pad) MMREF_FAIL("NISQA: n_wins must lie in [1, {}], got [{}, {}]", n_pad, lo, n);
  const Tensor x =
      segments.narrow(1, 0, n).to(at::kFloat);  // (B, N, 1, H, W); padding as in pad_packed_sequence
  const Tensor lengths = lengths_cpu.to(x.device());
  const Tensor valid = (at::arange(n, lengths.options()).unsqueeze(0) < lengths.unsqueeze(1)).reshape({-1});
  const Tensor idx = valid.nonzero().squeeze(1);  // (S,)
  const Tensor flat = x.reshape({b * n, 1, c_.ms_n_mels, c_.ms_seg_length});
  const Tensor f = cnn_model->forward(flat.index_select(0, idx));                                // (S, F)
  Tensor h = at::zeros({b * n, f.size(1)}, f.options()).index_copy(0, idx, f).view({b, n, -1});  // (B, N, F)
  if (td_model) h = td_model->forward(h, lengths, attention_backend);                            // (B, N, D)
  if (td2_model) h = td2_model->forward(h, lengths, attention_backend);                          // (B, N, D2)
  std::vector<Tensor> outs;
  for (auto& p : pools_) outs.push_back(p->forward(h, lengths));  // (B, 1) each
  return at::cat(outs, /*dim=*/1);                                // (B, 1 or 5)
}

Tensor NisqaImpl::melspec(const Tensor& wave, int64_t sample_rate) const {
  if (sample_rate <= 0) MMREF_FAIL("NISQA: sample_rate must be > 0, got {}", sample_rate);
  if (wave.dim() != 1)
    MMREF_FAIL("NISQA: expected a 1-D wave, got {} dims (mix down or pick a channel first)", wave.dim());
  if (!at::isFloatingType(wave.scalar_type()))
    MMREF_FAIL("NISQA: expected a floating-point wave in [-1, 1], got {}", c10::toString(wave.scalar_type()));
  Tensor x = wave.to(at::kDouble);
  double rate = static_cast<double>(sample_rate);
  if (c_.ms_sr && static_cast<int64_t>(*c_.ms_sr) != sample_rate) {
    x = resample_kaiser_best(x, sample_rate, static_cast<int64_t>(*c_.ms_sr));
    rate = *c_.ms_sr;
  }
  // int(sr * seconds) as get_librosa_melspec (Python truncation of the double product).
  const auto hop = static_cast<int64_t>(rate * c_.ms_hop_length);
  const auto win = static_cast<int64_t>(rate * c_.ms_win_length);
  if (hop < 1 || win < 1 || win > c_.ms_n_fft) {
    MMREF_FAIL(
        "NISQA: at {} Hz the hop is {} and the window {} samples; need hop >= 1 and 1 <= window <= "
        "ms_n_fft {} (resample the audio or use a checkpoint with ms_sr)",
        rate, hop, win, c_.ms_n_fft);
  }
  const int64_t min_samples = std::max<int64_t>((c_.ms_seg_length - 1) * hop, 2);
  if (x.size(0) < min_samples) {
    MMREF_FAIL(
        "NISQA: a clip of {:.4f} s ({} samples at {} Hz) is too short: one {}-frame segment needs at least "
        "{:.4f} s",
        static_cast<double>(wave.size(0)) / static_cast<double>(sample_rate), wave.size(0), sample_rate,
        c_.ms_seg_length, static_cast<double>(min_samples) / rate);
  }
  NisqaMelOptions o;
  o.sample_rate = rate;
  o.n_fft = c_.ms_n_fft;
  o.hop_length = hop;
  o.win_length = win;
  o.n_mels = c_.ms_n_mels;
  o.fmax = c_.ms_fmax;
  return mel_spectrogram_db(x, o);  // (n_mels, frames)
}

Tensor NisqaImpl::segments(const Tensor& spec) const {
  const Tensor s = segment_spec(spec, c_.ms_seg_length, c_.ms_seg_hop_length).to(at::kFloat);  // (N, 1, H, W)
  if (c_.ms_max_segments > 0 && s.size(0) > c_.ms_max_segments) {
    MMREF_FAIL(
        "NISQA: the clip has {} segments, more than ms_max_segments {} (about {:.0f} s of audio); "
        "raise the limit with set_max_segments or split the clip",
        s.size(0), c_.ms_max_segments,
        static_cast<double>(c_.ms_max_segments * c_.ms_seg_hop_length) * c_.ms_hop_length);
  }
  return s;
}

// ---- loading and prediction ---------------------------------------------------------------------------

Nisqa load_nisqa(const std::string& path, const std::string& args_json_path) {
  if (!fs::exists(path)) {
    MMREF_FAIL(
        "NISQA weights '{}' not found (nisqa.tar / nisqa_tts.tar are in gabrielmittag/NISQA weights/; "
        "check the path)",
        path);
  }
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    in.read(magic, 4);
  }
  const bool pth = std::memcmp(magic, "PK\x03\x04", 4) == 0 || static_cast<uint8_t>(magic[0]) == 0x80;
  NisqaCheckpoint ck = pth ? read_nisqa_pth(path) : read_nisqa_safetensors(path, args_json_path);
  if (pth && !args_json_path.empty()) {
    ck.args = json::parse(fs::read_file(args_json_path), nullptr, /*allow_exceptions=*/false);
    if (!ck.args.is_object())
      MMREF_FAIL("NISQA args '{}': expected a JSON object of NISQA options", args_json_path);
  }
  const NisqaConfig c =
      NisqaConfig::from_args(ck.args, "'" + (args_json_path.empty() ? path : args_json_path) + "'");
  Nisqa m(c);
  LoadOptions o;
  o.strict = false;
  const LoadReport r = load_state_dict(*m, ck.state_dict, o);
  if (!r.ok()) {
    MMREF_FAIL("NISQA weights '{}' do not fit the {} model its args describe: {}", path, c.model,
               r.summary());
  }
  m->eval();
  return m;
}

void save_nisqa_safetensors(Nisqa& m, const std::string& path) {
  NisqaCheckpoint ck;
  ck.args = m->config().to_args();
  for (const auto& [k, t] : module_state_dict(*m)) ck.state_dict[k] = t.detach().to(at::kCPU);
  write_nisqa_safetensors(path, ck);
}

namespace {

std::vector<MosPrediction> run_batch(Nisqa& m, const std::vector<Tensor>& segs) {
  if (m->is_training()) MMREF_FAIL("NISQA predict: the model is in training mode; call eval() first");
  int64_t n_max = 0;
  for (const auto& s : segs) n_max = std::max(n_max, s.size(0));
  const NisqaConfig& c = m->config();
  const auto b = static_cast<int64_t>(segs.size());
  Tensor batch = at::zeros({b, n_max, 1, c.ms_n_mels, c.ms_seg_length}, at::kFloat);
  Tensor n_wins = at::empty({b}, at::kLong);
  for (int64_t i = 0; i < b; ++i) {
    const Tensor& s = segs[static_cast<size_t>(i)];
    batch[i].narrow(0, 0, s.size(0)).copy_(s);
    n_wins[i] = s.size(0);
  }
  const auto params = m->parameters();
  const at::Device dev = params.empty() ? at::Device(at::kCPU) : params.front().device();
  torch::NoGradGuard ng;
  const Tensor y = m->forward(batch.to(dev), n_wins.to(dev)).to(at::kCPU, at::kDouble);  // (B, 1 or 5)
  std::vector<MosPrediction> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) {
    auto& p = out[static_cast<size_t>(i)];
    p.mos = y[i][0].item<double>();
    if (c.dim()) {  // NISQA_lib.predict_dim: columns mos, noi, dis, col, loud
      p.noi = y[i][1].item<double>();
      p.dis = y[i][2].item<double>();
      p.col = y[i][3].item<double>();
      p.loud = y[i][4].item<double>();
    }
  }
  return out;
}

}  // namespace

MosPrediction predict(Nisqa& m, const Tensor& wave, int64_t sample_rate) {
  return run_batch(m, {m->segments(m->melspec(wave, sample_rate))}).front();
}

std::vector<MosPrediction> predict_batch(Nisqa& m, const std::vector<Tensor>& waves, int64_t sample_rate) {
  if (waves.empty()) return {};
  std::vector<Tensor> segs;
  segs.reserve(waves.size());
  for (size_t i = 0; i < waves.size(); ++i) {
    try {
      segs.push_back(m->segments(m->melspec(waves[i], sample_rate)));
    } catch (const Error& e) {
      MMREF_FAIL("NISQA batch item {}: {}", i, e.what());
    }
  }
  return run_batch(m, segs);
}

std::vector<MosPrediction> predict_batch(Nisqa& m, const Tensor& waves, const Tensor& lengths,
                                         int64_t sample_rate) {
  if (waves.dim() != 2)
    MMREF_FAIL("NISQA predict_batch: expected padded waves (B, T), got {} dims", waves.dim());
  const Tensor len = lengths.to(at::kCPU, at::kLong).reshape({-1});
  if (len.size(0) != waves.size(0))
    MMREF_FAIL("NISQA predict_batch: {} lengths for {} waves", len.size(0), waves.size(0));
  std::vector<Tensor> rows;
  for (int64_t i = 0; i < waves.size(0); ++i) {
    const int64_t l = len[i].item<int64_t>();
    if (l < 0 || l > waves.size(1))
      MMREF_FAIL("NISQA predict_batch: length {} of row {} is outside [0, {}]", l, i, waves.size(1));
    rows.push_back(waves[i].narrow(0, 0, l));
  }
  return predict_batch(m, rows, sample_rate);
}

}  // namespace mmref::models
