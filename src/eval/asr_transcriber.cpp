// See asr_transcriber.h.
#include "eval/asr_transcriber.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include <ATen/Functions.h>
#include <torch/utils.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/collate.h"
#include "data/dataset/manifest.h"
#include "data/dataset/speech_dataset.h"
#include "data/text/vocab.h"
#include "eval/wer.h"
#include "models/asr/asr_ctc.h"
#include "models/asr/ctc_decoding.h"

namespace mmref::eval {

std::string normalize_transcript(const std::string& text) {
  std::string s = expand_numbers(text);
  std::string out;
  bool space = false;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '\'' || ch >= 0x80) {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(ch < 0x80 ? std::tolower(ch) : ch);
    } else {
      space = true;  // spaces and punctuation both separate words
    }
  }
  return out;
}

std::vector<AsrTranscript> transcribe_files(const std::string& checkpoint, const std::vector<std::string>& audio,
                                            const AsrDecodeConfig& dc, int64_t batch_size) {
  if (!fs::exists(checkpoint)) MMREF_FAIL("asr: checkpoint '{}' does not exist", checkpoint);
  const std::string run_dir = std::filesystem::path(checkpoint).parent_path().parent_path().string();
  const std::string cfg_path = run_dir + "/config.yaml", units = run_dir + "/units.txt";
  if (!fs::exists(cfg_path) || !fs::exists(units)) {
    MMREF_FAIL("asr: '{}' is not inside an asr_conformer run folder (need {}/config.yaml and units.txt)", checkpoint,
               run_dir);
  }
  // The model section of the run's effective config.
  const config::Node cfg = config::load_file(cfg_path);
  models::WenetConformerConfig mc;
  if (const config::Node* m = cfg.find("model")) {
    config::Node eff = config::Node::map();
    config::Reader r(m, "model", &eff, config::Mark{cfg_path, 1, 1});
    models::parse(r, mc);
  }
  mc.input_size = 80;
  const auto vocab = std::make_shared<data::CharVocab>(data::CharVocab::load_units(units));
  models::AsrCtcModel net(mc, vocab->size());
  const Checkpoint ck = load_checkpoint(checkpoint);
  std::map<std::string, at::Tensor> sd;
  for (const auto& [k, v] : ck.tensors) {
    if (k.rfind("model.", 0) == 0) sd[k.substr(6)] = v;
  }
  net->load(sd);
  net->eval();
  net->encoder->decoding_chunk_size = dc.chunk_size;
  net->encoder->num_decoding_left_chunks = dc.left_chunks;
  const double frame_s = 0.01 * static_cast<double>(net->encoder->subsampling_rate());
  std::vector<data::ManifestEntry> entries;
  for (const auto& a : audio) {
    data::ManifestEntry e;
    e.path = a;
    entries.push_back(e);
  }
  data::SpeechDatasetOptions so;
  const data::SpeechFeatureDataset ds(entries, nullptr, so);
  std::vector<AsrTranscript> out;
  torch::NoGradGuard ng;
  for (int64_t b = 0; b < ds.size(); b += batch_size) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<data::Example> ex;
    for (int64_t i = b; i < std::min(ds.size(), b + batch_size); ++i) ex.push_back(ds.get(i));
    const data::Batch bt = data::collate(std::move(ex));
    const auto o = net->forward(bt.tensors.at("feats"), bt.lengths.at("feats"));
    for (int64_t i = 0; i < bt.size(); ++i) {
      const int64_t len = o.lengths[i].item<int64_t>();
      models::CtcHypothesis h;
      if (dc.method == "beam") {
        models::CtcBeamOptions bo;
        bo.beam = dc.beam, bo.top_k_per_frame = std::min<int64_t>(dc.beam, vocab->size());
        h = models::ctc_prefix_beam_search(o.log_probs[i], len, bo).at(0);
      } else {
        h = models::ctc_greedy(o.log_probs[i], len);
      }
      AsrTranscript t;
      t.file = audio[static_cast<size_t>(b + i)];
      t.text = vocab->decode(h.ids());
      for (const auto& tok : h.tokens) {
        t.units.push_back({vocab->unit(tok.id), tok.start_frame * frame_s, (tok.end_frame + 1) * frame_s});
      }
      t.audio_seconds = bt.lengths.at("feats")[i].item<int64_t>() * 0.01;
      out.push_back(std::move(t));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int64_t i = 0; i < bt.size(); ++i) out[static_cast<size_t>(b + i)].decode_seconds = secs / bt.size();
  }
  return out;
}

}  // namespace mmref::eval
