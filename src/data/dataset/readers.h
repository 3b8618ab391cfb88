// Readers for common dataset layouts, producing manifest entries (manifest.h). They list files and
// read transcripts only: media are not opened, durations stay 0 (media probing lives elsewhere), but
// every referenced file must exist. Bad inputs follow the manifest rules: an mmref::Error
// "<file>:<line>: <what>" (or "<folder>: <what>"), or with skip_bad a skipped, counted, reported entry.
// Paths in the entries are absolute when `root` is, else relative to the working directory. Entries
// come in a deterministic order (file order; folders and files sorted by name).
//
//   read_ljspeech(root)      root/metadata.csv, lines "id|text|normalized_text" (pipe-separated, no
//                            quoting; the third field may be missing). text = normalized_text when
//                            non-empty, else text; extra {"id", "raw_text"}; audio root/wavs/<id>.wav;
//                            speaker "ljspeech".
//   read_librispeech(root)   every *.trans.txt under root (recursive), lines "<utt-id> TEXT";
//                            audio <utt-id>.flac beside it; utt-id "<speaker>-<chapter>-<n>" gives
//                            speaker and extra {"id", "chapter"}; split = the first folder under root
//                            when the layout is root/<subset>/<speaker>/<chapter>/ (e.g.
//                            "train-clean-100"), else "".
//   read_image_folder(root)  root/captions.jsonl with {"file": ..., "caption": ...} lines (file
//   read_video_folder(root)  relative to root; "text" accepted for "caption"; other keys -> extra),
//                            or, without captions.jsonl, class folders root/<class>/<file> with
//                            caption = class name and extra {"class"}. Image files: png jpg jpeg bmp
//                            webp gif tif tiff; video files: mp4 mkv avi mov webm m4v mpg mpeg gif;
//                            other files in class folders are ignored (extension case-insensitive).
#pragma once
#include <string>
#include <vector>

#include "data/dataset/manifest.h"

namespace mmref::data {

std::vector<ManifestEntry> read_ljspeech(const std::string& root, bool skip_bad = false,
                                         BadInputReport* report = nullptr);
std::vector<ManifestEntry> read_librispeech(const std::string& root, bool skip_bad = false,
                                            BadInputReport* report = nullptr);
std::vector<ManifestEntry> read_image_folder(const std::string& root, bool skip_bad = false,
                                             BadInputReport* report = nullptr);
std::vector<ManifestEntry> read_video_folder(const std::string& root, bool skip_bad = false,
                                             BadInputReport* report = nullptr);

}  // namespace mmref::data
