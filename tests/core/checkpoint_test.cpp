// Checkpoints: full state round trip (module, optimizer, RNG, meta), keep-last-N, and atomicity: an
// interrupted write (a process killed mid-write, a writer that throws) leaves the previous checkpoint.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <ATen/Functions.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adamw.h>

#include "core/checkpoint.h"
#include "core/error.h"
#include "core/fs.h"

namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = mmref::fs::make_temp_dir("mmref_ckpt_"); }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string dir_;
};

// One AdamW step on a linear model so the optimizer has moments to save.
void one_step(torch::nn::Linear& lin, torch::optim::AdamW& opt) {
  auto loss = lin->forward(torch::randn({4, 3})).pow(2).mean();
  opt.zero_grad();
  loss.backward();
  opt.step();
}

TEST_F(CheckpointTest, RoundTripRestoresTrainingBitwise) {
  torch::manual_seed(0);
  torch::nn::Linear a(3, 2);
  torch::optim::AdamW opt_a(a->parameters(), torch::optim::AdamWOptions(1e-2));
  one_step(a, opt_a);

  mmref::Checkpoint ck;
  ck.step = 17;
  ck.add_module("model", *a);
  ck.add_optimizer("adamw", opt_a);
  ck.add_cpu_rng();
  ck.meta["data_position"] = 1234;
  mmref::CheckpointManager mgr(dir_, 3);
  const std::string path = mgr.save(ck);
  EXPECT_EQ(std::filesystem::path(path).filename(), "ckpt-00000017.safetensors");

  // Continue the original: one more step with the RNG as saved.
  one_step(a, opt_a);

  // Restore into a fresh model/optimizer and take the same step: bitwise the same weights.
  torch::manual_seed(99);
  torch::nn::Linear b(3, 2);
  torch::optim::AdamW opt_b(b->parameters(), torch::optim::AdamWOptions(1e-2));
  mmref::Checkpoint loaded = mmref::load_checkpoint(path);
  EXPECT_EQ(loaded.step, 17);
  EXPECT_EQ(loaded.meta["data_position"], 1234);
  loaded.load_module("model", *b);
  loaded.load_optimizer("adamw", opt_b);
  loaded.load_cpu_rng();
  one_step(b, opt_b);
  EXPECT_TRUE(torch::equal(a->weight, b->weight));
  EXPECT_TRUE(torch::equal(a->bias, b->bias));
}

TEST_F(CheckpointTest, KeepsLastNAndPointsAtLatest) {
  torch::nn::Linear lin(2, 2);
  mmref::CheckpointManager mgr(dir_, 2);
  for (int step : {10, 20, 30, 40}) {
    mmref::Checkpoint ck;
    ck.step = step;
    ck.add_module("model", *lin);
    mgr.save(ck);
  }
  auto all = mgr.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_NE(all[0].find("ckpt-00000030"), std::string::npos);
  EXPECT_NE(all[1].find("ckpt-00000040"), std::string::npos);
  EXPECT_EQ(*mgr.latest(), all[1]);
}

TEST_F(CheckpointTest, KilledWriterLeavesPreviousCheckpointIntact) {
  torch::nn::Linear lin(8, 8);
  mmref::CheckpointManager mgr(dir_, 5);
  mmref::Checkpoint ck;
  ck.step = 1;
  ck.add_module("model", *lin);
  const std::string good = mgr.save(ck);
  const std::string before = mmref::fs::read_file(good);

  // A child process starts overwriting the same checkpoint and dies half-way through (no cleanup).
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    mmref::fs::atomic_write(good, [&](std::ostream& out) {
      out.write(before.data(), before.size() / 2);
      out.flush();
      _exit(3);  // crash mid-write
    });
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 3);
  EXPECT_EQ(mmref::fs::read_file(good), before);      // untouched
  EXPECT_EQ(*mgr.latest(), good);                       // the leftover temp file is ignored
  EXPECT_EQ(mgr.list().size(), 1u);
  EXPECT_NO_THROW(mmref::load_checkpoint(good));
}

TEST_F(CheckpointTest, ThrowingWriterRemovesTempAndKeepsOld) {
  const std::string p = dir_ + "/file.bin";
  mmref::fs::atomic_write(p, std::string("old content"));
  EXPECT_THROW(mmref::fs::atomic_write(p, [](std::ostream& out) {
                 out << "partial";
                 throw mmref::Error("disk on fire");
               }),
               mmref::Error);
  EXPECT_EQ(mmref::fs::read_file(p), "old content");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);  // no temp file left behind
}

TEST_F(CheckpointTest, CorruptNewestFallsBackToPreviousAndLoadNamesFile) {
  torch::nn::Linear lin(2, 2);
  mmref::CheckpointManager mgr(dir_, 5);
  mmref::Checkpoint ck;
  ck.add_module("model", *lin);
  ck.step = 1;
  const std::string first = mgr.save(ck);
  ck.step = 2;
  const std::string second = mgr.save(ck);
  // Simulate a torn file written by something that is not atomic (e.g. a copy cut short).
  const std::string bytes = mmref::fs::read_file(second);
  std::ofstream(second, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size() / 3);
  EXPECT_EQ(*mgr.latest(), first);
  try {
    mmref::load_checkpoint(second);
    FAIL() << "expected an error";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find(second), std::string::npos) << e.what();
  }
  EXPECT_THROW(mmref::load_checkpoint(dir_ + "/none.safetensors"), mmref::Error);
}

TEST_F(CheckpointTest, StrictModuleLoadNamesMismatchedKeys) {
  torch::nn::Linear small(2, 2), big(3, 2);
  mmref::Checkpoint ck;
  ck.add_module("model", *small);
  try {
    ck.load_module("model", *big);
    FAIL() << "expected a shape mismatch";
  } catch (const mmref::Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight"), std::string::npos) << e.what();
  }
}

}  // namespace
