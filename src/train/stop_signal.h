// Graceful stop on SIGINT / SIGTERM: while a StopSignal is alive the first signal only sets a flag that
// the training loop polls after each step (it then writes a checkpoint and stops with exit 130); the
// handler restores the default action, so a second Ctrl-C ends the process at once. Destruction
// restores the previous handlers. One instance at a time (signals are process-wide).
#pragma once

namespace mmref::train {

class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  bool requested() const;
  int signal_number() const;  // the signal received, 0 if none
};

}  // namespace mmref::train
