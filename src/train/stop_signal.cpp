// Graceful stop on SIGINT / SIGTERM; see stop_signal.h.
#include "train/stop_signal.h"

#include <atomic>
#include <csignal>

namespace mmref::train {
namespace {

std::atomic<int> g_signal{0};  // async-signal-safe: lock-free atomic int
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int sig) {
  g_signal.store(sig);
  std::signal(sig, SIG_DFL);  // a second signal terminates at once
}

}  // namespace

StopSignal::StopSignal() {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignal::~StopSignal() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool StopSignal::requested() const { return g_signal.load() != 0; }
int StopSignal::signal_number() const { return g_signal.load(); }

}  // namespace mmref::train
