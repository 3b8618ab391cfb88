// See scene_check.h.
#include "eval/scene_check.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>

#include <ATen/Functions.h>

#include "core/error.h"
#include "data/generators/generators.h"

namespace mmref::eval {

namespace gen = data::gen;

namespace {

int index_of(const std::vector<std::string>& v, const std::string& w) {
  const auto it = std::find(v.begin(), v.end(), w);
  return it == v.end() ? -1 : static_cast<int>(it - v.begin());
}

// "a" / "two" / "three" <size> <colour> <shape>[s] starting at words[i]; advances i.
bool parse_object(const std::vector<std::string>& w, size_t& i, int& count, bool& large, int& colour, int& shape) {
  if (i + 4 > w.size()) return false;
  static const std::vector<std::string> kCounts = {"a", "two", "three"};
  const int c = index_of(kCounts, w[i]);
  if (c < 0) return false;
  count = c + 1;
  if (w[i + 1] != "large" && w[i + 1] != "small") return false;
  large = w[i + 1] == "large";
  colour = index_of(gen::kColourNames, w[i + 2]);
  std::string s = w[i + 3];
  if (count > 1 && !s.empty() && s.back() == 's') s.pop_back();
  shape = index_of(gen::kShapeNames, s);
  i += 4;
  return colour >= 0 && shape >= 0;
}

struct Component {
  int64_t area = 0;
  double cx = 0, cy = 0;
  int x0 = 1 << 30, y0 = 1 << 30, x1 = -1, y1 = -1;
  std::vector<int> pixels;  // y * S + x
  };

// Palette labels: 0 = background, 1 + k = kColourRgb[k].
std::vector<int> label_pixels(const at::Tensor& img, int s) {
  at::Tensor f = img.to(at::kFloat).contiguous();
  if (img.scalar_type() != at::kByte) f = f.mul(255.0);
  const float* p = f.data_ptr<float>();
  const int64_t plane = static_cast<int64_t>(s) * s;
  std::vector<std::array<float, 3>> pal;
  pal.push_back({static_cast<float>(gen::kBackground[0]), static_cast<float>(gen::kBackground[1]),
                 static_cast<float>(gen::kBackground[2])});
  for (const auto& c : gen::kColourRgb) pal.push_back({float(c[0]), float(c[1]), float(c[2])});
  std::vector<int> lab(static_cast<size_t>(plane));
  for (int64_t i = 0; i < plane; ++i) {
    float best = 1e30f;
    for (size_t k = 0; k < pal.size(); ++k) {
      float d = 0;
      for (int ch = 0; ch < 3; ++ch) {
        const float e = p[ch * plane + i] - pal[k][static_cast<size_t>(ch)];
        d += e * e;
      }
      if (d < best) best = d, lab[static_cast<size_t>(i)] = static_cast<int>(k);
    }
  }
  return lab;
}

std::vector<Component> components_of(const std::vector<int>& lab, int s, int label, int64_t min_area) {
  std::vector<Component> out;
  std::vector<char> seen(lab.size(), 0);
  std::vector<int> stack;
  for (int start = 0; start < s * s; ++start) {
    if (seen[static_cast<size_t>(start)] || lab[static_cast<size_t>(start)] != label) continue;
    Component c;
    stack.assign(1, start);
    seen[static_cast<size_t>(start)] = 1;
    while (!stack.empty()) {
      const int q = stack.back();
      stack.pop_back();
      const int x = q % s, y = q / s;
      ++c.area, c.cx += x + 0.5, c.cy += y + 0.5;
      c.pixels.push_back(q);
      c.x0 = std::min(c.x0, x), c.x1 = std::max(c.x1, x), c.y0 = std::min(c.y0, y), c.y1 = std::max(c.y1, y);
      const int nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
      for (const auto& n : nb) {
        if (n[0] < 0 || n[1] < 0 || n[0] >= s || n[1] >= s) continue;
        const int r = n[1] * s + n[0];
        if (!seen[static_cast<size_t>(r)] && lab[static_cast<size_t>(r)] == label) {
          seen[static_cast<size_t>(r)] = 1;
          stack.push_back(r);
        }
      }
    }
    c.cx /= static_cast<double>(c.area), c.cy /= static_cast<double>(c.area);
    if (c.area >= min_area) out.push_back(c);
  }
  return out;
}

// Drawn area of a shape of radius r (image_corpus.cpp): circle pi r^2, square (1.7 r)^2, triangle 1.8 r^2.
double drawn_area(int shape, bool large, int s) {
  const double r = (large ? 0.14 : 0.09) * s;
  static const double k[3] = {M_PI, 1.7 * 1.7, 1.8};
  return k[shape] * r * r;
}

// The shape whose rendering best overlaps the component (intersection over union): each hypothesis is
// drawn with the corpus's own rasteriser (data::gen::draw_shape), `objects` copies spaced evenly along
// the component's longer side (touching objects of one colour merge), the radius from the area.
int classify_shape(int s, const Component& c, int64_t objects) {
  std::vector<uint8_t> mine(static_cast<size_t>(s * s), 0);
  for (const int q : c.pixels) mine[static_cast<size_t>(q)] = 1;
  const int w = c.x1 - c.x0 + 1, h = c.y1 - c.y0 + 1;
  const bool horizontal = w >= h;
  int best = 0;
  double best_iou = -1;
  std::vector<uint8_t> planes(static_cast<size_t>(3 * s * s));
  for (int shape = 0; shape < 3; ++shape) {
    const double r0 = std::sqrt(static_cast<double>(c.area) / static_cast<double>(objects) /
                                drawn_area(shape, true, 1) * 0.14 * 0.14);
    // Small shapes are a few pixels: fit the sub-pixel offset and the radius too (best of 27 renders).
    for (const double dr : {0.92, 1.0, 1.08}) {
      for (const double ox : {-0.34, 0.0, 0.34}) {
        for (const double oy : {-0.34, 0.0, 0.34}) {
          const double r = r0 * dr;
          std::fill(planes.begin(), planes.end(), 0);
          // Extent of one object from its centre along x (r or 0.85 r) and y (triangles: -r .. 0.8 r).
          const double ext_x = shape == 1 ? 0.85 * r : r;
          const double up = shape == 1 ? 0.85 * r : r, down = shape == 0 ? r : (shape == 1 ? 0.85 * r : 0.8 * r);
          for (int64_t k = 0; k < objects; ++k) {
            const double f = objects == 1 ? 0.5 : static_cast<double>(k) / static_cast<double>(objects - 1);
            double cx = 0.5 * (c.x0 + c.x1 + 1), cy = c.y0 + up + 0.5 * (h - up - down);
            if (horizontal && objects > 1) cx = c.x0 + ext_x + f * (w - 2 * ext_x);
            if (!horizontal && objects > 1) cy = c.y0 + up + f * (h - up - down);
            data::gen::draw_shape(planes.data(), s, s, shape, cx + ox, cy + oy, r, {255, 255, 255});
          }
          int64_t inter = 0, uni = 0;
          for (int y = std::max(0, c.y0 - 3); y <= std::min(s - 1, c.y1 + 3); ++y) {
            for (int x = std::max(0, c.x0 - 3); x <= std::min(s - 1, c.x1 + 3); ++x) {
              const size_t i = static_cast<size_t>(y * s + x);
              const bool a = mine[i] != 0, b = planes[i] != 0;
              inter += a && b, uni += a || b;
            }
          }
          const double iou = uni ? static_cast<double>(inter) / static_cast<double>(uni) : 0;
          if (iou > best_iou) best_iou = iou, best = shape;
        }
      }
    }
  }
  return best;
}

}  // namespace

SceneCaption parse_scene_caption(const std::string& caption) {
  std::istringstream in(caption);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  SceneCaption c;
  size_t i = 0;
  auto bad = [&] { return Error("'" + caption + "' is not a caption of the shapes corpus (mmref data make images)"); };
  if (!parse_object(w, i, c.count, c.large, c.colour, c.shape)) throw bad();
  const std::string rest = [&] {
    std::string r;
    for (size_t k = i; k < w.size(); ++k) r += (r.empty() ? "" : " ") + w[k];
    return r;
  }();
  static const std::vector<std::string> kWhere = {"on the left", "on the right", "at the top", "at the bottom",
                                                  "in the center"};
  c.position = index_of(kWhere, rest);
  if (c.position >= 0) return c;
  for (size_t r = 0; r < gen::kRelationNames.size(); ++r) {
    const std::string& rel = gen::kRelationNames[r];
    if (rest.rfind(rel + " ", 0) != 0) continue;
    std::istringstream rin(rest.substr(rel.size() + 1));
    std::vector<std::string> rw;
    for (std::string t; rin >> t;) rw.push_back(t);
    size_t j = 0;
    int rc = 0;
    if (!parse_object(rw, j, rc, c.ref_large, c.ref_colour, c.ref_shape) || rc != 1 || j != rw.size()) throw bad();
    c.relation = static_cast<int>(r);
    return c;
  }
  throw bad();
}

SceneCheck check_scene(const at::Tensor& img, const SceneCaption& cap, const SceneCheckOptions& opt) {
  if (img.dim() != 3 || img.size(0) != 3 || img.size(1) != img.size(2)) {
    std::string shape;
    for (const int64_t d : img.sizes()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
    MMREF_FAIL("scene check: an image must be (3, S, S), got ({})", shape);
  }
  const int s = static_cast<int>(img.size(1));
  const int64_t min_area = std::max<int64_t>(2, std::llround(opt.min_area_frac * s * s));
  const std::vector<int> lab = label_pixels(img, s);
  std::vector<Component> main = components_of(lab, s, cap.colour + 1, min_area);
  SceneCheck r;
  r.main_components = static_cast<int>(main.size());
  r.colour = !main.empty();
  const bool relation = cap.relation >= 0;
  const bool same_colour_ref = relation && cap.ref_colour == cap.colour;

  // The reference object: the largest component of its colour, or (same colour) the main-colour
  // component farthest from the mean of the others.
  Component ref;
  bool have_ref = false;
  if (relation && !same_colour_ref) {
    const auto refs = components_of(lab, s, cap.ref_colour + 1, min_area);
    for (const auto& c : refs) {
      if (!have_ref || c.area > ref.area) ref = c, have_ref = true;
    }
  } else if (same_colour_ref && main.size() >= 2) {
    // The component that looks most like the reference (its shape, then its size), ties broken by the
    // distance from the others (the group is drawn in a line away from the reference).
    size_t far = 0;
    double best = -1;
    for (size_t k = 0; k < main.size(); ++k) {
      double mx = 0, my = 0;
      for (size_t q = 0; q < main.size(); ++q) {
        if (q != k) mx += main[q].cx, my += main[q].cy;
      }
      mx /= static_cast<double>(main.size() - 1), my /= static_cast<double>(main.size() - 1);
      const double ratio = static_cast<double>(main[k].area) / drawn_area(cap.ref_shape, cap.ref_large, s);
      const double score = 2.0 * (classify_shape(s, main[k], 1) == cap.ref_shape) + (ratio > 0.6 && ratio < 1.6) +
                           0.5 * std::hypot(main[k].cx - mx, main[k].cy - my) / s;
      if (score > best) best = score, far = k;
    }
    ref = main[far], have_ref = true;
    main.erase(main.begin() + static_cast<std::ptrdiff_t>(far));
  }
  // Objects per component: touching objects of one colour merge into one component (large ones are
  // drawn 0.3 S apart with a 0.28 S diameter, plus jitter), so a component counts as its area over one
  // object's drawn area, rounded (at least 1). The same-colour reference was taken out above.
  int64_t objects = 0;
  for (const auto& c : main) {
    objects += std::max<int64_t>(1, std::llround(static_cast<double>(c.area) / drawn_area(cap.shape, cap.large, s)));
  }
  r.count = objects == cap.count && (!same_colour_ref || have_ref);
  if (main.empty()) return r;
  r.shape = std::all_of(main.begin(), main.end(), [&](const Component& c) {
    const int64_t k = std::max<int64_t>(1, std::llround(static_cast<double>(c.area) / drawn_area(cap.shape, cap.large, s)));
    return classify_shape(s, c, k) == cap.shape;
  });
  double area = 0, cx = 0, cy = 0;
  for (const auto& c : main) area += static_cast<double>(c.area), cx += c.cx, cy += c.cy;
  const double n = static_cast<double>(main.size());
  area /= static_cast<double>(cap.count);  // per object, taking the caption's count (count is its own check)
  cx /= n * s, cy /= n * s;                                    // centroid as a fraction of the image
  // Large or small: the nearer drawn area in log scale (the two differ by (0.14 / 0.09)^2 = 2.4x).
  const double a_small = drawn_area(cap.shape, false, s), a_large = drawn_area(cap.shape, true, s);
  const bool looks_large = std::log(area) > 0.5 * (std::log(a_small) + std::log(a_large));
  r.size = looks_large == cap.large && area < a_large * 2.2 && area > a_small / 2.2;
  if (!relation) {
    switch (cap.position) {
      case 0: r.position = cx < 0.42; break;
      case 1: r.position = cx > 0.58; break;
      case 2: r.position = cy < 0.42; break;
      case 3: r.position = cy > 0.58; break;
      default: r.position = cx > 0.3 && cx < 0.7 && cy > 0.3 && cy < 0.7; break;
    }
  } else if (have_ref) {
    const double rx = ref.cx / s, ry = ref.cy / s, gap = 0.15;
    switch (cap.relation) {
      case 0: r.position = cy < ry - gap; break;  // above
      case 1: r.position = cy > ry + gap; break;  // below
      case 2: r.position = cx < rx - gap; break;  // to the left of
      default: r.position = cx > rx + gap; break; // to the right of
    }
  }
  return r;
}

}  // namespace mmref::eval
