// A small line-plot writer for `mmref bench report`: axes, ticks, an optional log2 x axis and log10 y
// axis, one polyline (with point markers) per series and a legend. The plot is laid out once into a
// list of shapes (Drawing); to_svg() writes them as SVG text and plot_png.h rasterises the same shapes,
// so the SVG and PNG of a plot agree.
//
//   PlotSpec p;  p.title = "kernel.attention: latency";  p.x_label = "batch";  p.y_label = "p50 ms";
//   p.log2_x = true;  p.series.push_back({"NVIDIA H200", {{1, 0.4}, {2, 0.7}, {4, 1.3}}});
//   fs::atomic_write("latency.svg", render_svg(p));
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace mmref::bench {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); drawn in x order; non-finite y skipped
};

struct PlotSpec {
  std::string title;
  std::string subtitle;  // e.g. the values held fixed ("seq=256"); empty: none
  std::string x_label, y_label;
  bool log2_x = false;   // x ticks at powers of two (batch sizes, sequence lengths); needs x > 0
  bool log10_y = false;  // y ticks at decades; needs y > 0
  std::vector<PlotSeries> series;
  int width = 760, height = 440;  // pixels; the height grows when the legend needs more room
};

// What a plot is made of, in pixel coordinates (origin top left).
struct Shape {
  enum Kind { kLine, kPolyline, kCircle, kRect, kText } kind = kLine;
  std::vector<std::pair<double, double>> pts;  // line: 2 points; polyline: n; circle/rect/text: 1 (anchor)
  double w = 0, h = 0;                         // rect size; circle radius in w
  std::string color = "#000000";               // "#rrggbb"
  double stroke = 1;                           // line width (px)
  bool dashed = false;                         // grid lines
  bool filled = false;                         // rect/circle
  std::string text;                            // kText
  double font_px = 12;
  int anchor = -1;  // kText: -1 start, 0 middle, 1 end
  bool bold = false;
  bool vertical = false;  // kText rotated -90 degrees (the y axis label)
};

struct Drawing {
  int width = 0, height = 0;
  std::vector<Shape> shapes;
};

// Lays the plot out. Throws mmref::Error when the spec has no series with a finite point, or a log axis
// gets a value <= 0 (the error names the plot title).
Drawing layout_plot(const PlotSpec& spec);
std::string to_svg(const Drawing& d);
inline std::string render_svg(const PlotSpec& spec) { return to_svg(layout_plot(spec)); }

// Tick positions for an axis over [lo, hi] (exposed for tests): linear ticks at 1/2/5 x 10^k steps,
// log2 ticks at powers of two (every other one past 10 ticks), log10 ticks at decades (plus 2x and 5x
// when the range spans under two decades).
std::vector<double> linear_ticks(double lo, double hi, int target_count = 6);
std::vector<double> log2_ticks(double lo, double hi);
std::vector<double> log10_ticks(double lo, double hi);
// Short tick label: 0.25, 3, 128, 12k, 1.5M.
std::string tick_label(double v);

}  // namespace mmref::bench
