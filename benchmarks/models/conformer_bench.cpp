// Conformer encoders on the CPU, one thread, batch 1, 10 s of audio (1000 frames of 80-dim fbank):
//   WenetConformer       wenet's ConformerEncoder, preset "tiny" (144 dims, 4 heads, 256 units, 6 blocks,
//                        kernel 15, conv2d x4 subsampling -> 249 frames), forward in eval mode and a
//                        forward + backward training step (dropout off), with the mmref kernels and with
//                        backend "torch" (libtorch's matmul-softmax-matmul and conv1d(groups=C)), so the
//                        fused kernels' share is visible;
//   TorchaudioConformer  mmref's port of torchaudio's Conformer at the same size on the 249 subsampled
//                        frames (144 dims), both backends, and torchaudio itself run side by side as a
//                        child process (benchmarks/models/conformer_torchaudio.py, Debian's
//                        python3-torchaudio 0.13 on the same libtorch 1.13).
// The "rtf" counter is the real-time factor: compute seconds per second of audio. Weights are random
// (speed does not depend on them).
//   build/cpu/bin/mmref_bench_models --benchmark_filter=Conformer
#include <benchmark/benchmark.h>

#include "peer_process.h"

#include <cstdio>
#include <string>

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "models/asr/conformer_torchaudio.h"
#include "models/asr/conformer_wenet.h"

namespace {

using mmref::kernels::AttentionBackend;
using mmref::kernels::ConvBackend;

constexpr int64_t kFrames = 1000;  // 10 s at a 10 ms frame shift
constexpr double kAudioSeconds = 10.0;
constexpr int64_t kSubsampled = 249;  // ((1000 - 1) / 2 - 1) / 2

void set_rtf(benchmark::State& state) {
  state.counters["rtf"] = benchmark::Counter(static_cast<double>(state.iterations()) * kAudioSeconds,
                                             benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

mmref::models::TorchaudioConformerConfig torchaudio_tiny() {
  mmref::models::TorchaudioConformerConfig c;
  c.input_dim = 144, c.num_heads = 4, c.ffn_dim = 256, c.num_layers = 6, c.depthwise_conv_kernel_size = 15;
  return c;
}

void BM_WenetConformer(benchmark::State& state, AttentionBackend ab, ConvBackend cb) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  mmref::models::WenetConformerEncoder enc(mmref::models::wenet_conformer_preset("tiny", 80));
  enc->attention_backend = ab;
  enc->conv_backend = cb;
  const at::Tensor x = at::randn({1, kFrames, 80});
  const at::Tensor lengths = at::full({1}, kFrames, at::kLong);
  torch::NoGradGuard ng;
  enc->forward(x, lengths);  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(enc->forward(x, lengths).y);
  set_rtf(state);
}

// The 6 encoder layers alone on the 249 subsampled frames: the part the attention and depthwise-conv
// kernels touch (the conv2d subsampling, about 0.9 GFLOP at 1000 frames, is libtorch's either way).
void BM_WenetConformerBlocks(benchmark::State& state, AttentionBackend ab, ConvBackend cb) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  mmref::models::WenetConformerEncoder enc(mmref::models::wenet_conformer_preset("tiny", 80));
  const at::Tensor x = at::randn({1, kSubsampled, 144});
  mmref::models::WenetLayerContext ctx;
  ctx.pos_emb = enc->embed->pos_enc->position_encoding(0, kSubsampled);
  ctx.attention_backend = ab;
  ctx.conv_backend = cb;
  torch::NoGradGuard ng;
  auto run = [&] {
    at::Tensor y = x;
    for (size_t i = 0; i < enc->encoders->size(); ++i) {
      y = enc->encoders->ptr<mmref::models::WenetConformerEncoderLayerImpl>(i)->forward(y, ctx);
    }
    return y;
  };
  run();  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(run());
  set_rtf(state);
}

void BM_WenetConformerTrainStep(benchmark::State& state, AttentionBackend ab, ConvBackend cb) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  mmref::models::WenetConformerConfig c = mmref::models::wenet_conformer_preset("tiny", 80);
  c.dropout_rate = c.positional_dropout_rate = c.attention_dropout_rate = 0;
  mmref::models::WenetConformerEncoder enc(c);
  enc->train();
  enc->attention_backend = ab;
  enc->conv_backend = cb;
  const at::Tensor x = at::randn({1, kFrames, 80});
  const at::Tensor lengths = at::full({1}, kFrames, at::kLong);
  auto step = [&] {
    enc->zero_grad();
    enc->forward(x, lengths).y.square().mean().backward();
  };
  step();  // warm-up
  for (auto _ : state) step();
  set_rtf(state);
}

void BM_TorchaudioConformer(benchmark::State& state, AttentionBackend ab, ConvBackend cb) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  mmref::models::TorchaudioConformer net(torchaudio_tiny());
  net->backends = {ab, cb};
  const at::Tensor x = at::randn({1, kSubsampled, 144});
  const at::Tensor lengths = at::full({1}, kSubsampled, at::kLong);
  torch::NoGradGuard ng;
  net->forward(x, lengths);  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(net->forward(x, lengths).first);
  set_rtf(state);
}

void BM_TorchaudioConformer_python(benchmark::State& state) {
  const auto c = torchaudio_tiny();
  const std::string cmd =
      "/usr/bin/python3 '" MMREF_SOURCE_DIR "/benchmarks/models/conformer_torchaudio.py'" +
      fmt::format(" --input-dim {} --heads {} --ffn-dim {} --layers {} --kernel {} --frames {}", c.input_dim,
                  c.num_heads, c.ffn_dim, c.num_layers, c.depthwise_conv_kernel_size, kSubsampled) +
      " --threads 1 --repeats 20 2>/dev/null";
  for (auto _ : state) {
    const nlohmann::json out = mmref::bench::run_peer(cmd);
    if (out.is_null()) {
      state.SkipWithError("python3-torchaudio peer did not run (benchmarks/models/conformer_torchaudio.py)");
      return;
    }
    state.SetIterationTime(out.at("seconds_per_forward").get<double>());
  }
  set_rtf(state);
}

}  // namespace

BENCHMARK_CAPTURE(BM_WenetConformer, mmref, AttentionBackend::kMmref, ConvBackend::kMmref)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_WenetConformer, torch, AttentionBackend::kTorch, ConvBackend::kTorch)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_WenetConformerBlocks, mmref, AttentionBackend::kMmref, ConvBackend::kMmref)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_WenetConformerBlocks, torch, AttentionBackend::kTorch, ConvBackend::kTorch)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_WenetConformerTrainStep, mmref, AttentionBackend::kMmref, ConvBackend::kMmref)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_WenetConformerTrainStep, torch, AttentionBackend::kTorch, ConvBackend::kTorch)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_TorchaudioConformer, mmref, AttentionBackend::kMmref, ConvBackend::kMmref)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_TorchaudioConformer, torch, AttentionBackend::kTorch, ConvBackend::kTorch)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK(BM_TorchaudioConformer_python)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
