// Progress bar for terminals and logs; see progress.h.
#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace mmref {
namespace {

constexpr double kTtyInterval = 0.1;  // seconds between redraws: 10/s looks live, costs nothing
constexpr double kTtyEmaAlpha = 0.3;  // weight of the newest 0.1 s window in the shown rate

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool stream_is_terminal(const std::ostream& out) {
  if (&out == &std::cout) return ::isatty(STDOUT_FILENO) == 1;
  if (&out == &std::cerr || &out == &std::clog) return ::isatty(STDERR_FILENO) == 1;
  return false;
}

// "35.2 it/s", or "4.00 s/it" below one step a second, or "? it/s" before any time has passed.
std::string format_rate(bool known, double rate) {
  if (!known) return "? it/s";
  if (rate > 0 && rate < 1) return fmt::format("{:.2f} s/it", 1.0 / rate);
  return fmt::format("{:.1f} it/s", rate);
}

// TTY clock style: "00:25", "1:02:03".
std::string format_clock(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

// Log style: "25s", "4m05s", "1h02m03s".
std::string format_duration(double seconds) {
  const long long s = std::llround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

std::string format_metrics(const std::vector<std::pair<std::string, double>>& metrics, char sep) {
  std::string s;
  for (const auto& [name, v] : metrics) s += fmt::format(" {}{}{:.4g}", name, sep, v);
  return s;
}

}  // namespace

ProgressBar::ProgressBar(Options opt, std::ostream& out)
    : opt_(std::move(opt)), out_(out), clock_(steady_seconds) {
  if (opt_.total < 0) MMREF_FAIL("progress bar '{}': total {} < 0", opt_.label, opt_.total);
  if (opt_.width < 1) MMREF_FAIL("progress bar '{}': width {} < 1", opt_.label, opt_.width);
  tty_ = opt_.force_plain ? false : (opt_.force_tty || stream_is_terminal(out_));
  set_clock_for_test(clock_);
}

ProgressBar::~ProgressBar() {
  if (tty_ && printed_ && !finished_) {
    try {
      out_ << '\n' << std::flush;
    } catch (...) {  // a stream with exceptions enabled must not throw out of a destructor
    }
  }
}

void ProgressBar::set_clock_for_test(std::function<double()> now_seconds) {
  clock_ = std::move(now_seconds);
  start_time_ = clock_();
  last_print_time_ = start_time_;
  step_ = last_print_step_ = opt_.initial;
}

void ProgressBar::update(int64_t step, const std::vector<std::pair<std::string, double>>& metrics) {
  if (finished_ || !opt_.enabled) return;
  step_ = step;
  if (!metrics.empty()) metrics_ = metrics;
  const double now = clock_();
  const double since = now - last_print_time_;
  bool due;
  if (tty_) {
    const bool last_step = opt_.total > 0 && step >= opt_.total;  // show the full bar at once
    due = !printed_ || since >= kTtyInterval || last_step;
  } else {
    due = since >= opt_.plain_interval_s;
  }
  if (due) print(now, /*final_line=*/false);
}

void ProgressBar::finish() {
  if (finished_ || !opt_.enabled) return;
  print(clock_(), /*final_line=*/true);
  finished_ = true;
}

void ProgressBar::print(double now, bool final_line) {
  const double dt = now - last_print_time_;
  if (dt > 0) {
    const double window = static_cast<double>(step_ - last_print_step_) / dt;
    rate_ = (tty_ && have_rate_) ? kTtyEmaAlpha * window + (1 - kTtyEmaAlpha) * rate_ : window;
    have_rate_ = true;
  }
  last_print_time_ = now;
  last_print_step_ = step_;

  if (tty_) {
    std::string line = format_tty(now, final_line);
    const size_t len = line.size();
    if (len < last_tty_len_) line.append(last_tty_len_ - len, ' ');  // blank a longer old line
    last_tty_len_ = len;
    out_ << '\r' << line;
    if (final_line) out_ << '\n';
  } else {
    out_ << format_plain(now, final_line) << '\n';
  }
  out_ << std::flush;
  printed_ = true;
}

std::string ProgressBar::format_tty(double now, bool final_line) const {
  const double elapsed = now - start_time_;
  const bool known_total = opt_.total > 0;
  std::string s = opt_.label.empty() ? "" : opt_.label + " ";
  if (known_total) {
    const double frac = std::clamp(static_cast<double>(step_) / opt_.total, 0.0, 1.0);
    const int filled = static_cast<int>(frac * opt_.width);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < opt_.width) {
      bar += '>';
      bar.append(static_cast<size_t>(opt_.width - filled - 1), ' ');
    }
    s += fmt::format("[{}] {}/{} {}%", bar, step_, opt_.total, 100 * step_ / opt_.total);
  } else {
    s += fmt::format("{} it", step_);
  }
  if (final_line) {
    const bool known = elapsed > 0;
    s += " " + format_rate(known, known ? (step_ - opt_.initial) / elapsed : 0);
    s += " in " + format_clock(elapsed);
  } else {
    s += " " + format_rate(have_rate_, rate_);
    if (known_total) {
      s += " ETA " + (have_rate_ && rate_ > 0 ? format_clock((opt_.total - step_) / rate_)
                                              : std::string("--:--"));
    }
  }
  return s + format_metrics(metrics_, ' ');
}

std::string ProgressBar::format_plain(double now, bool final_line) const {
  const double elapsed = now - start_time_;
  const bool known_total = opt_.total > 0;
  std::string s = opt_.label.empty() ? "" : opt_.label + " ";
  if (known_total) {
    s += fmt::format("step {}/{} ({}%)", step_, opt_.total, 100 * step_ / opt_.total);
  } else {
    s += fmt::format("step {}", step_);
  }
  if (final_line) {
    const bool known = elapsed > 0;
    s += " " + format_rate(known, known ? (step_ - opt_.initial) / elapsed : 0);
    s += " done in " + format_duration(elapsed);
  } else {
    s += " " + format_rate(have_rate_, rate_);
    if (known_total) {
      s += " ETA " + (have_rate_ && rate_ > 0 ? format_duration((opt_.total - step_) / rate_)
                                              : std::string("?"));
    }
  }
  return s + format_metrics(metrics_, '=');
}

}  // namespace mmref
