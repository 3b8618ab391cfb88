// Bad-input tests (suite MediaBadInput*): missing files, garbage bytes, files truncated at several
// points, zero-length audio, zero-sized images and wrong stream types, fed to every loader. Each must
// end in mmref::Error naming the file (never a crash or a hang) within a time bound.
// Formats whose container states the length (wav, flac, mp3 with a Xing/Info header, mp4, png, jpeg)
// must report truncation as an error; streamed formats (ogg, opus, gif, y4m) cut at a packet/frame
// boundary are indistinguishable from a shorter file, so there a shorter result is also accepted.
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='MediaBadInput*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include <ATen/Functions.h>

#include "media_test_util.h"
#include "core/error.h"
#include "core/fs.h"
#include "data/media/audio_io.h"
#include "data/media/image_io.h"
#include "data/media/video_io.h"

namespace mmref::data {
namespace {

using testing::have_ffmpeg;
using testing::run_ffmpeg;

constexpr double kTimeBoundS = 10.0;  // generous for a loaded 2-core CI machine; typical is < 50 ms

class MediaBadInput : public testing::MediaTest {};


void write_file(const std::string& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Runs `load` on `p`; expects mmref::Error naming the file (or success when allow_ok), fast.
// Returns true if it threw.
bool expect_error(const std::string& p, const std::function<void()>& load, bool allow_ok = false,
                  int line = 0) {
  auto t0 = std::chrono::steady_clock::now();
  bool threw = false;
  try {
    load();
  } catch (const Error& e) {
    threw = true;
    if (std::getenv("MMREF_PRINT_ERRORS")) std::printf("  error: %s\n", e.what());
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
        << "message does not name the file: " << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "message is not one line: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << p << ": threw a non-mmref exception: " << e.what();
  }
  if (!allow_ok) {
    EXPECT_TRUE(threw) << p << ": decoded without an error (line " << line << ")";
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, kTimeBoundS) << p;
  return threw;
}

void load_all_ways(const std::string& p, bool allow_ok = false) {
  expect_error(
      p, [&] { load_audio(p); }, allow_ok, 1);
  expect_error(
      p,
      [&] {
        AudioStreamReader r(p);
        at::Tensor c;
        while (r.read(c, 1000)) {
        }
      },
      allow_ok, 2);
  expect_error(
      p, [&] { load_image(p); }, allow_ok, 3);
  expect_error(
      p, [&] { load_video(p); }, allow_ok, 4);
  expect_error(
      p, [&] { probe_media(p); }, allow_ok, 5);
}

at::Tensor sine(int64_t n, int sr) {
  return at::arange(n, at::kFloat).div(sr).mul(2 * 3.14159265 * 330).sin().mul(0.5).unsqueeze(0);
}

at::Tensor pattern(int t, int h, int w) {
  at::manual_seed(7);
  // Different 4x4 blocks in every frame, so the coded frames (not the container's trailing
  // metadata) make up most of the file.
  at::Tensor base = at::randint(0, 256, {t, 3, h / 4, w / 4}, at::kFloat);
  return at::repeat_interleave(at::repeat_interleave(base, 4, 2), 4, 3).to(at::kByte).contiguous();
}

TEST_F(MediaBadInput, MissingFileNamesTheFile) {
  const std::string p = path("does_not_exist.wav");
  load_all_ways(p);
  try {
    load_audio(p);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
  }
  expect_error(dir_, [&] { load_audio(dir_); });                      // a directory, not a file
  expect_error("/dev/urandom", [&] { load_audio("/dev/urandom"); });  // endless: must not hang
}

TEST_F(MediaBadInput, GarbageFilesFailCleanlyEverywhere) {
  std::mt19937 rng(123);
  int n = 0;
  for (size_t size : {0, 1, 7, 100, 4096, 200000}) {
    for (const char* ext : {"wav", "flac", "mp3", "ogg", "png", "jpg", "mp4", "gif", "webm", "bin"}) {
      std::string bytes(size, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      const std::string p = path("garbage_" + std::to_string(size) + "." + ext);
      write_file(p, bytes);
      SCOPED_TRACE(p);
      load_all_ways(p);
      ++n;
    }
  }
  EXPECT_EQ(n, 60);
  // The message says what happened.
  try {
    load_audio(path("garbage_4096.wav"));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot"), std::string::npos) << e.what();
  }
}

TEST_F(MediaBadInput, TruncatedAudioFails) {
  const int sr = 16000;
  save_audio(path("a.wav"), sine(2 * sr, sr), sr);
  save_audio(path("a.flac"), sine(2 * sr, sr), sr);
  std::vector<std::pair<std::string, bool>> files = {{"a.wav", true}, {"a.flac", true}};
  if (have_ffmpeg()) {
    ASSERT_TRUE(run_ffmpeg("-i " + path("a.wav") + " -c:a libmp3lame " + path("a.mp3")));
    ASSERT_TRUE(run_ffmpeg("-i " + path("a.wav") + " -c:a libvorbis " + path("a.ogg")));
    ASSERT_TRUE(run_ffmpeg("-i " + path("a.wav") + " -c:a libopus " + path("a.opus")));
    files.push_back({"a.mp3", true});
    files.push_back({"a.ogg", false});
    files.push_back({"a.opus", false});
  }
  for (const auto& [name, strict] : files) {
    const std::string bytes = fs::read_file(path(name));
    const int64_t full_len = load_audio(path(name)).size(1);
    for (double frac : {0.0, 0.02, 0.25, 0.5, 0.75, 0.9}) {
      size_t cut = frac == 0.0 ? 10 : static_cast<size_t>(bytes.size() * frac);
      const std::string p = path("cut_" + std::to_string(cut) + "_" + name);
      write_file(p, bytes.substr(0, cut));
      SCOPED_TRACE(p);
      bool threw = expect_error(
          p, [&] { load_audio(p); }, /*allow_ok=*/!strict);
      if (!threw) {  // streamed format: a shorter decode is the only other acceptable outcome
        EXPECT_LT(load_audio(p).size(1), full_len);
      }
      expect_error(
          p,
          [&] {
            AudioStreamReader r(p);
            at::Tensor c;
            while (r.read(c, 4096)) {
            }
          },
          !strict);
    }
  }
}

TEST_F(MediaBadInput, TruncatedImagesAndVideosFail) {
  at::manual_seed(1);
  at::Tensor img = at::randint(0, 256, {3, 64, 80}, at::kByte);
  save_image(path("a.png"), img);
  save_image(path("a.jpg"), img);
  save_video(path("a.mp4"), pattern(20, 32, 48), 25);
  save_video(path("a.gif"), pattern(6, 32, 48), 10);
  for (const char* name : {"a.png", "a.jpg", "a.mp4", "a.gif"}) {
    const std::string bytes = fs::read_file(path(name));
    const bool strict = std::string(name) != "a.gif";
    for (double frac : {0.0, 0.1, 0.5, 0.8, 0.97}) {
      // mp4 ends with the moov box's metadata (encoder tag): a 97% cut only drops that.
      if (frac > 0.9 && std::string(name) == "a.mp4") continue;
      size_t cut = frac == 0.0 ? 8 : static_cast<size_t>(bytes.size() * frac);
      const std::string p = path("cut_" + std::to_string(cut) + "_" + name);
      write_file(p, bytes.substr(0, cut));
      SCOPED_TRACE(p);
      if (std::string(name).find(".mp4") != std::string::npos || !strict) {
        bool threw = expect_error(
            p, [&] { load_video(p); }, !strict);
        if (!threw) {
          EXPECT_LT(load_video(p).size(0), 6);
        }
      } else {
        expect_error(p, [&] { load_image(p); });
      }
    }
  }
}

TEST_F(MediaBadInput, TruncatedFaststartMp4FailsOnTheFrameCount) {
  // With the moov box first (faststart), a cut file still opens; the header's frame count is what
  // reveals the missing frames.
  if (!have_ffmpeg()) GTEST_SKIP() << "the ffmpeg binary is not installed (apt-get install ffmpeg)";
  save_video(path("a.mp4"), pattern(20, 32, 48), 25);
  ASSERT_TRUE(run_ffmpeg("-i " + path("a.mp4") + " -c copy -movflags +faststart " + path("fs.mp4")));
  EXPECT_EQ(load_video(path("fs.mp4")).size(0), 20);
  const std::string bytes = fs::read_file(path("fs.mp4"));
  for (double frac : {0.3, 0.6, 0.9}) {
    const std::string p = path("cut_" + std::to_string(frac) + "_fs.mp4");
    write_file(p, bytes.substr(0, static_cast<size_t>(bytes.size() * frac)));
    SCOPED_TRACE(p);
    expect_error(p, [&] { load_video(p); });
  }
  // Asking only for frames that are all present is fine.
  const std::string p = path("cut_0.900000_fs.mp4");
  VideoOptions o;
  o.num_frames = 3;
  EXPECT_EQ(load_video(p, o).size(0), 3);
}

TEST_F(MediaBadInput, UnsupportedCodecIsNamed) {
  save_audio(path("a.wav"), sine(1600, 16000), 16000);
  std::string wav = fs::read_file(path("a.wav"));
  wav[20] = '\x34';  // WAVE format tag 0x1234: no such codec
  wav[21] = '\x12';
  write_file(path("odd.wav"), wav);
  try {
    load_audio(path("odd.wav"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path("odd.wav")), std::string::npos) << m;
    EXPECT_NE(m.find("unsupported codec (unknown, tag 0x1234)"), std::string::npos) << m;
  }
}

TEST_F(MediaBadInput, ZeroLengthAudioAndZeroSizedImages) {
  // A valid 44-byte WAV header with an empty data chunk.
  std::string hdr = std::string("RIFF") + std::string("\x24\0\0\0", 4) + "WAVEfmt " +
                    std::string("\x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0", 20) + "data" +
                    std::string("\0\0\0\0", 4);
  ASSERT_EQ(hdr.size(), 44u);
  write_file(path("empty.wav"), hdr);
  expect_error(path("empty.wav"), [&] { load_audio(path("empty.wav")); });
  expect_error(path("empty.wav"), [&] {
    AudioStreamReader r(path("empty.wav"));
    at::Tensor c;
    r.read(c, 10);
  });
  EXPECT_THROW(save_audio(path("z.wav"), at::zeros({1, 0}), 16000), Error);
  EXPECT_THROW(save_image(path("z.png"), at::zeros({3, 0, 0}, at::kByte)), Error);
  // A png whose IHDR says 0 x 0 (CRC left as is: both faults must be caught).
  at::Tensor img = at::full({3, 4, 4}, 100, at::kByte);
  save_image(path("ok.png"), img);
  std::string png = fs::read_file(path("ok.png"));
  for (int i = 16; i < 24; ++i) png[i] = 0;  // IHDR width and height
  write_file(path("zero.png"), png);
  expect_error(path("zero.png"), [&] { load_image(path("zero.png")); });
  EXPECT_THROW(save_video(path("z.mp4"), at::zeros({0, 3, 8, 8}, at::kByte), 25), Error);
}

TEST_F(MediaBadInput, WrongStreamTypeOrOptionsNameTheProblem) {
  save_image(path("a.png"), at::full({3, 4, 4}, 9, at::kByte));
  save_audio(path("a.wav"), sine(1600, 16000), 16000);
  try {
    load_audio(path("a.png"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no audio stream"), std::string::npos) << e.what();
  }
  try {
    load_video(path("a.wav"));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no video stream"), std::string::npos) << e.what();
  }
  AudioOptions bad;
  bad.duration_s = 0;
  EXPECT_THROW(load_audio(path("a.wav"), bad), Error);
  bad = {};
  bad.sample_rate = -5;
  EXPECT_THROW(load_audio(path("a.wav"), bad), Error);
  VideoOptions vbad;
  vbad.num_frames = 0;
  EXPECT_THROW(load_video(path("a.png"), vbad), Error);
  at::Tensor c;
  AudioStreamReader r(path("a.wav"));
  EXPECT_THROW(r.read(c, 0), Error);
}

}  // namespace
}  // namespace mmref::data
