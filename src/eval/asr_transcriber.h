// Transcribing audio with a Conformer-CTC checkpoint of task asr_conformer (train/asr_task.h): behind
// `mmref sample asr` and the harness's `intelligibility` metric (TTS audio
// transcribed by mmref's own recogniser, then WER/CER against the input texts).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mmref::eval {

struct AsrDecodeConfig {
  std::string method = "greedy";  // greedy | beam
  int64_t beam = 8;
  // Streaming decode (models/asr/chunk_mask.h): chunk size in encoder output frames (0: the model's
  // default -- full context, or its static chunk size) and left chunks (-1: all), as wenet's
  // decoding_chunk_size / num_decoding_left_chunks.
  int64_t chunk_size = 0;
  int64_t left_chunks = -1;
};

// Lower case, numbers as English words, every character that is not a letter, digit, apostrophe or
// space removed, whitespace collapsed: what the model is trained on and scored against.
std::string normalize_transcript(const std::string& text);

// `mmref sample asr`: transcripts of audio files (any format FFmpeg reads, resampled to 16 kHz mono)
// by a checkpoint of this task (its run folder's config.yaml and units.txt give the model), with each
// unit's time span from the CTC alignment (greedy) in seconds.
struct AsrTranscript {
  std::string file, text;
  struct Unit {
    std::string unit;
    double start_s = 0, end_s = 0;
  };
  std::vector<Unit> units;
  double audio_seconds = 0, decode_seconds = 0;
};
std::vector<AsrTranscript> transcribe_files(const std::string& checkpoint, const std::vector<std::string>& audio,
                                            const AsrDecodeConfig& decode, int64_t batch_size = 8);

}  // namespace mmref::eval
