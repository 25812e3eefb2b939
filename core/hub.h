#pragma once
// The hub: one greenlet per thread that runs the event loop (gevent's Hub).
//
// Each loop iteration, in this order (SEMANTICS F4):
//   1. callbacks, FIFO, including those queued while the batch runs, the
//      batch cut after the switch interval (5 ms, F6) so timers and I/O are
//      not starved by sleep(0) loops;
//   2. expired timers, by (deadline, creation order) (F5);
//   3. fd readiness from the poller;
//   4. idle callbacks, only when nothing else is pending (HUB-5).
// Blocking means parking on a Waiter and switching to the hub; only the hub
// resumes waiters. When the loop has nothing left that could wake anyone
// (no callbacks, referenced timers or fds), the hub raises LoopExit in the
// main greenlet (HUB-2) instead of hanging.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/deadline.h"
#include "fern/core/greenlet.h"
#include "fern/core/poller.h"
#include "fern/core/timer_heap.h"

namespace fern {

// Raised in the main greenlet when it blocks and nothing can ever wake it
// (gevent's LoopExit, "This operation would block forever").
class LoopExit : public std::runtime_error {
 public:
  LoopExit() : std::runtime_error("fern: this operation would block forever (LoopExit)") {}
};

// A blocking call made while running in the hub itself, e.g. in a callback
// (gevent's BlockingSwitchOutError, HUB-9).
class BlockingSwitchOutError : public std::logic_error {
 public:
  BlockingSwitchOutError()
      : std::logic_error("fern: impossible to call a blocking function in the event loop callback") {}
};

// A greenlet parked in a hub wait was switched into by something other than
// its waiter (gevent's InvalidSwitchError, GV-21).
class InvalidSwitchError : public std::logic_error {
 public:
  explicit InvalidSwitchError(const std::string& what) : std::logic_error(what) {}
};

// An intrusive callback: queued without allocation; `fn` gets the node.
struct Callback {
  Callback* next = nullptr;
  void (*fn)(Callback*) = nullptr;
  bool queued = false;
};

// Something the hub must end when it is destroyed (a started task): an
// intrusive list node; fn unwinds it (throws GreenletExit into it).
struct ExitHook {
  ExitHook* prev = nullptr;
  ExitHook* next = nullptr;
  void (*fn)(ExitHook*) = nullptr;
};

// An intrusive timer on the hub's heap.
struct Timer : TimerNode {
  void (*fn)(Timer*) = nullptr;
  bool ref = true;  // keeps the loop alive while armed (HUB-7)
};

// One-shot wake-up for one greenlet (gevent's Waiter, HUB-10). The waiting
// greenlet calls wait(); the hub (a callback, timer or fd event) calls
// wake() or wake_error(). A wake before wait() is kept: wait() returns at once.
class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Blocks: switches to the hub until woken; rethrows a wake_error, and
  // anything thrown into the greenlet meanwhile (kill, Timeout).
  void wait();
  // From the hub only: resume the waiter (or mark it ready).
  void wake();
  void wake_error(std::exception_ptr error);
  bool ready() const noexcept { return ready_; }
  bool waiting() const noexcept { return waiting_ != nullptr; }

 private:
  detail::GreenletImpl* waiting_ = nullptr;  // the parked greenlet (alive while parked)
  std::exception_ptr error_;
  bool ready_ = false;
};

class Hub {
 public:
  // This thread's hub, created on first use; its parent is the thread's
  // main greenlet (HUB-1).
  static Hub& current();
  // The hub if one exists on this thread, else nullptr.
  static Hub* current_if_exists() noexcept;
  // Destroys this thread's hub (its suspended loop is unwound); the next
  // current() makes a new one (HUB-14). Call from outside the hub.
  static void destroy_current() noexcept;

  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;
  ~Hub();

  const Greenlet& greenlet() const noexcept { return greenlet_; }
  bool in_hub() const noexcept;  // is the hub the running greenlet?

  // Queues cb to run in the hub on the next callback batch (FIFO). No switch.
  void schedule(Callback* cb) noexcept;
  // Removes a queued callback (O(n) in the queue; used on cancellation).
  void unschedule(Callback* cb) noexcept;
  // gevent's loop.run_callback(f): fn runs in the hub on the next batch,
  // FIFO with everything else scheduled (HUB-4). Allocates one node.
  void run_callback(std::function<void()> fn);

  // Arms / disarms a timer for an absolute monotonic deadline. No allocation.
  void start_timer(Timer* t, Nanos deadline);
  void stop_timer(Timer* t) noexcept;
  // The loop's cached clock (updated every iteration and by update_now()).
  Nanos now() const noexcept { return now_; }
  Nanos update_now() noexcept { return now_ = monotonic_now(); }

  // Blocks the current greenlet: switches to the hub and returns when
  // switched back. Throws BlockingSwitchOutError when called in the hub.
  void switch_to_hub();

  // fd readiness: at most one reader and one writer per fd (IO-2). fn runs
  // in the hub with the readiness, or with 0 and `error` set when the fd was
  // cancelled (closed through fern).
  struct IoWatcher {
    void (*fn)(IoWatcher*, unsigned ready) = nullptr;
    bool ref = true;
    // The fd is closed only through fern::close (a Socket's): when this
    // watcher leaves, the poller keeps the fd's interest, so the next wait
    // costs no syscall; an event that finds no watcher drops it then.
    bool sticky = false;
    std::exception_ptr error;
    struct Cancel : Callback {
      IoWatcher* watcher;
    } cancel;  // used by cancel_fd
  };
  enum class Watch { kStarted, kBusy, kAlwaysReady };
  // Starts watching fd for `direction` (kReadable or kWritable). kBusy: that
  // direction already has a watcher. kAlwaysReady: the fd cannot be polled
  // (a regular file), so it never blocks. Throws std::system_error for an
  // invalid fd (EBADF).
  Watch watch_fd(int fd, unsigned direction, IoWatcher* w);
  void unwatch_fd(int fd, unsigned direction, IoWatcher* w) noexcept;
  // Drops a sticky interest in `direction` that no watcher holds (O(1), one poller call).
  void drop_unwatched(int fd, unsigned direction) noexcept;
  // For an fd being closed: unregisters it and schedules every watcher's fn
  // with `error` set (gevent's cancel_wait, HUB-12, IO-3). No switch.
  void cancel_fd(int fd, std::exception_ptr error) noexcept;

  // Registers / removes a hook run by ~Hub (before the loop is unwound), so
  // that tasks still suspended at thread exit unwind their stacks. O(1).
  void add_exit_hook(ExitHook* h) noexcept;
  void remove_exit_hook(ExitHook* h) noexcept;

  // Idle callbacks run only when nothing else is pending (HUB-5).
  void schedule_idle(Callback* cb) noexcept;

  // Cross-thread: queue fn to run in this hub's thread (any thread may call).
  void run_callback_threadsafe(std::function<void()> fn);
  // Async-signal-safe: wakes the loop (one write(2) to its wake-up fd);
  // the wake-up hook then runs in the hub.
  void wake_from_signal() noexcept;
  // Runs in the hub after every wake-up of the loop (signals use it).
  // One hook per process; set before the signal can arrive.
  static void set_wakeup_hook(void (*hook)(Hub&)) noexcept;

  // Runs the loop until nothing is left to do, or until timeout (seconds,
  // negative = none). True if it ran out of work (HUB-6).
  bool run_until_idle(double timeout_seconds = -1);

  // After fork(), in the child: new poller and wake-up fd.
  void reinit_after_fork();

  // Reports an exception that escaped a hub-run callback or task on stderr
  // the way gevent does (GV-3, HUB-8); `context` names what raised it.
  static void report_error(const std::string& context, std::exception_ptr error) noexcept;

  // Counters for leak checks in tests.
  std::size_t armed_timers() const noexcept { return timers_.size(); }
  std::size_t watched_fds() const noexcept { return watched_fds_; }

 private:
  Hub();
  void loop();
  void run_callbacks();
  void run_timers();
  void poll_io(bool block);
  void run_idle();
  bool has_work() const noexcept;
  void drain_threadsafe();
  void init_wakeup();

  Greenlet greenlet_;
  detail::GreenletImpl* hub_impl_ = nullptr;
  std::unique_ptr<Poller> poller_;
  TimerHeap timers_;
  Nanos now_ = 0;

  Callback* head_ = nullptr;  // FIFO of callbacks
  Callback* tail_ = nullptr;
  ExitHook exit_hooks_;  // sentinel of a circular list
  Callback* idle_head_ = nullptr;
  Callback* idle_tail_ = nullptr;

  std::size_t ref_timers_ = 0;     // armed timers with ref
  std::size_t ref_fds_ = 0;        // fd watchers with ref
  std::size_t watched_fds_ = 0;

  struct FdSlot {
    IoWatcher* reader = nullptr;
    IoWatcher* writer = nullptr;
    unsigned registered = kNone;
  };
  std::vector<FdSlot> fds_;

  // Cross-thread queue and the fd that wakes the poller for it.
  std::mutex remote_mutex_;
  std::vector<std::function<void()>> remote_;
  std::atomic<bool> remote_pending_{false};
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  IoWatcher wake_watcher_;
  friend class Waiter;  // parks by pointer on the hot path
};

namespace detail {

// HUB-8: an error escaping a callback (or a raw greenlet it switched into)
// is reported and the loop goes on. GreenletExit reaching the hub means the
// hub itself is being destroyed: let it unwind the loop.
template <class F>
void run_guarded(const char* what, F&& f) {
  try {
    f();
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    Hub::report_error(what, std::current_exception());
  }
}

// A timer that wakes a Waiter (for per-call timeouts); not armed when
// seconds < 0. Disarms itself on destruction, so every exit path is clean.
struct WakeTimer : Timer {
  Waiter* waiter;
  Hub* hub;
  bool expired = false;
  WakeTimer(Hub& h, Waiter& w, double seconds) : WakeTimer(h, w, Deadline(), 0) {
    // The cached clock is refreshed first, as gevent's sleep and Timeout do (F5).
    if (seconds >= 0) h.start_timer(this, Deadline::after(seconds, h.update_now()).nanos());
  }
  WakeTimer(Hub& h, Waiter& w, Deadline d) : WakeTimer(h, w, d, 0) {
    if (!d.is_never()) h.start_timer(this, d.nanos());
  }
  WakeTimer(Hub& h, Waiter& w, Deadline, int) : waiter(&w), hub(&h) {
    fn = [](Timer* t) {
      auto* self = static_cast<WakeTimer*>(t);
      self->expired = true;
      self->waiter->wake();
    };
  }
  WakeTimer(const WakeTimer&) = delete;
  WakeTimer& operator=(const WakeTimer&) = delete;
  ~WakeTimer() { hub->stop_timer(this); }
};

}  // namespace detail
}  // namespace fern
