#pragma once
// A blocking watchdog (gevent's monitor thread, SEMANTICS HUB-16): a thread
// that notices when a hub has not come back to its loop for longer than a
// threshold, that is when one greenlet has run (or a blocking call has
// stalled the thread) without switching, and reports it once per incident:
// the hub's thread, the running greenlet (id, task) and its backtrace.
//
// Off unless a Watchdog exists. The switch path never pays for it: each hub
// bumps a counter when it enters and leaves its poller wait (detail::
// LoopMonitor), on or off; the watchdog samples those counters every quarter
// threshold. The backtrace is taken on the blocked thread itself: the
// watchdog sends it a signal (SIGURG by default, as Go's runtime does), whose
// handler runs on whatever stack that thread is on (the greenlet's), calls
// backtrace() (made safe to call there by a first call when the watchdog
// starts, which loads the unwinder) into a preallocated slot, and posts a
// semaphore; the watchdog thread does all formatting. A program with its own
// handler for that signal keeps it: ours passes the signals it did not ask
// for on. Program names in the report need symbols: link with -rdynamic, or
// resolve the addresses with addr2line.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "fern/core/deadline.h"

namespace fern {

// One incident: a hub that did not run its loop for `blocked_for` seconds.
struct BlockingReport {
  long thread = 0;                 // arch::thread_id() of the hub's thread (gdb's LWP)
  double blocked_for = 0;          // seconds, when reported
  bool captured = false;           // the thread answered the signal: the fields below are set
  unsigned long greenlet_id = 0;   // the running greenlet (0: the thread's main greenlet)
  const void* task = nullptr;      // the fern::TaskBase running in it, if any (only for identity)
  unsigned long task_ident = 0;    // its minimal_ident(), if it was given one (TaskBase::minimal_ident_if_given)
  std::vector<void*> frames;       // return addresses, innermost first (the handler's own dropped)
};

struct WatchdogOptions {
  Duration threshold = 0.1;        // gevent's max_blocking_time
  std::FILE* out = stderr;         // where reports are printed; null: not printed
  int signal = SIGURG;             // sent to a blocked thread for its backtrace; 0: no backtrace
  // Called on the watchdog thread for every report (after printing).
  std::function<void(const BlockingReport&)> on_report;
};

class Watchdog {
 public:
  // Starts the watchdog thread. One Watchdog at a time in a process: a
  // second one throws std::logic_error. Any thread.
  explicit Watchdog(WatchdogOptions options = {});
  // Stops and joins the thread; restores the signal's previous handler.
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void run();

  WatchdogOptions options_;
  struct Shared;
  Shared* shared_;
  std::thread thread_;
};

}  // namespace fern
