// `mmref eval CONFIG`: metrics over folders, manifests or a run's samples, from one YAML file.
//
//   eval:
//     out: results/eval          # results.json, results.md, per_sample/<name>.csv (+ alignments)
//     batch_size: 32             # images per Inception / CLIP forward
//     threads: 0                 # intra-op threads (0 = all cores)
//     bootstrap: 1000            # resamples for the 95% CIs of per-sample metrics
//     seed: 0
//     cache_dir: ""              # Inception feature cache (HDF5); "" = <out>/cache
//   metrics:                     # name: {metric: <kind> (default: the name), ...}
//     fid:  {real: DIR|stats.npz, fake: DIR|RUN|stats.npz, weights: pt_inception.pth, resize: legacy,
//            save_real_stats: "", save_fake_stats: "", bootstrap: 0}
//     kid:  {real: DIR, fake: DIR, weights: ..., subsets: 100, subset_size: 1000}
//     is:   {images: DIR, weights: ..., splits: 10}     (needs the fc weights of the full file)
//     clip_score: {images: DIR|VIDEOS, captions: FILE, weights: clip.pt|safetensors, vocab: bpe.txt.gz,
//                  text_heads: 0, temporal: true}       (videos: frame-averaged + temporal consistency)
//     wer:  {references: FILE, hypotheses: FILE, case: keep|lower, remove_punctuation: false,
//            normalize_whitespace: true, expand_numbers: false}
//     cer:  {... the same keys}
//     speech: {reference: DIR, synthesized: DIR, measures: [mcd, f0, lsd, stoi, si_sdr], sample_rate: 0}
//     intelligibility: {audio: MANIFEST.jsonl|DIR, texts: FILE (when audio is a folder), checkpoint:
//            CKPT of an asr_conformer run, decode: beam|greedy, beam: 8, batch_size: 8}
//            TTS intelligibility: the audio transcribed by mmref's Conformer-CTC, then WER and CER
//            (intelligibility_wer, intelligibility_cer) against the texts, both normalised as the
//            recogniser's training transcripts (eval/asr_transcriber.h)
//     mos:  {audio: DIR|MANIFEST|file list, weights: nisqa.tar | nisqa_tts.tar | .safetensors, args: ""
//            (JSON args for a safetensors without them), max_segments: 0 (= the checkpoint's)}
//            learned MOS (NISQA, models/mos/nisqa.h): mos_nisqa, and for NISQA_DIM weights nisqa_noi,
//            nisqa_dis, nisqa_col, nisqa_loud; means over files with bootstrap CIs, per-file CSV
//     scene: {images: DIR, captions: FILE}   prompt adherence for the shapes corpus (mmref data make
//            images): scene_all, scene_colour, scene_count, scene_shape, scene_size, scene_position
//            (eval/scene_check.h; no weights), pass rates with bootstrap CIs, per-image CSV
//     digits: {real: DIR|MANIFEST.jsonl, fake: DIR, classifier: CKPT of a digit_classifier run | mnist_cnn.pt,
//            captions: FILE (the fake images' labels; default fake/captions.jsonl), real_captions: FILE
//            (a folder's labels; a manifest has its own), bootstrap: 0}
//            handwritten digits (eval/digit_classifier.h): digits_fid (Frechet distance in the classifier's
//            128-d features, not comparable with Inception FID), digits_accuracy (samples classified as
//            their conditioning digit), digits_real_accuracy (the classifier on the real set), per-image CSV
//
// Text files: JSONL manifests ({"id"|"path", "text"}; paired by id/path when both have them) or plain
// text, one utterance per line (paired by line). Captions: JSONL ({"path"|"image", "text"}, matched by
// file name) or plain text in the sorted order of the images. Speech folders pair files by name.
//
// Results: every metric's value, 95% percentile-bootstrap interval (per-sample metrics; FID/KID when
// bootstrap > 0), n, the settings that made it and the weights file's SHA-256. results.json is
// rewritten atomically after each metric, so a later failure never loses an earlier result.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mmref::eval {

struct EvalRunSummary {
  std::string out_dir;
  nlohmann::json results;  // the "results" array of results.json
  int failed = 0;          // metrics that failed (their error is in results.json)
};

// Reads `config_path` (with key.path=value overrides), checks every metric section before running any,
// runs them in order and writes the outputs. Config errors throw ConfigError (file:line: key).
EvalRunSummary run_eval(const std::string& config_path, const std::vector<std::string>& overrides);

}  // namespace mmref::eval
