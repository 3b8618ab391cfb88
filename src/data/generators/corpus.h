// Local corpus generators: `mmref data make <kind> --out DIR`. No dataset can be downloaded, so mmref
// makes real media with labels on the machine, from Debian packages and seeded procedures:
//
//   speech       generated English sentences synthesised by espeak-ng, flite and festival (several
//                voices, rates, pitches), mono wav at sample_rate; splits train/dev/test with disjoint
//                sentences + `heldout` (one voice never seen in the other splits); JSONL manifests per
//                split and an LJSpeech-style metadata.csv                      (speech_corpus.cpp)
//   speech_real  the transcribed recordings of Debian's pocketsphinx-testdata   (speech_corpus.cpp)
//   video        lavfi sources (life, mandelbrot, cellauto, testsrc2) via the ffmpeg CLI and drawn
//                moving shapes with captions ("a red square moving left")       (video_corpus.cpp)
//   video_real   16-frame 64x64 clips cut from opencv-doc's sample videos       (video_corpus.cpp)
//   images       drawn captioned scenes at 32 and 64 px with held-out colour+shape pairs (image_corpus.cpp)
//   digits       the 5000 20x20 handwritten digits of opencv-doc's digits.png   (image_corpus.cpp)
//   photos       python3-skimage's (and scikit-learn's, if installed) sample photographs (image_corpus.cpp)
//
// Every corpus is deterministic for (kind, seed, count, sample_rate) and records them with its file
// list in DIR/corpus.json; a second call with the same options and all files present does nothing.
// Tests: tests/data/generators_*_test.cpp (suites Corpus*).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mmref::data {

struct CorpusOptions {
  std::string out;
  uint64_t seed = 0;
  int64_t count = 0;  // 0 = the kind's default
  int sample_rate = 16000;
  int threads = 0;  // 0 = all cores
  bool quiet = false;
};

// (name, one-line description) of every kind.
std::vector<std::pair<std::string, std::string>> corpus_kinds();

// Makes the corpus under opt.out; incremental: if opt.out/corpus.json exists with the same options and
// all files, does nothing. Returns a one-line summary. Throws mmref::Error (an unknown kind lists the
// kinds; a missing synthesizer or data package names the Debian package to install).
std::string make_corpus(const std::string& kind, const CorpusOptions& opt);

}  // namespace mmref::data
