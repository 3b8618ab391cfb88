// Shared by the media tests: a fixture with a fresh temporary folder (kept when MMREF_KEEP_TMP is set, for
// looking at the files a failing test made) and the ffmpeg program for making test media.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "core/fs.h"

namespace mmref::data::testing {

class MediaTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("mmref_media_"); }
  void TearDown() override {
    if (!std::getenv("MMREF_KEEP_TMP")) std::filesystem::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

inline bool have_ffmpeg() { return std::system("ffmpeg -version > /dev/null 2>&1") == 0; }
inline bool run_ffmpeg(const std::string& args) {
  return std::system(("ffmpeg -hide_banner -loglevel error -nostdin -y " + args).c_str()) == 0;
}

}  // namespace mmref::data::testing
