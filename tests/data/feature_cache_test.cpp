// FeatureCache*: HDF5 round trip, invalidation on source and option changes, concurrent use, and the
// file read back by h5py (/usr/bin/python3; skipped with the reason when h5py is absent).
#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include <ATen/Functions.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/feature_cache.h"

namespace mmref::data {
namespace {

void write_text(const std::string& path, const std::string& s) { std::ofstream(path, std::ios::binary) << s; }

// Sets a file's mtime to `sec` seconds since the epoch.
void set_mtime(const std::string& path, int64_t sec) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = sec;
  ts[0].tv_nsec = ts[1].tv_nsec = 0;
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
}

TEST(FeatureCache, PutGetRoundTrip) {
  const std::string dir = fs::make_temp_dir("feature_cache");
  const std::string src = dir + "/a.wav";
  write_text(src, "RIFF....");
  at::manual_seed(0);
  const at::Tensor f1 = at::randn({57, 80});
  const at::Tensor f2 = at::randn({3, 80}, at::kDouble);  // stored as float32
  {
    FeatureCache cache(dir + "/sub/feats.h5", R"({"num_mel_bins":80})");
    EXPECT_FALSE(cache.has("spk1/utt1", src));
    cache.put("spk1/utt1", src, f1);
    cache.put(".hidden%x", src, f2);
    cache.put("empty", src, at::zeros({0, 80}));
    EXPECT_TRUE(cache.has("spk1/utt1", src));
    EXPECT_TRUE(at::equal(cache.get("spk1/utt1"), f1));
    EXPECT_EQ(cache.count(), 3);
    cache.put("spk1/utt1", src, f1 * 2);  // replace
    EXPECT_TRUE(at::equal(cache.get("spk1/utt1"), f1 * 2));
    EXPECT_EQ(cache.count(), 3);
  }
  FeatureCache again(dir + "/sub/feats.h5", R"({"num_mel_bins":80})");  // persists with the same key
  EXPECT_TRUE(again.has("spk1/utt1", src));
  EXPECT_TRUE(at::equal(again.get(".hidden%x"), f2.to(at::kFloat)));
  EXPECT_EQ(again.get("empty").sizes(), (at::IntArrayRef{0, 80}));
  EXPECT_EQ(FeatureCache::link_name("spk1/utt1"), "spk1%2Futt1");
  try {
    again.get("nope");
    FAIL() << "expected mmref::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  EXPECT_THROW(again.put("x", dir + "/missing.wav", f1), Error);
  EXPECT_THROW(again.put("x", src, at::zeros({3})), Error);
}

TEST(FeatureCache, InvalidatedWhenSourceChanges) {
  const std::string dir = fs::make_temp_dir("feature_cache");
  const std::string src = dir + "/a.wav";
  write_text(src, "0123456789");
  set_mtime(src, 1700000000);
  FeatureCache cache(dir + "/feats.h5", "k");
  cache.put("a", src, at::ones({4, 2}));
  EXPECT_TRUE(cache.has("a", src));
  EXPECT_FALSE(cache.has("a", dir + "/other.wav"));  // other (missing) source path
  set_mtime(src, 1700000001);                        // same size, newer mtime
  EXPECT_FALSE(cache.has("a", src));
  set_mtime(src, 1700000000);
  EXPECT_TRUE(cache.has("a", src));
  write_text(src, "0123456789AB");  // size changes
  set_mtime(src, 1700000000);
  EXPECT_FALSE(cache.has("a", src));
  cache.put("a", src, at::ones({4, 2}));
  EXPECT_TRUE(cache.has("a", src));
  std::remove(src.c_str());
  EXPECT_FALSE(cache.has("a", src));
}

TEST(FeatureCache, RebuiltWhenOptionsChange) {
  const std::string dir = fs::make_temp_dir("feature_cache");
  const std::string src = dir + "/a.wav";
  write_text(src, "x");
  const std::string h5 = dir + "/feats.h5";
  {
    FeatureCache cache(h5, R"({"num_mel_bins":80})");
    cache.put("a", src, at::ones({2, 80}));
  }
  {
    FeatureCache cache(h5, R"({"num_mel_bins":40})");
    EXPECT_FALSE(cache.has("a", src));
    EXPECT_EQ(cache.count(), 0);
    cache.put("a", src, at::ones({2, 40}));
  }
  FeatureCache cache(h5, R"({"num_mel_bins":40})");
  EXPECT_TRUE(cache.has("a", src));
  EXPECT_EQ(cache.get("a").size(1), 40);
  // A file that is not HDF5 at all is replaced by a fresh cache.
  write_text(dir + "/junk.h5", "not hdf5");
  FeatureCache junk(dir + "/junk.h5", "k");
  EXPECT_EQ(junk.count(), 0);
}

TEST(FeatureCache, ConcurrentPutGet) {
  const std::string dir = fs::make_temp_dir("feature_cache");
  const std::string src = dir + "/a.wav";
  write_text(src, "x");
  FeatureCache cache(dir + "/feats.h5", "k");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string id = "t" + std::to_string(t) + "_" + std::to_string(i);
        cache.put(id, src, at::full({i + 1, 8}, static_cast<double>(t * 100 + i)));
        const at::Tensor g = cache.get(id);
        if (g.size(0) != i + 1 || g[0][0].item<float>() != static_cast<float>(t * 100 + i)) {
          ADD_FAILURE() << "wrong features read back for " << id;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(cache.count(), 100);
}

TEST(FeatureCache, ReadableByH5py) {
  const std::string py = "/usr/bin/python3";
  if (std::system((py + " -c 'import h5py' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "/usr/bin/python3 cannot import h5py (Debian package python3-h5py not installed)";
  }
  const std::string dir = fs::make_temp_dir("feature_cache");
  const std::string src = dir + "/a.wav";
  write_text(src, "0123456789");
  set_mtime(src, 1700000000);
  const std::string h5 = dir + "/feats.h5";
  at::manual_seed(1);
  const at::Tensor f = at::randn({31, 13});
  {
    FeatureCache cache(h5, R"({"num_mel_bins":13})");
    cache.put("spk/utt", src, f);
  }
  // h5py writes the raw float32 values and the attributes; we compare bit-exactly.
  const std::string script = dir + "/read.py";
  write_text(script, R"(import h5py, json, sys
f = h5py.File(sys.argv[1], 'r')
d = f['feats']['spk%2Futt']
open(sys.argv[2], 'wb').write(d[...].astype('<f4').tobytes())
a = {k: (v.decode() if isinstance(v, bytes) else (v if isinstance(v, str) else int(v))) for k, v in d.attrs.items()}
a['options_key'] = f.attrs['options_key']
a['shape'] = list(d.shape)
a['dtype'] = str(d.dtype)
json.dump(a, open(sys.argv[3], 'w'))
)");
  const std::string cmd = py + " " + script + " " + h5 + " " + dir + "/out.bin " + dir + "/out.json";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const std::string raw = fs::read_file(dir + "/out.bin");
  ASSERT_EQ(raw.size(), static_cast<size_t>(f.numel()) * 4);
  const at::Tensor back = at::empty({31, 13});
  std::memcpy(back.data_ptr<float>(), raw.data(), raw.size());
  EXPECT_TRUE(at::equal(back, f));
  const auto j = nlohmann::json::parse(fs::read_file(dir + "/out.json"));
  EXPECT_EQ(j.at("options_key"), R"({"num_mel_bins":13})");
  EXPECT_EQ(j.at("id"), "spk/utt");
  EXPECT_EQ(j.at("source_path"), src);
  EXPECT_EQ(j.at("source_size"), 10);
  EXPECT_EQ(j.at("source_mtime"), int64_t{1700000000} * 1000000000);
  EXPECT_EQ(j.at("shape"), nlohmann::json::parse("[31, 13]"));
  EXPECT_EQ(j.at("dtype"), "float32");
}

}  // namespace
}  // namespace mmref::data
