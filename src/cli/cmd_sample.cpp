// `mmref sample asr --checkpoint CKPT AUDIO...`: transcripts with unit timestamps from the CTC
// alignment.
// `mmref sample diffusion --checkpoint CKPT --prompt "..." [--steps N --sampler NAME --cfg S --seed K
//   --count N --out DIR] [--init-image IMG [--strength S] [--mask MASK]]`: PNGs from a diffusion_unet
//   checkpoint (EMA weights when it has them); img2img from IMG with strength S (default 0.8), or
//   inpainting of MASK's white region (strength default 1). Video
// and TTS say plainly that they have not landed.
#include <fstream>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/compat.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/image_io.h"
#include "train/asr_task.h"
#include "train/diffusion_task.h"

namespace mmref::cli {

Command add_sample(CLI::App& app) {
  struct Args {
    std::string checkpoint, json;
    std::vector<std::string> audio;
    train::AsrDecodeConfig decode;
    bool timestamps = false;
    std::vector<std::string> other;
    // diffusion
    std::vector<std::string> prompts;
    std::string prompts_file;
    std::vector<int64_t> labels;
    std::string sampler, out = "samples", init_image, mask, device = "cpu";
    int64_t steps = 0, count = 1;
    double cfg = -1, strength = -1;  // -1: 0.8 for img2img, 1 for inpainting
    int64_t seed = 0;
    bool raw_weights = false;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("sample", "Sample from a trained model: `sample asr` transcribes audio "
                                           "and `sample diffusion` writes images (video, tts: not in this build yet)");
  sub->add_option("family", a->other, "asr | diffusion (video, tts: not available yet)")->expected(0, 1000);
  auto* asr = sub->add_subcommand("asr", "Transcribe audio files with an asr_conformer checkpoint");
  asr->add_option("audio", a->audio, "audio files (anything FFmpeg reads; resampled to 16 kHz mono)")->required();
  asr->add_option("--checkpoint", a->checkpoint, "ckpt-*.safetensors inside an asr_conformer run folder")->required();
  asr->add_option("--decode", a->decode.method, "greedy | beam")->check(CLI::IsMember({"greedy", "beam"}));
  asr->add_option("--beam", a->decode.beam, "beam width")->check(CLI::Range(1, 10000));
  asr->add_option("--chunk-size", a->decode.chunk_size,
                  "streaming: attention chunk in encoder frames (0: the model's default, full context)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  asr->add_option("--left-chunks", a->decode.left_chunks, "streaming: chunks of left context (-1: all)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30));
  asr->add_flag("--timestamps", a->timestamps, "print each unit's start-end time");
  asr->add_option("--json", a->json, "also write the transcripts as JSONL here");
  auto* dif = sub->add_subcommand("diffusion", "Generate images with a diffusion_unet checkpoint");
  dif->add_option("--checkpoint", a->checkpoint, "ckpt-*.safetensors inside a diffusion_unet run folder")->required();
  dif->add_option("--prompt", a->prompts, "caption(s) for a text-conditioned model (repeat for several)");
  dif->add_option("--prompts", a->prompts_file, "a file of captions: JSONL {\"text\": ...} or one per line");
  dif->add_option("--label", a->labels, "class label(s) for a class-conditioned model (repeat for several)");
  dif->add_option("--steps", a->steps, "inference steps (default: the run's sample.sampler)")->check(CLI::Range(1, 100000));
  dif->add_option("--sampler", a->sampler, "ddpm | ddim | euler | euler_a | heun | dpmpp_2m | flow_euler | flow_heun");
  dif->add_option("--cfg", a->cfg, "classifier-free guidance scale (default: the run's sample.cfg)")->check(CLI::Range(0.0, 100.0));
  dif->add_option("--seed", a->seed, "random seed")->check(CLI::Range(int64_t{0}, int64_t{1} << 62));
  dif->add_option("--count", a->count, "images per prompt or label (or in all, unconditional)")->check(CLI::Range(1, 100000));
  dif->add_option("--out", a->out, "output folder (PNG files + prompts.jsonl)");
  dif->add_option("--init-image", a->init_image, "img2img / inpainting: start from this image (resized to the model's)")
      ->check(CLI::ExistingFile);
  dif->add_option("--strength", a->strength,
                  "img2img: fraction of the schedule run from the noised init image, in (0, 1] (default 0.8; "
                  "with --mask 1)");
  dif->add_option("--mask", a->mask, "inpainting: white = regenerate, black = keep --init-image")->check(CLI::ExistingFile);
  dif->add_option("--device", a->device, "cpu | cuda | auto (the UNet runs there; noise is drawn on the CPU, so "
                  "a seed gives the same start on any device)")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  dif->add_flag("--raw-weights", a->raw_weights, "sample with the raw weights even when the checkpoint has EMA ones");
  sub->allow_extras();
  return {sub, [a, asr, dif]() -> int {
            if (dif->parsed()) {
              const int gpus = compat::torch_cuda_device_count();
              if (a->device == "cuda" && gpus == 0) {
                throw UsageError("mmref sample diffusion: --device cuda, but this libtorch sees no CUDA device; use --device cpu");
              }
              auto L = train::load_diffusion_checkpoint(a->checkpoint, !a->raw_weights);
              if (a->device == "cuda" || (a->device == "auto" && gpus > 0)) L.net->to(c10::Device(c10::kCUDA, 0));
              if (!a->sampler.empty()) L.sample.sampler.name = a->sampler;
              if (a->steps > 0) L.sample.sampler.num_inference_steps = a->steps;
              if (a->cfg >= 0) L.sample.cfg = a->cfg;
              L.sample.seed = static_cast<uint64_t>(a->seed);
              L.sample.sampler.validate();
              train::DiffusionCondition c;
              const std::string& cond = L.spec.data.conditioning;
              if (!a->prompts_file.empty()) {
                std::ifstream in(a->prompts_file);
                if (!in) throw UsageError(fmt::format("mmref sample diffusion: --prompts '{}' cannot be opened", a->prompts_file));
                int line_no = 0;
                for (std::string l; std::getline(in, l);) {
                  ++line_no;
                  if (!l.empty() && l.back() == '\r') l.pop_back();
                  if (l.empty()) continue;
                  if (l[0] != '{') {
                    a->prompts.push_back(l);
                    continue;
                  }
                  const auto j = nlohmann::json::parse(l, nullptr, /*allow_exceptions=*/false);
                  if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) {
                    throw UsageError(fmt::format("mmref sample diffusion: {}:{}: expected {{\"text\": ...}}", a->prompts_file, line_no));
                  }
                  a->prompts.push_back(j["text"].get<std::string>());
                }
              }
              if (cond == "text" && a->prompts.empty()) throw UsageError("mmref sample diffusion: this model is text-conditioned: give --prompt");
              if (cond == "class" && a->labels.empty()) throw UsageError("mmref sample diffusion: this model is class-conditioned: give --label");
              for (const auto& p : a->prompts) c.texts.insert(c.texts.end(), static_cast<size_t>(a->count), p);
              for (const auto l : a->labels) {
                if (l < 0 || l >= L.spec.num_classes) {
                  throw UsageError(fmt::format("mmref sample diffusion: --label {} is outside 0..{}", l, L.spec.num_classes - 1));
                }
                c.labels.insert(c.labels.end(), static_cast<size_t>(a->count), l);
              }
              const int64_t n = cond == "text" ? static_cast<int64_t>(c.texts.size())
                                : cond == "class" ? static_cast<int64_t>(c.labels.size()) : a->count;
              std::optional<train::DiffusionInit> init;
              if (!a->mask.empty() && a->init_image.empty()) {
                throw UsageError("mmref sample diffusion: --mask needs --init-image (the image whose black region is kept)");
              }
              if (a->strength >= 0 && a->init_image.empty()) {
                throw UsageError("mmref sample diffusion: --strength needs --init-image (img2img starts from it)");
              }
              if (!a->init_image.empty()) {
                const double strength = a->strength >= 0 ? a->strength : (a->mask.empty() ? 0.8 : 1.0);
                init = train::load_diffusion_init(L.spec, a->init_image, a->mask, strength);
              }
              const at::Tensor imgs = train::generate_images(L.net, L.spec, L.vocab.get(), c, n, L.sample,
                                                             init ? &*init : nullptr);
              fs::make_dirs(a->out);
              std::string jl;
              for (int64_t i = 0; i < n; ++i) {
                const std::string f = fmt::format("{}/{:05d}.png", a->out, i);
                data::save_image(f, imgs[i]);
                nlohmann::json j{{"path", f}, {"seed", a->seed}, {"sampler", L.sample.sampler.name},
                                 {"steps", L.sample.sampler.num_inference_steps}, {"cfg", L.sample.cfg}};
                if (!c.texts.empty()) j["text"] = c.texts[static_cast<size_t>(i)];
                if (!c.labels.empty()) j["label"] = c.labels[static_cast<size_t>(i)];
                if (init) {
                  j["init_image"] = a->init_image, j["strength"] = init->strength;
                  if (!a->mask.empty()) j["mask"] = a->mask;
                }
                jl += j.dump() + "\n";
                std::cout << f << "\n";
              }
              fs::atomic_write(a->out + "/prompts.jsonl", jl);
              std::cerr << fmt::format("mmref sample diffusion: {} images ({} {} steps, cfg {}, {} weights) in {}\n", n,
                                       L.sample.sampler.name, L.sample.sampler.num_inference_steps, L.sample.cfg,
                                       L.used_ema ? "EMA" : "raw", a->out);
              return 0;
            }
            if (!asr->parsed()) {
              throw UsageError("mmref sample: `sample asr` and `sample diffusion` are available in this build (video "
                               "and TTS models have not landed); nothing was run");
            }
            const auto ts = train::transcribe_files(a->checkpoint, a->audio, a->decode);
            std::string jl;
            for (const auto& t : ts) {
              std::cout << t.file << "\t" << t.text << "\n";
              if (a->timestamps) {
                for (const auto& u : t.units) std::cout << fmt::format("  {:7.2f} {:7.2f}  {}\n", u.start_s, u.end_s, u.unit);
              }
              nlohmann::json j{{"path", t.file}, {"text", t.text}, {"audio_seconds", t.audio_seconds},
                               {"rtf", t.audio_seconds > 0 ? t.decode_seconds / t.audio_seconds : 0.0}};
              for (const auto& u : t.units) j["units"].push_back({{"unit", u.unit}, {"start", u.start_s}, {"end", u.end_s}});
              jl += j.dump() + "\n";
            }
            if (!a->json.empty()) fs::atomic_write(a->json, jl);
            return 0;
          }};
}

}  // namespace mmref::cli
