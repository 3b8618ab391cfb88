// `mmref sample asr --checkpoint CKPT AUDIO...`: transcripts with unit timestamps from the CTC
// alignment. The generative families (diffusion, video, TTS) say plainly that they have not landed.
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "train/asr_task.h"

namespace mmref::cli {

Command add_sample(CLI::App& app) {
  struct Args {
    std::string checkpoint, json;
    std::vector<std::string> audio;
    train::AsrDecodeConfig decode;
    bool timestamps = false;
    std::vector<std::string> other;
  };
  auto a = std::make_shared<Args>();
  auto* sub = app.add_subcommand("sample", "Sample from a trained model: `sample asr` transcribes audio "
                                           "(diffusion, video, tts: not in this build yet)");
  sub->add_option("family", a->other, "asr (diffusion, video, tts: not available yet)")->expected(0, 1000);
  auto* asr = sub->add_subcommand("asr", "Transcribe audio files with an asr_conformer checkpoint");
  asr->add_option("audio", a->audio, "audio files (anything FFmpeg reads; resampled to 16 kHz mono)")->required();
  asr->add_option("--checkpoint", a->checkpoint, "ckpt-*.safetensors inside an asr_conformer run folder")->required();
  asr->add_option("--decode", a->decode.method, "greedy | beam")->check(CLI::IsMember({"greedy", "beam"}));
  asr->add_option("--beam", a->decode.beam, "beam width")->check(CLI::Range(1, 10000));
  asr->add_flag("--timestamps", a->timestamps, "print each unit's start-end time");
  asr->add_option("--json", a->json, "also write the transcripts as JSONL here");
  sub->allow_extras();
  return {sub, [a, asr]() -> int {
            if (!asr->parsed()) {
              throw UsageError("mmref sample: only `sample asr` is available in this build (diffusion, video and TTS "
                               "models have not landed); nothing was run");
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
