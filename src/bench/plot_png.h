// PNG output for `mmref bench report --format png`: rasterises the same Drawing as the SVG (svg_plot.h)
// with our own line/disc/rect fill and an embedded 5x7 bitmap font, at 2x the SVG's pixel size so text
// stays readable, and encodes it through data::save_image (FFmpeg's PNG encoder).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bench/svg_plot.h"

namespace mmref::bench {

// (height, width, 3) RGB bytes of the drawing at `scale` x its size.
struct Raster {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};
Raster rasterize(const Drawing& d, int scale = 2);
// Throws mmref::Error naming the file when it cannot be written.
void write_plot_png(const PlotSpec& spec, const std::string& path);

}  // namespace mmref::bench
