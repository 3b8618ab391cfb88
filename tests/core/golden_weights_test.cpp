// The golden fixtures' safetensors files open with our reader: every tensor loads, F16 weights convert
// to finite F32 values, and fid_inception carries the Inception3 key names its README promises.
// Root: $MMREF_GOLDEN_DIR, else <MMREF_SOURCE_DIR>/../shared/golden (see that folder's README.md); the
// twins run through MMREF_GOLDEN_DIR, so only layout and key names are checked, never values.
//   MMREF_GOLDEN_DIR=/path/to/golden build/<dir>/tests/mmref_core_tests --gtest_filter='GoldenWeights*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "core/state_dict.h"

namespace mmref {
namespace {

namespace stdfs = std::filesystem;

std::string golden_root() {
  const char* env = std::getenv("MMREF_GOLDEN_DIR");
  if (env != nullptr && *env != '\0') return env;
  return std::string(MMREF_SOURCE_DIR) + "/../shared/golden";
}

// Every <case>/{weights,io}.safetensors under the root, sorted.
std::vector<std::string> fixture_files(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& entry : stdfs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    for (const char* name : {"weights.safetensors", "io.safetensors"}) {
      const auto p = entry.path() / name;
      if (stdfs::exists(p)) out.push_back(p.string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GoldenWeights, EveryTensorLoads) {
  const std::string root = golden_root();
  if (!stdfs::is_directory(root))
    GTEST_SKIP() << "no golden fixtures at '" << root << "' (set MMREF_GOLDEN_DIR)";
  const auto files = fixture_files(root);
  ASSERT_FALSE(files.empty()) << "no <case>/weights.safetensors or io.safetensors under " << root;
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    auto f = SafetensorsFile::open(path);
    EXPECT_FALSE(f.tensors().empty());
    uint64_t bytes = 0;
    for (const auto& info : f.tensors()) {
      const torch::Tensor t = f.get(info.name);
      EXPECT_EQ(t.scalar_type(), st_to_torch(info.dtype)) << info.name;
      EXPECT_EQ(t.sizes().vec(), info.shape) << info.name;
      bytes += info.end - info.begin;
      if (info.dtype == StDType::F16) {
        const torch::Tensor f32 = f.get(info.name, torch::kFloat);
        EXPECT_EQ(f32.scalar_type(), torch::kFloat);
        EXPECT_TRUE(torch::isfinite(f32).all().item<bool>()) << info.name << " has non-finite values";
        EXPECT_TRUE(torch::equal(f32.to(torch::kHalf), t)) << info.name;  // the conversion is exact
      }
    }
    EXPECT_LE(bytes, f.data_size());
    // Input/output keys follow the README's prefixes.
    if (stdfs::path(path).filename() == "io.safetensors") {
      for (const auto& info : f.tensors()) {
        EXPECT_TRUE(info.name.rfind("input.", 0) == 0 || info.name.rfind("output.", 0) == 0) << info.name;
      }
    }
  }
}

TEST(GoldenWeights, FidInceptionKeys) {
  const std::string path = golden_root() + "/fid_inception/weights.safetensors";
  if (!stdfs::exists(path))
    GTEST_SKIP() << "no fid_inception weights at '" << path << "' (set MMREF_GOLDEN_DIR)";
  auto f = SafetensorsFile::open(path);
  for (const char* key : {"Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var",
                          "Mixed_6b.branch7x7_2.bn.running_var", "Mixed_7c.branch_pool.conv.weight"}) {
    EXPECT_TRUE(f.contains(key)) << key;
  }
  // fc is omitted to save space (README); a model loader must ignore it in the official file.
  EXPECT_FALSE(f.contains("fc.weight"));
  EXPECT_EQ(f.info("Conv2d_1a_3x3.conv.weight").dtype, StDType::F16);
  EXPECT_EQ(f.info("Conv2d_1a_3x3.conv.weight").shape, (std::vector<int64_t>{32, 3, 3, 3}));

  int tracked = 0;
  for (const auto& info : f.tensors()) {
    const std::string suffix = "num_batches_tracked";
    if (info.name.size() < suffix.size() ||
        info.name.compare(info.name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    ++tracked;
    EXPECT_EQ(info.dtype, StDType::I64) << info.name;
    EXPECT_TRUE(info.shape.empty()) << info.name << " is not a scalar";
    EXPECT_EQ(f.get(info.name).dim(), 0) << info.name;
  }
  EXPECT_GT(tracked, 0);
  EXPECT_TRUE(f.contains("Conv2d_1a_3x3.bn.num_batches_tracked"));
  // load_weights dispatches to the safetensors reader for the same file.
  EXPECT_EQ(load_weights(path).size(), f.tensors().size());
}

}  // namespace
}  // namespace mmref
