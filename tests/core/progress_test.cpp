// ProgressBar with an injected clock and a std::ostringstream: line formats in both modes, rate and
// ETA math (window rate in plain mode, EMA in TTY mode), throttling, unknown totals, resumed runs,
// finish(). Expected numbers are worked out in the comment above each case.
//
//   build/<dir>/tests/mmref_core_tests --gtest_filter='Progress*'
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/progress.h"

namespace {

using mmref::ProgressBar;

ProgressBar::Options plain(int64_t total, const std::string& label = "train") {
  ProgressBar::Options o;
  o.total = total;
  o.label = label;
  o.force_plain = true;
  return o;
}

ProgressBar::Options tty(int64_t total, int width, const std::string& label = "train") {
  ProgressBar::Options o;
  o.total = total;
  o.label = label;
  o.force_tty = true;
  o.width = width;
  return o;
}

// A bar whose clock is `t_`, set by the test.
class ProgressTest : public ::testing::Test {
 protected:
  std::unique_ptr<ProgressBar> make(ProgressBar::Options o) {
    auto bar = std::make_unique<ProgressBar>(std::move(o), out_);
    bar->set_clock_for_test([this] { return t_; });
    return bar;
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> v;
    std::istringstream in(out_.str());
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }
  double t_ = 100.0;  // any origin: only differences matter
  std::ostringstream out_;
};

TEST_F(ProgressTest, ModeDetection) {
  ProgressBar::Options o;
  EXPECT_FALSE(ProgressBar(o, out_).is_tty());  // a string stream is never a terminal
  o.force_tty = true;
  EXPECT_TRUE(ProgressBar(o, out_).is_tty());
  o.force_plain = true;
  EXPECT_FALSE(ProgressBar(o, out_).is_tty());  // force_plain wins
  o.width = 0;
  EXPECT_THROW(ProgressBar(o, out_), mmref::Error);
}

// Plain mode, interval 10 s, total 1000.
//   t=+5:  step 100, 5 s since start  < 10 -> nothing
//   t=+10: step 352, window 352 steps / 10 s = 35.2 it/s, ETA (1000-352)/35.2 = 18.4 s -> "18s"
//   t=+20: step 704: window (704-352)/10 = 35.2, ETA 296/35.2 = 8.4 s -> "8s"
TEST_F(ProgressTest, PlainLineRateAndEta) {
  auto bar = make(plain(1000));
  t_ += 5;
  bar->update(100, {{"loss", 0.5}});
  EXPECT_EQ(out_.str(), "");
  t_ += 5;
  bar->update(352, {{"loss", 0.1234}, {"lr", 3e-4}});
  t_ += 10;
  bar->update(704);  // metrics kept from the last update that had them
  EXPECT_EQ(lines(), (std::vector<std::string>{
                         "train step 352/1000 (35%) 35.2 it/s ETA 18s loss=0.1234 lr=0.0003",
                         "train step 704/1000 (70%) 35.2 it/s ETA 8s loss=0.1234 lr=0.0003",
                     }));
  EXPECT_EQ(out_.str().find('\r'), std::string::npos);
}

// 100 steps, one a second, interval 10 s: lines at t=+10, +20, ..., +100 (10 lines), then finish()
// adds the final line: 11 in all. A rate of 1 it/s over 100 s: "done in 1m40s".
TEST_F(ProgressTest, PlainThrottlesToInterval) {
  auto bar = make(plain(100));
  const double t0 = t_;
  for (int step = 1; step <= 100; ++step) {
    t_ = t0 + step;
    bar->update(step);
  }
  EXPECT_EQ(lines().size(), 10u);
  EXPECT_EQ(lines()[0], "train step 10/100 (10%) 1.0 it/s ETA 1m30s");
  bar->finish();
  bar->finish();  // once only
  ASSERT_EQ(lines().size(), 11u);
  EXPECT_EQ(lines().back(), "train step 100/100 (100%) 1.0 it/s done in 1m40s");
}

// finish() prints the final line even when no interval has passed: 100 steps in 4 s = 25 it/s.
TEST_F(ProgressTest, FinishPrintsFinalLine) {
  auto bar = make(plain(100, "eval"));
  t_ += 4;
  bar->update(100, {{"acc", 0.875}});
  EXPECT_EQ(out_.str(), "");
  bar->finish();
  EXPECT_EQ(out_.str(), "eval step 100/100 (100%) 25.0 it/s done in 4s acc=0.875\n");
  bar->update(101);  // after finish: ignored
  EXPECT_EQ(lines().size(), 1u);
}

// total = 0: no percentage, bar or ETA in either mode. 50 steps in 10 s = 5 it/s.
TEST_F(ProgressTest, UnknownTotal) {
  auto bar = make(plain(0));
  t_ += 10;
  bar->update(50, {{"loss", 2.0}});
  EXPECT_EQ(lines(), std::vector<std::string>{"train step 50 5.0 it/s loss=2"});

  std::ostringstream term;
  ProgressBar tbar(tty(0, 10), term);
  const double t0 = t_;
  tbar.set_clock_for_test([&] { return t_; });
  t_ = t0 + 10;
  tbar.update(50);
  EXPECT_EQ(term.str(), "\rtrain 50 it 5.0 it/s");
}

// TTY mode, width 10, total 1000.
//   t=+5:   first update draws at once. Rate 176/5 = 35.2 it/s, ETA 824/35.2 = 23.4 s -> "00:23".
//           Bar: 10 * 0.176 = 1.76 -> 1 '=', then '>', then 8 spaces.
//   t=+5.0625 step 180: 0.0625 s since the last draw < 0.1 s -> no redraw.
//   t=+5.125  step 186: window 10 steps / 0.125 s = 80 it/s; EMA 0.3*80 + 0.7*35.2 = 48.64 -> "48.6";
//             ETA 814/48.64 = 16.7 s -> "00:17". Bar: 1.86 -> 1 '='.
// (Times are binary fractions so the differences are exact.)
TEST_F(ProgressTest, TtyLineRedrawsWithCarriageReturnAndEma) {
  auto bar = make(tty(1000, 10));
  const double t0 = t_;
  t_ = t0 + 5;
  bar->update(176, {{"loss", 0.1234}});
  EXPECT_EQ(out_.str(), "\rtrain [=>        ] 176/1000 17% 35.2 it/s ETA 00:23 loss 0.1234");
  out_.str("");
  t_ = t0 + 5.0625;
  bar->update(180, {{"loss", 0.1}});
  EXPECT_EQ(out_.str(), "");
  t_ = t0 + 5.125;
  bar->update(186);
  // Three spaces blank the tail of the previous, longer line ("0.1234" -> "0.1").
  EXPECT_EQ(out_.str(), "\rtrain [=>        ] 186/1000 18% 48.6 it/s ETA 00:17 loss 0.1   ");
}

// 1000 updates 10 ms apart (10 s): about 10 draws a second -> about 100 draws, never one per update.
// The last step always draws (full bar); finish() draws the final line and ends it with '\n'.
TEST_F(ProgressTest, TtyThrottlesAndFinishEndsLine) {
  auto bar = make(tty(1000, 20));
  const double t0 = t_;
  for (int step = 1; step <= 1000; ++step) {
    t_ = t0 + step / 100.0;
    bar->update(step);
  }
  const std::string s = out_.str();
  const auto draws = std::count(s.begin(), s.end(), '\r');
  EXPECT_GE(draws, 90);
  EXPECT_LE(draws, 110);
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_NE(s.rfind("[====================] 1000/1000 100%"), std::string::npos);
  bar->finish();
  const std::string all = out_.str();
  ASSERT_EQ(all.back(), '\n');
  const std::string last = all.substr(all.rfind('\r'));
  // 1000 steps in 10 s: 100 it/s; elapsed 00:10.
  EXPECT_EQ(last.substr(0, last.find_last_not_of(" \n") + 1),
            "\rtrain [====================] 1000/1000 100% 100.0 it/s in 00:10");
}

// A shorter line blanks the tail of the longer one it overwrites.
TEST_F(ProgressTest, TtyShorterLineIsPadded) {
  auto bar = make(tty(0, 10, ""));
  t_ += 1;
  bar->update(1, {{"a_long_metric_name", 1.0}});
  const size_t first_len = out_.str().size() - 1;  // without '\r'
  out_.str("");
  t_ += 1;
  bar->update(2, {{"x", 1.0}});
  EXPECT_EQ(out_.str().size() - 1, first_len);
  EXPECT_EQ(out_.str().substr(0, 18), "\r2 it 1.0 it/s x 1");
}

// A run resumed at step 500 of 1000: 100 steps in 10 s = 10 it/s, ETA 400/10 = 40 s. Counting from
// step 0 would claim 60 it/s.
TEST_F(ProgressTest, ResumedRunCountsFromInitial) {
  auto o = plain(1000);
  o.initial = 500;
  auto bar = make(o);
  t_ += 10;
  bar->update(600);
  EXPECT_EQ(lines(), std::vector<std::string>{"train step 600/1000 (60%) 10.0 it/s ETA 40s"});
}

// Slow steps read as seconds per step; long ETAs get hours: 1 step in 20 s = 0.05 it/s -> "20.00 s/it";
// ETA 9 steps * 20 s = 180 s -> "3m00s" (plain). 1e6 steps at 10 it/s -> ETA 99990 s = 27h46m30s.
TEST_F(ProgressTest, SlowStepsAndLongEta) {
  auto o = plain(10, "");
  o.plain_interval_s = 1;
  auto bar = make(o);
  t_ += 20;
  bar->update(1);
  EXPECT_EQ(lines().back(), "step 1/10 (10%) 20.00 s/it ETA 3m00s");

  auto big = make(plain(1000000, ""));
  t_ += 10;
  big->update(100);
  EXPECT_EQ(lines().back(), "step 100/1000000 (0%) 10.0 it/s ETA 27h46m30s");

  std::ostringstream term;
  ProgressBar tbar(tty(1000000, 4, ""), term);
  tbar.set_clock_for_test([&] { return t_; });
  t_ += 10;
  tbar.update(100);
  EXPECT_EQ(term.str(), "\r[>   ] 100/1000000 0% 10.0 it/s ETA 27:46:30");
}

// Destroying an unfinished TTY bar ends the line, so later log output starts on a new line.
TEST_F(ProgressTest, TtyDestructorEndsLine) {
  {
    auto bar = make(tty(10, 5));
    t_ += 1;
    bar->update(3);
  }
  EXPECT_EQ(out_.str().back(), '\n');
}

}  // namespace
