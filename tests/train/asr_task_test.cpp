// Task asr_conformer end to end on a tiny generated corpus: a few hundred steps lower the dev CTC loss,
// a resumed run continues from its checkpoint, a checkpoint transcribes a generated utterance
// (`mmref sample asr` path) with a non-empty text and timestamps, WER is computed, and bad audio names
// the file.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/experiment.h"
#include "core/fs.h"
#include "core/run.h"
#include "data/generators/corpus.h"
#include "eval/harness.h"
#include "train/asr_task.h"
#include "task_runner.h"

namespace {

class AsrTaskSlow : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(mmref::fs::make_temp_dir("mmref_asr_"));
    mmref::data::CorpusOptions co;
    co.out = *dir_ + "/speech", co.count = 24, co.seed = 3, co.quiet = true;
    mmref::data::make_corpus("speech", co);
  }
  static void TearDownTestSuite() {
    std::system(("rm -rf '" + *dir_ + "'").c_str());
    delete dir_;
  }

  nlohmann::json train(const std::vector<std::string>& overrides, std::string* run_dir, const std::string& resume = "") {
    const std::string p = *dir_ + "/asr.yaml";
    std::ofstream(p) << "name: asr\ntask: asr_conformer\nruntime: {threads: 2, seed: 7}\n"
                     << "run: {root: '" << *dir_ << "/runs'}\n"
                     << "data: {dir: '" << *dir_ << "/speech', train: all.jsonl, valid: all.jsonl, test: test.jsonl, "
                     << "make_if_missing: false, num_workers: 1, max_valid: 8}\n"
                     << "model: {output_size: 48, attention_heads: 2, linear_units: 96, num_blocks: 2, dropout_rate: 0.0, "
                     << "positional_dropout_rate: 0.0, cnn_module_kernel: 7}\n"
                     << "specaug: {freq_masks: 0, time_masks: 0}\n"
                     << "decode: {method: beam, beam: 4}\n"
                     << "train: {steps: 200, batch_size: 6, lr: 3.0e-3, schedule: constant, warmup_steps: 10, "
                     << "grad_clip: 5.0, log_every: 50, eval_every: 200, checkpoint_every: 100}\n";
    mmref::train::AsrConformerTask task;
    return mmref::test::run_task(task, p, overrides, run_dir, resume);
  }

  static std::string* dir_;
};
std::string* AsrTaskSlow::dir_ = nullptr;

TEST(AsrTranscript, NormalizationLowercasesSpellsNumbersDropsPunctuation) {
  EXPECT_EQ(mmref::train::normalize_transcript("The 3 cats, at 10:30pm; don't RUN!"),
            "the three cats at ten thirty pm don't run");
}

TEST_F(AsrTaskSlow, TrainingLowersLossResumesAndTranscribes) {
  std::string run_short, run;
  const auto s1 = train({"train.steps=2", "train.eval_every=2"}, &run_short);
  const auto s = train({}, &run);
  EXPECT_LT(s.at("val_ctc_loss").get<double>(), 0.7 * s1.at("val_ctc_loss").get<double>()) << s.dump();
  EXPECT_TRUE(s.contains("test_wer_beam")) << s.dump();
  EXPECT_GE(s.at("test_wer_greedy").get<double>(), 0.0);
  EXPECT_TRUE(mmref::fs::exists(run + "/test_hyp.jsonl"));
  EXPECT_TRUE(mmref::fs::exists(run + "/units.txt"));
  // Resume from the step-100 checkpoint to 200 again.
  std::string same = run;
  const auto r = train({}, &same, run + "/checkpoints/ckpt-00000100.safetensors");
  EXPECT_EQ(r.at("steps_run"), 100);
  // Transcribe a training utterance (the model has seen it 50 times): some text, timestamps in order.
  std::ifstream all(*dir_ + "/speech/all.jsonl");
  std::string line;
  std::getline(all, line);
  std::string wav = nlohmann::json::parse(line).at("path");
  if (wav[0] != '/') wav = *dir_ + "/speech/" + wav;
  mmref::train::AsrDecodeConfig dc;
  const auto t = mmref::train::transcribe_files(run + "/checkpoints/ckpt-00000200.safetensors", {wav}, dc);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_FALSE(t[0].text.empty());
  ASSERT_FALSE(t[0].units.empty());
  for (size_t i = 1; i < t[0].units.size(); ++i) EXPECT_GE(t[0].units[i].start_s, t[0].units[i - 1].start_s);
  EXPECT_GT(t[0].audio_seconds, 0.5);
  // Bad audio: one error naming the file.
  std::ofstream(*dir_ + "/bad.wav") << "not audio";
  try {
    mmref::train::transcribe_files(run + "/checkpoints/ckpt-00000200.safetensors", {*dir_ + "/bad.wav"}, dc);
    ADD_FAILURE() << "garbage audio accepted";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.wav"), std::string::npos) << e.what();
  }
  // The harness's TTS-intelligibility metric with this checkpoint as the recogniser: on the test split it
  // must reproduce the task's own test WER (same model, utterances and normalisation; batching may move
  // a near-tie, hence the small tolerance), for greedy and beam decoding.
  const std::string ev = *dir_ + "/intel.yaml";
  std::ofstream(ev) << "eval: {out: '" << *dir_ << "/eval', bootstrap: 50}\nmetrics:\n"
                    << "  greedy: {metric: intelligibility, audio: '" << *dir_ << "/speech/test.jsonl', checkpoint: '"
                    << run << "/checkpoints/ckpt-00000200.safetensors', decode: greedy}\n"
                    << "  beam: {metric: intelligibility, audio: '" << *dir_ << "/speech/test.jsonl', checkpoint: '"
                    << run << "/checkpoints/ckpt-00000200.safetensors', decode: beam, beam: 4}\n";
  const auto es = mmref::eval::run_eval(ev, {});
  ASSERT_EQ(es.failed, 0) << es.results.dump();
  std::map<std::string, double> got;
  for (const auto& m : es.results) got[m.at("name").get<std::string>() + "/" + m.at("metric").get<std::string>()] = m.at("value");
  ASSERT_EQ(got.size(), 4u) << es.results.dump();
  EXPECT_NEAR(got["greedy/intelligibility_wer"], r.at("test_wer_greedy").get<double>(), 0.02) << es.results.dump();
  EXPECT_NEAR(got["beam/intelligibility_wer"], r.at("test_wer_beam").get<double>(), 0.02) << es.results.dump();
  EXPECT_LE(got["greedy/intelligibility_cer"], got["greedy/intelligibility_wer"] + 1e-12);
  EXPECT_TRUE(mmref::fs::exists(*dir_ + "/eval/per_sample/greedy.csv"));
}

// Subword CTC units: the run trains a SentencePiece BPE model on the training transcripts, keeps it as
// spm.model beside units.txt, lowers the loss, resumes with the same pieces, and its checkpoint
// transcribes through the plain units.txt; a fine-tune asking for other units than the base's is refused.
TEST_F(AsrTaskSlow, SubwordUnitsTrainResumeAndTranscribe) {
  std::string run_short, run;
  const std::vector<std::string> bpe = {"data.units=bpe", "data.vocab_size=60"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), bpe.begin(), bpe.end());
    return extra;
  };
  const auto s1 = train(with({"train.steps=2", "train.eval_every=2"}), &run_short);
  const auto s = train(with({"train.steps=120", "train.eval_every=120", "train.checkpoint_every=60"}), &run);
  EXPECT_EQ(s.at("unit_kind"), "bpe");
  EXPECT_EQ(s.at("units"), 2 + 60 - 3) << s.dump();
  EXPECT_LT(s.at("val_ctc_loss").get<double>(), 0.8 * s1.at("val_ctc_loss").get<double>()) << s.dump();
  ASSERT_TRUE(mmref::fs::exists(run + "/spm.model"));
  const std::string units = mmref::fs::read_file(run + "/units.txt");
  EXPECT_NE(units.find("\xE2\x96\x81"), std::string::npos);  // word-start pieces
  std::string same = run;
  const auto r = train(with({"train.steps=120", "train.eval_every=120", "train.checkpoint_every=60"}), &same,
                       run + "/checkpoints/ckpt-00000060.safetensors");
  EXPECT_EQ(r.at("steps_run"), 60);
  EXPECT_EQ(mmref::fs::read_file(run + "/units.txt"), units);
  std::ifstream all(*dir_ + "/speech/all.jsonl");
  std::string line;
  std::getline(all, line);
  std::string wav = nlohmann::json::parse(line).at("path");
  if (wav[0] != '/') wav = *dir_ + "/speech/" + wav;
  const auto t = mmref::train::transcribe_files(run + "/checkpoints/ckpt-00000120.safetensors", {wav},
                                                mmref::train::AsrDecodeConfig{});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].text.find("\xE2\x96\x81"), std::string::npos) << t[0].text;  // pieces decoded to words
  std::string ft;
  EXPECT_THROW(train({"train.steps=2", "finetune.base=" + run + "/checkpoints/ckpt-00000120.safetensors"}, &ft),
               mmref::ConfigError);
}

}  // namespace
