// SpeechFeatureDataset: a wav written in the test -> 80-bin Kaldi fbank with the frame count Kaldi's
// formula gives (and the same values as kaldi_fbank on the same samples), character tokens, manifest
// durations as frame lengths, errors naming the manifest line, and batches through the DataLoader.
#include <gtest/gtest.h>

#include <cmath>

#include <ATen/Functions.h>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/loader.h"
#include "data/dataset/speech_dataset.h"
#include "data/media/audio_io.h"

namespace mmref::data {
namespace {

class SpeechDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("mmref_speechds_"); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

TEST_F(SpeechDatasetTest, FbankTokensLengthsAndErrors) {
  // 1.0 s and 0.5 s of a 440 Hz tone at 16 kHz.
  const auto t = at::arange(16000, at::kFloat) / 16000.0;
  save_audio(dir_ + "/a.wav", (t * (2 * M_PI * 440)).sin() * 0.3, 16000);
  save_audio(dir_ + "/b.wav", (t.slice(0, 0, 8000) * (2 * M_PI * 220)).sin() * 0.3, 16000);
  std::vector<ManifestEntry> entries(3);
  entries[0].path = dir_ + "/a.wav", entries[0].text = "hello world", entries[0].duration = 1.0, entries[0].line = 1;
  entries[1].path = dir_ + "/b.wav", entries[1].text = "hi", entries[1].duration = 0.5, entries[1].line = 2;
  entries[2].path = dir_ + "/missing.wav", entries[2].text = "x", entries[2].line = 3;
  auto vocab = std::make_shared<CharVocab>(CharVocab::build({"hello world", "hi", "x"}));
  SpeechDatasetOptions o;
  o.source = "train.jsonl";
  auto ds = std::make_shared<SpeechFeatureDataset>(entries, vocab, o);
  ASSERT_EQ(ds->size(), 3);
  const Example a = ds->get(0);
  // snip_edges: 1 + (16000 - 400) / 160 = 98 frames of 80 bins
  EXPECT_EQ(a.tensors.at("feats").sizes(), (std::vector<int64_t>{98, 80}));
  EXPECT_EQ(a.length, 98);
  EXPECT_EQ(ds->length(0), 100);  // from the manifest duration: 1.0 s at 10 ms
  EXPECT_EQ(ds->length(2), 0);    // unknown duration
  EXPECT_EQ(vocab->decode(std::vector<int64_t>(a.tensors.at("tokens").data_ptr<int64_t>(),
                                               a.tensors.at("tokens").data_ptr<int64_t>() + a.tensors.at("tokens").numel())),
            "hello world");
  // the same values as kaldi_fbank on the decoded samples scaled to int16 range
  const at::Tensor wave = load_audio(dir_ + "/a.wav", {16000, 1});
  EXPECT_TRUE(at::allclose(a.tensors.at("feats"), kaldi_fbank(wave[0] * 32768.0, 16000, o.fbank), 1e-5, 1e-5));
  try {
    ds->get(2);
    ADD_FAILURE() << "no error for a missing file";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.jsonl:3: " + dir_ + "/missing.wav"), std::string::npos) << e.what();
  }
  // through the loader: the bad example is skipped and counted with skip_bad
  LoaderOptions lo;
  lo.sampler.batch_size = 3;
  lo.sampler.shuffle = false;
  lo.num_workers = 1;
  lo.skip_bad = true;
  DataLoader loader(ds, lo);
  auto batch = loader.next();
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->size(), 2);
  EXPECT_EQ(batch->tensors.at("feats").sizes(), (std::vector<int64_t>{2, 98, 80}));
  EXPECT_EQ(batch->lengths.at("feats")[1].item<int64_t>(), 48);  // 1 + (8000 - 400) / 160
  EXPECT_EQ(loader.bad_examples(), 1);
}

TEST_F(SpeechDatasetTest, TooShortAudioAndEmptyTranscriptNameTheLine) {
  save_audio(dir_ + "/tiny.wav", at::zeros({100}), 16000);  // shorter than one 25 ms frame
  save_audio(dir_ + "/ok.wav", at::zeros({4000}), 16000);
  std::vector<ManifestEntry> entries(2);
  entries[0].path = dir_ + "/tiny.wav", entries[0].text = "a", entries[0].line = 7;
  entries[1].path = dir_ + "/ok.wav", entries[1].text = "", entries[1].line = 8;
  SpeechDatasetOptions o;
  o.source = "m.jsonl";
  SpeechFeatureDataset ds(entries, std::make_shared<CharVocab>(CharVocab::build({"a"})), o);
  auto message = [&](int64_t i) {
    try {
      ds.get(i);
    } catch (const mmref::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message(0).find("m.jsonl:7"), std::string::npos) << message(0);
  EXPECT_NE(message(0).find("shorter than one 25 ms frame"), std::string::npos) << message(0);
  EXPECT_NE(message(1).find("m.jsonl:8"), std::string::npos) << message(1);
  EXPECT_NE(message(1).find("empty transcript"), std::string::npos) << message(1);
}

}  // namespace
}  // namespace mmref::data
