// Prompt adherence for the procedural shapes corpus (`mmref data make images`) without downloaded
// weights: a generated image is segmented by the corpus's own palette and checked against its caption.
//
//   caption "two large red squares to the left of a small blue circle"
//     -> parse_scene_caption: count 2, large, red, square, relation "to the left of", ref small blue circle
//   image (3, S, S) -> every pixel labelled with its nearest palette colour (or background when it is
//     closer to the background grey (40, 40, 40) than to any colour), 4-connected components per colour,
//     components under min_area_frac of the image dropped (speckle)
//   checks (each true/false per image):
//     colour    a component of the main object's colour exists
//     count     the main colour has exactly `count` components (+1 when the reference object has the
//               same colour)
//     shape     the main colour's components classify as the caption's shape by their fill ratio in
//               their bounding box (square ~1, circle ~pi/4, triangle ~1/2; thresholds 0.88 / 0.62)
//     size      mean component area within a factor sqrt(2.2) of the corpus's drawn area for that size
//     position  the main components' centroid in the named region (left: x < 0.42 S, right: x > 0.58 S,
//               top/bottom likewise in y, center: both within 0.3..0.7 S), or, for a relation, on the
//               right side of the reference object's component (the other colour or the extra one)
//     all       every check above
// The corpus's own test images pass every check (tests/eval/scene_check_test.cpp renders 500 random
// scenes: all pass at 64 px, 88% at 32 px where small circles and squares are a few pixels), so a
// generated image that fails is the model's error, not the checker's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mmref::eval {

struct SceneCaption {
  int count = 1;           // 1..3
  bool large = false;
  int colour = 0, shape = 0;  // indices into data::gen::kColourNames / kShapeNames
  int position = -1;       // index into kPositionNames, or -1 for a relation
  int relation = -1;       // index into kRelationNames, or -1
  bool ref_large = false;
  int ref_colour = -1, ref_shape = -1;
};

// The inverse of the corpus's scene_caption(). Throws mmref::Error naming the caption when it is not one.
SceneCaption parse_scene_caption(const std::string& caption);

struct SceneCheck {
  bool colour = false, count = false, shape = false, size = false, position = false;
  bool all() const { return colour && count && shape && size && position; }
  int main_components = 0;  // components of the main colour found
};

struct SceneCheckOptions {
  double min_area_frac = 0.002;  // components smaller than this fraction of the image are speckle
};

// img: (3, S, S) uint8 or float in [0, 1] (or [0, 255] when uint8), square.
SceneCheck check_scene(const at::Tensor& img, const SceneCaption& caption, const SceneCheckOptions& opt = {});

}  // namespace mmref::eval
