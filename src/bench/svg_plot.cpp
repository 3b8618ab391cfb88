// Line plots as SVG (see svg_plot.h). Layout: title and subtitle on top, the plot frame with dashed grid
// lines at the ticks, tick labels left and below, axis labels, and the legend to the right of the frame.
#include "bench/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"

namespace mmref::bench {

namespace {

// Tableau 10: distinct on screen and in print.
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
constexpr double kCharPx = 0.6;  // average glyph width / font size for the sans fonts we name
constexpr size_t kMaxLegendChars = 72;

std::string clip_text(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

std::string escape_xml(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double base = 10;
  std::vector<double> ticks;
  double t(double v) const { return log ? std::log(v) / std::log(base) : v; }
};

Axis make_axis(double mn, double mx, bool log, double base, bool from_zero, const std::string& title,
               const char* which) {
  Axis a;
  a.log = log;
  a.base = base;
  if (log) {
    if (!(mn > 0)) MMREF_FAIL("plot '{}': log {} axis needs values > 0, got {}", title, which, mn);
    const double lmin = std::floor(std::log(mn) / std::log(base) + 1e-9);
    double lmax = std::ceil(std::log(mx) / std::log(base) - 1e-9);
    if (lmax <= lmin) lmax = lmin + 1;
    a.lo = std::pow(base, lmin);
    a.hi = std::pow(base, lmax);
    a.ticks = base == 2 ? log2_ticks(a.lo, a.hi) : log10_ticks(a.lo, a.hi);
    return a;
  }
  if (from_zero && mn >= 0) mn = 0;
  if (mx - mn <= 0) {
    const double pad = mx == 0 ? 1 : std::abs(mx) * 0.1;
    mn = from_zero && mn >= 0 ? 0 : mn - pad;
    mx = mx + pad;
  }
  a.ticks = linear_ticks(mn, mx);
  a.lo = std::min(mn, a.ticks.front());
  a.hi = std::max(mx, a.ticks.back());
  return a;
}

}  // namespace

std::vector<double> linear_ticks(double lo, double hi, int target_count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target_count - 1);
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  const double first = std::floor(lo / step + 1e-9) * step;
  for (double v = first; v <= hi + step * (1 - 1e-9); v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0 : v);
    if (ticks.size() > 50) break;  // cannot happen with a finite range; guards a NaN step
  }
  return ticks;
}

std::vector<double> log2_ticks(double lo, double hi) {
  std::vector<double> ticks;
  for (double v = std::pow(2, std::floor(std::log2(lo) + 1e-9)); v <= hi * (1 + 1e-9); v *= 2)
    ticks.push_back(v);
  if (ticks.size() > 10) {
    std::vector<double> every_other;
    for (size_t i = 0; i < ticks.size(); i += 2) every_other.push_back(ticks[i]);
    ticks = every_other;
  }
  return ticks;
}

std::vector<double> log10_ticks(double lo, double hi) {
  std::vector<double> ticks;
  const bool fine = hi / lo < 100 * (1 + 1e-9);
  for (double v = std::pow(10, std::floor(std::log10(lo) + 1e-9)); v <= hi * (1 + 1e-9); v *= 10) {
    ticks.push_back(v);
    if (fine) {
      for (double m : {2.0, 5.0}) {
        if (v * m <= hi * (1 + 1e-9)) ticks.push_back(v * m);
      }
    }
  }
  std::sort(ticks.begin(), ticks.end());
  return ticks;
}

std::string tick_label(double v) {
  const double a = std::abs(v);
  if (a >= 1e9) return fmt::format("{:g}G", v / 1e9);
  if (a >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:g}k", v / 1e3);
  if (a == 0) return "0";
  if (a < 1e-3) return fmt::format("{:.0e}", v);
  return fmt::format("{:.4g}", v);
}

Drawing layout_plot(const PlotSpec& spec) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  size_t drawn = 0;
  for (const auto& s : spec.series) {
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
      ++drawn;
    }
  }
  if (drawn == 0) MMREF_FAIL("plot '{}': no series has a finite point to draw", spec.title);
  const Axis ax = make_axis(xmin, xmax, spec.log2_x, 2, /*from_zero=*/false, spec.title, "x");
  const Axis ay = make_axis(ymin, ymax, spec.log10_y, 10, /*from_zero=*/true, spec.title, "y");

  // Legend width from the longest (clipped) name; the frame gets what is left, at least 320 px.
  size_t longest = 0;
  for (const auto& s : spec.series) longest = std::max(longest, clip_text(s.name, kMaxLegendChars).size());
  const double legend_w = 40 + longest * 12 * kCharPx;
  const double left = 76, top = spec.subtitle.empty() ? 44 : 62, bottom = 54, right = legend_w + 20;
  Drawing d;
  d.width = std::max(spec.width, static_cast<int>(left + right + 320));
  const double legend_h = 18.0 * spec.series.size() + 8;
  d.height = std::max(spec.height, static_cast<int>(top + legend_h + bottom));
  const double pw = d.width - left - right, ph = d.height - top - bottom;
  auto px = [&](double x) { return left + (ax.t(x) - ax.t(ax.lo)) / (ax.t(ax.hi) - ax.t(ax.lo)) * pw; };
  auto py = [&](double y) { return top + ph - (ay.t(y) - ay.t(ay.lo)) / (ay.t(ay.hi) - ay.t(ay.lo)) * ph; };

  auto& out = d.shapes;
  Shape bg;
  bg.kind = Shape::kRect, bg.pts = {{0, 0}}, bg.w = d.width, bg.h = d.height, bg.color = "#ffffff",
  bg.filled = true;
  out.push_back(bg);
  auto text = [&](double x, double y, const std::string& s, double size, int anchor,
                  const std::string& color) {
    Shape t;
    t.kind = Shape::kText, t.pts = {{x, y}}, t.text = s, t.font_px = size, t.anchor = anchor, t.color = color;
    out.push_back(t);
    return &out.back();
  };
  auto line = [&](double x1, double y1, double x2, double y2, const std::string& color, double stroke,
                  bool dashed) {
    Shape l;
    l.kind = Shape::kLine, l.pts = {{x1, y1}, {x2, y2}}, l.color = color, l.stroke = stroke,
    l.dashed = dashed;
    out.push_back(l);
  };
  text(left, 22, spec.title, 15, -1, "#111111")->bold = true;
  if (!spec.subtitle.empty()) text(left, 42, spec.subtitle, 12, -1, "#555555");

  for (double v : ax.ticks) {
    const double x = px(v);
    line(x, top, x, top + ph, "#dddddd", 1, true);
    line(x, top + ph, x, top + ph + 5, "#444444", 1, false);
    text(x, top + ph + 19, tick_label(v), 11, 0, "#333333");
  }
  for (double v : ay.ticks) {
    const double y = py(v);
    line(left, y, left + pw, y, "#dddddd", 1, true);
    line(left - 5, y, left, y, "#444444", 1, false);
    text(left - 8, y + 4, tick_label(v), 11, 1, "#333333");
  }
  Shape frame;
  frame.kind = Shape::kRect, frame.pts = {{left, top}}, frame.w = pw, frame.h = ph, frame.color = "#444444";
  out.push_back(frame);
  text(left + pw / 2, d.height - 14, spec.x_label + (spec.log2_x ? " (log2)" : ""), 12, 0, "#111111");
  text(18, top + ph / 2, spec.y_label + (spec.log10_y ? " (log10)" : ""), 12, 0, "#111111")->vertical = true;

  for (size_t i = 0; i < spec.series.size(); ++i) {
    const auto& s = spec.series[i];
    const std::string color = kPalette[i % kPaletteSize];
    auto pts = s.points;
    std::sort(pts.begin(), pts.end());
    Shape poly;
    poly.kind = Shape::kPolyline, poly.color = color, poly.stroke = 2;
    for (const auto& [x, y] : pts) {
      if (std::isfinite(x) && std::isfinite(y)) poly.pts.emplace_back(px(x), py(y));
    }
    out.push_back(poly);
    for (const auto& p : poly.pts) {
      Shape c;
      c.kind = Shape::kCircle, c.pts = {p}, c.w = 3, c.color = color, c.filled = true;
      out.push_back(c);
    }
    // Legend entry: a short line with a marker, then the name. Series past the palette get dashes.
    const double lx = left + pw + 16, ly = top + 10 + 18.0 * i;
    line(lx, ly, lx + 22, ly, color, 2, i >= static_cast<size_t>(kPaletteSize));
    Shape c;
    c.kind = Shape::kCircle, c.pts = {{lx + 11, ly}}, c.w = 3, c.color = color, c.filled = true;
    out.push_back(c);
    text(lx + 28, ly + 4, clip_text(s.name, kMaxLegendChars), 12, -1, "#111111");
  }
  return d;
}

std::string to_svg(const Drawing& d) {
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
      d.width, d.height);
  for (const Shape& sh : d.shapes) {
    switch (sh.kind) {
      case Shape::kLine:
        s += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-width=\"{}\"{}/>\n",
            sh.pts[0].first, sh.pts[0].second, sh.pts[1].first, sh.pts[1].second, sh.color, sh.stroke,
            sh.dashed ? " stroke-dasharray=\"3,3\"" : "");
        break;
      case Shape::kPolyline: {
        std::string pts;
        for (const auto& [x, y] : sh.pts) pts += fmt::format("{}{:.1f},{:.1f}", pts.empty() ? "" : " ", x, y);
        s += fmt::format(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\" "
            "points=\"{}\"/>\n",
            sh.color, sh.stroke, pts);
        break;
      }
      case Shape::kCircle:
        s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\"/>\n", sh.pts[0].first,
                         sh.pts[0].second, sh.w, sh.color);
        break;
      case Shape::kRect:
        s += fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" {}/>\n", sh.pts[0].first,
            sh.pts[0].second, sh.w, sh.h,
            sh.filled ? fmt::format("fill=\"{}\"", sh.color)
                      : fmt::format("fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"", sh.color, sh.stroke));
        break;
      case Shape::kText: {
        const char* anchor = sh.anchor < 0 ? "start" : sh.anchor == 0 ? "middle" : "end";
        const double x = sh.pts[0].first, y = sh.pts[0].second;
        s += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" text-anchor=\"{}\" fill=\"{}\"{}{}>{}</text>\n",
            x, y, sh.font_px, anchor, sh.color, sh.bold ? " font-weight=\"bold\"" : "",
            sh.vertical ? fmt::format(" transform=\"rotate(-90 {:.1f} {:.1f})\"", x, y) : "",
            escape_xml(sh.text));
        break;
      }
    }
  }
  s += "</svg>\n";
  return s;
}

}  // namespace mmref::bench
