// Internal interface between corpus.cpp (dispatch, incremental check) and the per-kind generators,
// plus the pure pieces the tests check directly: the sentence grammar and the scene drawing.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "data/generators/corpus.h"
#include "data/generators/gen_common.h"

namespace mmref::data::gen {

// What a generator made: files relative to opt.out (all of them, for the incremental check) and a
// one-line summary (also kept in corpus.json).
struct CorpusResult {
  std::vector<std::string> files;
  std::string summary;
  nlohmann::json stats = nlohmann::json::object();
};

CorpusResult make_speech(const CorpusOptions& opt);
CorpusResult make_speech_real(const CorpusOptions& opt);
CorpusResult make_video(const CorpusOptions& opt);
CorpusResult make_video_real(const CorpusOptions& opt);
CorpusResult make_images(const CorpusOptions& opt);
CorpusResult make_digits(const CorpusOptions& opt);
CorpusResult make_photos(const CorpusOptions& opt);

// ---- sentence grammar (sentences.cpp) ----
// One sentence of 3..15 words from the grammar (subject, verb, object, adjectives, numbers, places,
// times), capitalised and ending in '.'; the same Rng state gives the same sentence.
std::string make_sentence(Rng& rng);
// n distinct sentences for `seed` (deterministic; throws if the grammar cannot give n distinct ones).
std::vector<std::string> make_sentences(uint64_t seed, int64_t n);

// ---- scenes (image_corpus.cpp) ----
extern const std::vector<std::string> kColourNames;           // "red", "green", ...
extern const std::vector<std::array<uint8_t, 3>> kColourRgb;  // same order
extern const std::vector<std::string> kShapeNames;            // "circle", "square", "triangle"
extern const std::vector<std::string> kPositionNames;         // "left", "right", "top", "bottom", "center"
extern const std::vector<std::string> kRelationNames;         // "above", "below", "to the left of", ...

struct SceneObject {
  int shape = 0, colour = 0;
  bool large = false;
};
struct Scene {
  SceneObject obj;                 // the main object, drawn `count` times
  int count = 1;                   // 1..3
  int position = 4;                // index into kPositionNames (used when relation < 0)
  int relation = -1;               // index into kRelationNames, or -1 for a lone group
  SceneObject ref;                 // the reference object of a relation (drawn once)
  std::array<int8_t, 8> jitter{};  // small per-object offsets (in 1/64 of the image size)
};
// "two blue circles above a green triangle", "a large red square on the left".
std::string scene_caption(const Scene& s);
Scene sample_scene(Rng& rng);
// Centres (x, y) in pixels of every drawn object, main objects first, then the reference.
std::vector<std::array<double, 2>> scene_centres(const Scene& s, int size);
// (3, size, size) uint8 RGB on a dark grey background (kBackground).
at::Tensor render_scene(const Scene& s, int size);
extern const std::array<uint8_t, 3> kBackground;
// Fills the pixels of (3, height, width) planar RGB whose centres lie inside `shape` (index into
// kShapeNames) of radius r centred at (cx, cy) with `rgb` (no anti-aliasing).
void draw_shape(uint8_t* rgb_planes, int width, int height, int shape, double cx, double cy, double r,
                const std::array<uint8_t, 3>& rgb);
// The colour+shape pairs kept out of train/test ("red triangle", ...), as (colour, shape) indices.
std::vector<std::array<int, 2>> heldout_pairs();

}  // namespace mmref::data::gen
