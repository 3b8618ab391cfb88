// A training progress bar for terminals and for logs.
//
//   mmref::ProgressBar bar({/*total=*/1000, /*label=*/"train"});
//   for (int64_t step = 1; step <= 1000; ++step) { ...; bar.update(step, {{"loss", loss}}); }
//   bar.finish();
//
// TTY mode (a terminal): one line redrawn with '\r' at most 10 times a second,
//   train [=====>                   ] 120/1000 12% 35.2 it/s ETA 00:25 loss 0.1234
// Plain mode (CI logs, files, pipes): one full line every plain_interval_s seconds and at finish(),
//   train step 120/1000 (12%) 35.2 it/s ETA 25s loss=0.1234
// total = 0 means unknown: no bar, percentage or ETA. Metrics print with 4 significant digits.
// Rate: plain mode shows the rate over the window since its last line (windows are long, so it is
// already smooth); TTY mode shows an exponential moving average (alpha 0.3) of the rates over its
// 0.1 s redraw windows, which alone would flicker. ETA = (total - step) / rate.
// Not thread-safe: drive it from the training loop's thread.
// Tests: tests/core/progress_test.cpp (suite Progress*), with an injected clock.
#pragma once
#include <cstdint>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

namespace mmref {

class ProgressBar {
 public:
  struct Options {
    int64_t total = 0;  // steps in the run; 0 = unknown
    std::string label;
    bool force_tty = false;    // TTY mode even when `out` is not a terminal
    bool force_plain = false;  // plain mode even on a terminal (wins over force_tty)
    double plain_interval_s = 10.0;
    int width = 30;        // characters inside the bar's brackets
    int64_t initial = 0;   // step a resumed run starts from: rate and ETA count from here
    bool enabled = true;   // false: prints nothing (data-parallel ranks other than 0)
  };

  // TTY mode when `out` is std::cout (stdout) or std::cerr/std::clog (stderr) and that descriptor is
  // a terminal; any other stream is plain. force_* override the detection.
  explicit ProgressBar(Options opt, std::ostream& out = std::cerr);
  ~ProgressBar();  // ends a half-drawn TTY line with '\n'; prints no final line (call finish())

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `step` = steps completed so far. Metrics replace those shown; an empty list keeps the last ones.
  void update(int64_t step, const std::vector<std::pair<std::string, double>>& metrics = {});

  // Prints the final line (both modes) with the mean rate over the run and the elapsed time in place
  // of the ETA. Later calls do nothing.
  void finish();

  bool is_tty() const { return tty_; }

  // For tests: a clock in seconds. Call before the first update(); it restarts the run's timer.
  void set_clock_for_test(std::function<double()> now_seconds);

 private:
  void print(double now, bool final_line);
  std::string format_tty(double now, bool final_line) const;
  std::string format_plain(double now, bool final_line) const;

  Options opt_;
  std::ostream& out_;
  bool tty_ = false;
  bool finished_ = false;
  std::function<double()> clock_;

  double start_time_ = 0;
  int64_t step_ = 0;
  std::vector<std::pair<std::string, double>> metrics_;

  bool printed_ = false;         // a line (or a TTY draw) has been written
  double last_print_time_ = 0;   // the window for the rate starts here
  int64_t last_print_step_ = 0;
  bool have_rate_ = false;       // false until a window with elapsed time > 0
  double rate_ = 0;              // it/s shown
  size_t last_tty_len_ = 0;      // to blank the tail of a longer previous TTY line
};

}  // namespace mmref
