// Manifest and layout-reader tests (suites Manifest*, Readers*): JSONL parsing with every bad-input
// error (message and line number), skip_bad counting, atomic writing and round trips, and the
// LJSpeech / LibriSpeech / image / video folder readers on tiny trees made here (media files are empty
// placeholders: readers do not decode).
// Run: build/<dir>/tests/mmref_data_tests --gtest_filter='Manifest*:Readers*'
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fs.h"
#include "data/dataset/manifest.h"
#include "data/dataset/readers.h"

namespace mmref::data {
namespace {

namespace stdfs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

class TreeTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fs::make_temp_dir("manifest"); }
  void TearDown() override { stdfs::remove_all(dir_); }
  std::string put(const std::string& rel, const std::string& content = "") {
    const std::string p = dir_ + "/" + rel;
    fs::make_dirs(stdfs::path(p).parent_path().string());
    fs::atomic_write(p, content);
    return p;
  }
  std::string dir_;
};

class ManifestTest : public TreeTest {};
class ReadersTest : public TreeTest {};

TEST_F(ManifestTest, ParsesFieldsResolvesPathsKeepsExtra) {
  const std::string m = put("data/manifest.jsonl",
                            "{\"path\": \"wavs/a.wav\", \"text\": \"hello\", \"speaker\": \"p1\", "
                            "\"split\": \"train\", \"duration\": 1.5, \"lang\": \"en\"}\n"
                            "\n"
                            "{\"path\": \"/abs/b.wav\", \"speaker\": 7}\n"
                            "{\"path\": \"../c.png\", \"caption\": \"a cat\"}\r\n");
  auto e = read_manifest(m);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].path, dir_ + "/data/wavs/a.wav");
  EXPECT_EQ(e[0].text, "hello");
  EXPECT_EQ(e[0].speaker, "p1");
  EXPECT_EQ(e[0].split, "train");
  EXPECT_DOUBLE_EQ(e[0].duration, 1.5);
  EXPECT_EQ(e[0].line, 1);
  EXPECT_EQ(e[0].extra, nlohmann::json({{"lang", "en"}}));
  EXPECT_EQ(e[1].path, "/abs/b.wav");
  EXPECT_EQ(e[1].speaker, "7");
  EXPECT_EQ(e[1].text, "");
  EXPECT_EQ(e[1].line, 3);
  EXPECT_TRUE(e[1].extra.is_null());
  EXPECT_EQ(e[2].path, dir_ + "/c.png");
  EXPECT_EQ(e[2].text, "a cat");
  EXPECT_EQ(e[2].line, 4);
}

// Each bad line, alone in a manifest after one good line, gives "<file>:2: <what>".
TEST_F(ManifestTest, EachBadInputNamesFileAndLine) {
  const std::string good = "{\"path\": \"a.wav\", \"text\": \"ok\"}\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"path\": \"b.wav\", \"text\": \"x\"", "broken JSON"},
      {"[1, 2]", "expected a JSON object, got array"},
      {"{\"text\": \"no path\"}", "missing required key \"path\""},
      {"{\"path\": \"\"}", "\"path\" is empty"},
      {"{\"path\": 5}", "\"path\" must be a string"},
      {"{\"path\": \"b.wav\", \"text\": \"\"}", "empty transcript"},
      {"{\"path\": \"b.wav\", \"text\": \"   \"}", "empty transcript"},
      {"{\"path\": \"b.wav\", \"text\": 3}", "\"text\" must be a string"},
      {"{\"path\": \"b.wav\", \"duration\": -0.5}", "negative duration -0.5"},
      {"{\"path\": \"b.wav\", \"duration\": \"long\"}", "\"duration\" must be a number"},
      {"{\"path\": \"b.wav\", \"speaker\": [1]}", "\"speaker\" must be a string or an integer"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string m = put("m" + std::to_string(i) + "/manifest.jsonl", good + cases[i].first + "\n");
    const std::string msg = error_of([&] { read_manifest(m); });
    EXPECT_EQ(msg.rfind(m + ":2: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(cases[i].second), std::string::npos) << msg;
  }
  EXPECT_NE(error_of([&] { read_manifest(dir_ + "/none.jsonl"); }).find("does not exist"), std::string::npos);
}

TEST_F(ManifestTest, SkipBadCountsAndReports) {
  const std::string m = put("manifest.jsonl",
                            "{\"path\": \"a.wav\", \"text\": \"one\"}\n"
                            "{broken\n"
                            "{\"path\": \"b.wav\", \"text\": \"two\"}\n"
                            "{\"path\": \"c.wav\", \"duration\": -1}\n"
                            "{\"path\": \"d.wav\", \"text\": \"three\"}\n"
                            "{\"text\": \"no path\"}\n");
  // Without skip_bad: the first bad line stops the read.
  EXPECT_EQ(error_of([&] { read_manifest(m); }).rfind(m + ":2: broken JSON", 0), 0u);
  BadInputReport report;
  auto e = read_manifest(m, /*skip_bad=*/true, &report);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].text, "one");
  EXPECT_EQ(e[1].text, "two");
  EXPECT_EQ(e[1].line, 3);
  EXPECT_EQ(e[2].text, "three");
  EXPECT_EQ(report.skipped, 3);
  ASSERT_EQ(report.messages.size(), 3u);
  EXPECT_EQ(report.messages[0].rfind(m + ":2: ", 0), 0u);
  EXPECT_EQ(report.messages[1].rfind(m + ":4: negative duration", 0), 0u);
  EXPECT_EQ(report.messages[2].rfind(m + ":6: missing required key", 0), 0u);
  // A null report is allowed.
  EXPECT_EQ(read_manifest(m, true, nullptr).size(), 3u);
}

TEST_F(ManifestTest, WriteReadRoundTripIsAtomicAndRelative) {
  std::vector<ManifestEntry> in(3);
  in[0].path = dir_ + "/out/wavs/a.wav";
  in[0].text = "hello \"quoted\" caf\xC3\xA9";
  in[0].speaker = "s1";
  in[0].split = "val";
  in[0].duration = 2.25;
  in[0].extra = {{"lang", "en"}, {"score", 0.5}};
  in[1].path = "/elsewhere/b.wav";
  in[2].path = dir_ + "/c.wav";  // outside the manifest folder: stays absolute
  const std::string m = dir_ + "/out/manifest.jsonl";
  write_manifest(m, in);
  const std::string text = fs::read_file(m);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "{\"path\":\"wavs/a.wav\",\"text\":\"hello \\\"quoted\\\" caf\xC3\xA9\",\"speaker\":\"s1\","
            "\"split\":\"val\",\"duration\":2.25,\"lang\":\"en\",\"score\":0.5}");
  for (const auto& f : stdfs::directory_iterator(dir_ + "/out")) {
    EXPECT_EQ(f.path().filename().string().find(".tmp"), std::string::npos) << "temp file left behind";
  }
  auto out = read_manifest(m);
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].path, in[i].path);
    EXPECT_EQ(out[i].text, in[i].text);
    EXPECT_EQ(out[i].speaker, in[i].speaker);
    EXPECT_EQ(out[i].split, in[i].split);
    EXPECT_DOUBLE_EQ(out[i].duration, in[i].duration);
    EXPECT_EQ(out[i].extra, in[i].extra);
    EXPECT_EQ(out[i].line, static_cast<int64_t>(i + 1));
  }
  std::vector<ManifestEntry> bad(1);
  EXPECT_NE(error_of([&] { write_manifest(m, bad); }).find("empty path"), std::string::npos);
  bad[0].path = "x.wav";
  bad[0].duration = -1;
  EXPECT_NE(error_of([&] { write_manifest(m, bad); }).find("bad duration"), std::string::npos);
  EXPECT_EQ(read_manifest(m).size(), 3u) << "a failed write leaves the old file";
}

TEST_F(ReadersTest, LjSpeech) {
  put("lj/metadata.csv",
      "LJ001-0001|Printing, in 1st sense|Printing, in first sense\n"
      "LJ001-0002|in being comparatively modern.|\n"
      "LJ001-0003|no normalized field\n"
      "LJ001-0004|missing wav|missing wav\n"
      "LJ001-0005||\n"
      "LJ001-0006|a|b|c\n");
  for (int i : {1, 2, 3, 5, 6}) put("lj/wavs/LJ001-000" + std::to_string(i) + ".wav");
  const std::string meta = dir_ + "/lj/metadata.csv";
  EXPECT_EQ(error_of([&] { read_ljspeech(dir_ + "/lj"); }).rfind(meta + ":4: audio file", 0), 0u);
  BadInputReport r;
  auto e = read_ljspeech(dir_ + "/lj", true, &r);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].path, dir_ + "/lj/wavs/LJ001-0001.wav");
  EXPECT_EQ(e[0].text, "Printing, in first sense");
  EXPECT_EQ(e[0].extra["raw_text"], "Printing, in 1st sense");
  EXPECT_EQ(e[0].extra["id"], "LJ001-0001");
  EXPECT_EQ(e[0].speaker, "ljspeech");
  EXPECT_EQ(e[0].duration, 0);
  EXPECT_EQ(e[1].text, "in being comparatively modern.");  // empty normalized -> raw text
  EXPECT_EQ(e[2].text, "no normalized field");
  EXPECT_EQ(e[2].line, 3);
  EXPECT_EQ(r.skipped, 3);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].rfind(meta + ":4: audio file", 0), 0u);
  EXPECT_EQ(r.messages[1].rfind(meta + ":5: empty transcript", 0), 0u);
  EXPECT_EQ(r.messages[2].rfind(meta + ":6: expected 'id|text|normalized_text', found 4", 0), 0u);
  EXPECT_NE(error_of([&] { read_ljspeech(dir_ + "/nothing"); }).find("does not exist"), std::string::npos);
}

TEST_F(ReadersTest, LibriSpeech) {
  put("ls/train-clean-100/19/198/19-198.trans.txt",
      "19-198-0000 NORTHANGER ABBEY\n19-198-0001 THIS LITTLE WORK\n");
  put("ls/train-clean-100/19/198/19-198-0000.flac");
  put("ls/train-clean-100/19/198/19-198-0001.flac");
  put("ls/dev-clean/84/121123/84-121123.trans.txt",
      "84-121123-0000 GO DO YOU HEAR\n84-121123-0001\n"
      "84-121123-0002 NO AUDIO\nbadid TEXT\n");
  put("ls/dev-clean/84/121123/84-121123-0000.flac");
  const std::string dev = dir_ + "/ls/dev-clean/84/121123/84-121123.trans.txt";
  EXPECT_EQ(error_of([&] { read_librispeech(dir_ + "/ls"); }).rfind(dev + ":2: empty transcript", 0), 0u);
  BadInputReport r;
  auto e = read_librispeech(dir_ + "/ls", true, &r);
  ASSERT_EQ(e.size(), 3u);
  // Sorted by transcript path: dev-clean before train-clean-100.
  EXPECT_EQ(e[0].path, dir_ + "/ls/dev-clean/84/121123/84-121123-0000.flac");
  EXPECT_EQ(e[0].text, "GO DO YOU HEAR");
  EXPECT_EQ(e[0].speaker, "84");
  EXPECT_EQ(e[0].split, "dev-clean");
  EXPECT_EQ(e[0].extra["chapter"], "121123");
  EXPECT_EQ(e[1].text, "NORTHANGER ABBEY");
  EXPECT_EQ(e[1].speaker, "19");
  EXPECT_EQ(e[1].split, "train-clean-100");
  EXPECT_EQ(e[2].text, "THIS LITTLE WORK");
  EXPECT_EQ(e[2].line, 2);
  EXPECT_EQ(r.skipped, 3);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].rfind(dev + ":2: empty transcript", 0), 0u);
  EXPECT_EQ(r.messages[1].rfind(dev + ":3: audio file", 0), 0u);
  EXPECT_EQ(r.messages[2].rfind(dev + ":4: utterance id 'badid'", 0), 0u);
  fs::make_dirs(dir_ + "/empty");
  EXPECT_NE(error_of([&] { read_librispeech(dir_ + "/empty"); }).find("no *.trans.txt"), std::string::npos);
}

TEST_F(ReadersTest, ImageFolderWithCaptions) {
  put("img/captions.jsonl",
      "{\"file\": \"a.png\", \"caption\": \"a red square\", \"seed\": 3}\n"
      "{\"file\": \"sub/b.jpg\", \"text\": \"a blue circle\"}\n"
      "{\"file\": \"missing.png\", \"caption\": \"gone\"}\n"
      "{\"file\": \"a.png\", \"caption\": \"\"}\n"
      "{\"caption\": \"no file\"}\n"
      "not json\n");
  put("img/a.png");
  put("img/sub/b.jpg");
  const std::string cap = dir_ + "/img/captions.jsonl";
  EXPECT_EQ(error_of([&] { read_image_folder(dir_ + "/img"); }).rfind(cap + ":3: image file", 0), 0u);
  BadInputReport r;
  auto e = read_image_folder(dir_ + "/img", true, &r);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].path, dir_ + "/img/a.png");
  EXPECT_EQ(e[0].text, "a red square");
  EXPECT_EQ(e[0].extra, nlohmann::json({{"seed", 3}}));
  EXPECT_EQ(e[1].path, dir_ + "/img/sub/b.jpg");
  EXPECT_EQ(e[1].text, "a blue circle");
  EXPECT_EQ(e[1].line, 2);
  EXPECT_EQ(r.skipped, 4);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[1].rfind(cap + ":4: empty caption", 0), 0u);
  EXPECT_EQ(r.messages[2].rfind(cap + ":5: missing required key \"file\"", 0), 0u);
  EXPECT_EQ(r.messages[3].rfind(cap + ":6: broken JSON", 0), 0u);
}

TEST_F(ReadersTest, ImageAndVideoClassFolders) {
  put("cls/dog/2.png");
  put("cls/dog/1.JPG");
  put("cls/dog/notes.txt");  // ignored
  put("cls/cat/x.webp");
  put("cls/cat/clip.mp4");  // a video: not an image
  auto e = read_image_folder(dir_ + "/cls");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].path, dir_ + "/cls/cat/x.webp");
  EXPECT_EQ(e[0].text, "cat");
  EXPECT_EQ(e[1].path, dir_ + "/cls/dog/1.JPG");
  EXPECT_EQ(e[2].path, dir_ + "/cls/dog/2.png");
  EXPECT_EQ(e[2].text, "dog");
  EXPECT_EQ(e[2].extra["class"], "dog");
  auto v = read_video_folder(dir_ + "/cls");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].path, dir_ + "/cls/cat/clip.mp4");
  EXPECT_EQ(v[0].text, "cat");
  fs::make_dirs(dir_ + "/nothing/empty_class");
  EXPECT_NE(error_of([&] { read_video_folder(dir_ + "/nothing"); }).find("neither captions.jsonl"),
            std::string::npos);
}

TEST_F(ReadersTest, VideoFolderWithCaptions) {
  put("vid/captions.jsonl",
      "{\"file\": \"clips/a.mp4\", \"caption\": \"waves on a beach\"}\n"
      "{\"file\": \"clips/b.mkv\", \"caption\": \"a train\"}\n");
  put("vid/clips/a.mp4");
  const std::string cap = dir_ + "/vid/captions.jsonl";
  EXPECT_EQ(error_of([&] { read_video_folder(dir_ + "/vid"); }).rfind(cap + ":2: video file", 0), 0u);
  put("vid/clips/b.mkv");
  auto e = read_video_folder(dir_ + "/vid");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[1].path, dir_ + "/vid/clips/b.mkv");
  EXPECT_EQ(e[1].text, "a train");
  // Reader output can be written as a manifest and read back unchanged.
  write_manifest(dir_ + "/vid/manifest.jsonl", e);
  auto back = read_manifest(dir_ + "/vid/manifest.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].path, e[0].path);
  EXPECT_EQ(back[1].text, e[1].text);
}

}  // namespace
}  // namespace mmref::data
