#pragma once
// The hub: one greenlet per thread that runs the event loop (gevent's Hub).
//
// Each loop iteration, in this order (SEMANTICS F4):
//   1. callbacks, FIFO, including those queued while the batch runs, the
//      batch cut after the switch interval (5 ms, F6) so timers and I/O are
//      not starved by sleep(0) loops; the cut falls between callbacks, and a
//      primitive's wake-up round (RoundNode) that has begun goes on to its
//      end, as gevent's one notifying callback does;
//   2. expired timers, by (deadline, creation order) (F5);
//   3. fd readiness from the poller, each ready fd's watchers that waited
//      when it was reported, first to last (one that starts meanwhile, a
//      woken greenlet that found nothing and waits again, has its turn in
//      the next iteration, as in libev);
//   4. idle callbacks, only when nothing else is pending (HUB-5).
// Blocking means parking on a Waiter (Hub::park, the one wait) and switching
// to the hub. Inside a callback batch, a parking greenlet (or one whose
// parent is the hub and that ends without an error) may instead do what the
// hub would do next when that is resuming or starting one greenlet (a
// ResumeNode or YieldNode, one step of a RoundNode, a StartNode) and switch to it
// directly: the order is the hub's, with one switch per hand-off instead of
// two. Wakers never switch: they queue nodes. When the loop has nothing
// left that could wake anyone (no callbacks, referenced timers or fds), the
// hub raises LoopExit in the main greenlet (HUB-2) instead of hanging.
// Destroying a hub (Hub::destroy_current, or its thread's end) first runs
// what is queued (spawned tasks start, up to 64 rounds), then unwinds every
// suspended task with GreenletExit, so that no task goes without its
// cleanup; gevent's hub.destroy() drops the queued callbacks instead (so a
// task spawned but never yielded to never runs there: test__issue1686).
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
#include "fern/core/hook.h"
#include "fern/core/poller.h"
#include "fern/core/timer_heap.h"

namespace fern {

// Raised in the main greenlet when it blocks and nothing can ever wake it
// (gevent's LoopExit, "This operation would block forever").
class LoopExit : public std::runtime_error {
 public:
  LoopExit() : std::runtime_error("fern: this operation would block forever (LoopExit)") {}
};

// gevent's SystemExit / KeyboardInterrupt / SystemError (GV-19, HUB-15):
// escaping a task or a loop callback, it is not reported and swallowed like
// other failures but raised in the main greenlet, interrupting whatever main
// is blocked on. Not a std::exception. code() is for the caller's exit status.
class SystemExit {
 public:
  explicit SystemExit(int code = 0) noexcept : code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// A blocking call made while running in the hub itself, e.g. in a callback
// (gevent's BlockingSwitchOutError, HUB-9).
class BlockingSwitchOutError : public std::logic_error {
 public:
  BlockingSwitchOutError()
      : std::logic_error("fern: impossible to call a blocking function in the event loop callback") {}
};

// Hub::run_until_idle (gevent's hub.join(), gevent.wait() with no objects)
// called from a greenlet other than the thread's main one (gevent's
// AssertionError "only possible from the MAIN greenlet", HUB-6): the loop
// reports running out of work to main only, so any other caller would be
// left suspended while main got LoopExit.
class MainGreenletOnlyError : public std::logic_error {
 public:
  MainGreenletOnlyError() : std::logic_error("fern: Hub::run_until_idle is only possible from the main greenlet") {}
};

// Every node below is a detail::Hook: it leaves the hub's queue, timer
// heap or fd table by itself when its owner goes (core/hook.h).

// An intrusive callback: queued without allocation; `fn` gets the node.
struct Callback : detail::Hook {
  void (*fn)(Callback*) = nullptr;
  bool queued() const noexcept { return linked(); }
};

// Something the hub must end when it is destroyed (a started task): a
// callback node (a task uses one node for its start, this and its links, in
// turn), run by ~Hub to unwind it (throw GreenletExit into it).
using ExitHook = Callback;

// An intrusive timer on the hub's heap; ref()/set_ref(): keeps the loop
// alive while armed (HUB-7).
struct Timer : TimerNode {
  void (*fn)(Timer*) = nullptr;
  // Called instead of fn for a timer still armed when its hub is destroyed
  // (a Timeout that holds itself alive lets go).
  void (*orphan)(Timer*) = nullptr;
};

// One-shot wake-up for one greenlet (gevent's Waiter, HUB-10). The waiting
// greenlet parks on it with Hub::park (or wait()); the hub (a callback,
// timer or fd event) calls wake() or wake_error(). A wake before the park
// is kept: the park returns at once.
class Waiter {
 public:
  Waiter() = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Blocks: Hub::current().park(*this, never). Rethrows a wake_error, and
  // anything thrown into the greenlet meanwhile (kill, Timeout).
  void wait();
  // From the hub only: resume the waiter (or mark it ready). A second wake
  // of a ready waiter is ignored. A greenlet parked on it is woken from the
  // hub only (a callback, timer or fd event): from a task or main,
  // InvalidSwitchError and nothing changes (gevent's AssertionError, HUB-10);
  // a waiter nobody waits on yet may be woken from anywhere.
  void wake();
  void wake_error(std::exception_ptr error);
  bool ready() const noexcept { return ready_; }
  bool waiting() const noexcept { return waiting_ != nullptr; }
  // The next wake delivers `error` (rethrown by the park); no switch.
  void set_error(std::exception_ptr error) noexcept { error_ = std::move(error); }

 private:
  friend class Hub;
  detail::GreenletImpl* waiting_ = nullptr;  // the parked greenlet (alive while parked)
  std::exception_ptr error_;
  bool ready_ = false;
};

// A hub's cross-thread door: other threads queue callbacks through it and
// wake the loop. Reference counted, so a thread that still holds it after
// the hub is gone posts into nothing (post() returns false) instead of
// writing to a closed fd. Hub::remote() hands it out.
class RemoteQueue {
 public:
  RemoteQueue();
  ~RemoteQueue();
  RemoteQueue(const RemoteQueue&) = delete;
  RemoteQueue& operator=(const RemoteQueue&) = delete;
  // Any thread: queue fn for the hub's thread and wake its loop. False when
  // the hub is gone (fn is dropped, on the calling thread).
  bool post(std::function<void()> fn);
  // Async-signal-safe: wakes the loop (one write(2)).
  void wake() noexcept;

 private:
  friend class Hub;
  std::vector<std::function<void()>> take();
  void drain_fd() noexcept;
  void close_door();

  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;
  bool open_ = true;
  std::atomic<bool> pending_{false};
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// A callback whose whole job is to resume one parked greenlet (a sleep(0)
// yield). While the hub runs its callback batch, a greenlet that parks
// hands off to the greenlet of such a node at the head of the queue
// directly, one switch instead of two through the hub; any other node, the
// end of the batch or the 5 ms batch cut (F6) goes through the hub, so the
// order is exactly the one the hub itself would run (F3, F4).
struct ResumeNode : Callback {
  Waiter* waiter = nullptr;
  ResumeNode() noexcept { fn = &fire; }
  static void fire(Callback* cb);
};

// A sleep(0)'s node: a ResumeNode whose waiter is inside it, so that a
// hand-off finds the greenlet to resume at a fixed offset from the head of
// the queue (one load) instead of through the waiter's pointer (two
// dependent loads, on the path to the switch). While it is queued, its
// greenlet is parked on its waiter: the node is in the yield's frame and
// leaves the queue with it.
struct YieldNode : Callback {
  Waiter waiter;
  YieldNode() noexcept { fn = &fire; }
  static void fire(Callback* cb);
};

// A callback whose whole job is to start one greenlet (a task's first run).
// It is handed off to like a ResumeNode: a greenlet that parks, or ends,
// with this node at the head of the batch starts that greenlet itself.
// When the hub runs it and the greenlet's stack cannot be had, `failed`
// gets the StackError (the greenlet stays unstarted); without `failed` the
// error goes on to the hub's report.
struct StartNode : Callback {
  detail::GreenletImpl* greenlet = nullptr;  // unstarted, with a run
  void (*failed)(StartNode*, std::exception_ptr) = nullptr;
  StartNode() noexcept { fn = &fire; }
  static void fire(Callback* cb);
};

// A primitive's wake-up round (an Event's set, a Queue's unlock): wakes
// parked greenlets one at a time, each running until it blocks before the
// next is woken (F7-F9). step(owner, first) does the bookkeeping of the next
// wake and returns its waiter, or nullptr once none is left (and keeps
// returning nullptr); finish(owner, gone), when there is one, then runs, and
// may ask for another round (`again`); `gone` turns true if it destroyed the
// owner. Each run of the node does one step and puts the node back at the
// head of the queue, so the round goes on exactly when the woken greenlet
// blocks. A greenlet that parks with the round at the head of a batch
// evaluates the step itself and switches straight to that waiter (one
// switch per hand-off); a finish that may switch (finish_switches) runs in
// the hub. The functions take the owner directly: no call in between.
struct RoundNode : Callback {
  void* owner = nullptr;
  Waiter* (*step)(void* owner, bool first) = nullptr;
  void (*finish)(void* owner, const bool& gone) = nullptr;  // null: nothing to do
  bool (*finish_switches)(const void* owner) = nullptr;     // null: never
  bool* gone = nullptr;   // while finish runs: set if the owner is destroyed
  bool active = false;    // a round began and has not finished
  bool again = false;     // set by finish: schedule another round
  RoundNode() noexcept { fn = &fire; }
  RoundNode(const RoundNode&) = delete;
  RoundNode& operator=(const RoundNode&) = delete;
  ~RoundNode() {
    if (gone) *gone = true;
  }
  Waiter* next() {
    Waiter* w = step(owner, !active);
    active = true;
    return w;
  }
  // Ends the round: finish, then another round if it asked for one.
  void finish_round();
  static void fire(Callback* cb);
};

// Loop statistics: plain counters the hub keeps as it goes (a few adds per
// loop iteration, none per switch); the batch timing costs two clock reads
// per callback batch and is off until Hub::set_batch_timing(true).
struct LoopStats {
  std::uint64_t iterations = 0;  // loop iterations (kept in the hub's LoopMonitor)
  std::uint64_t callbacks = 0;   // callbacks run, direct hand-offs included
  std::uint64_t timers = 0;      // timers fired
  std::uint64_t fd_events = 0;   // fd watchers run
  Nanos max_batch = 0;           // longest callback batch, with batch timing on
};

namespace detail {
// What a watchdog thread samples of a hub (io/watchdog.h): the loop's
// iteration count, and whether the hub is idle (waiting in the poller, or
// out of its loop). Busy with a count that does not move means a greenlet
// has kept the thread from its loop. Relaxed atomics, written by the hub's
// thread only: plain stores on x86-64 and AArch64, once or twice a loop
// iteration, never on a switch. Linked in a process-wide list while the hub
// exists.
struct LoopMonitor {
  std::atomic<std::uint64_t> iterations{0};
  std::atomic<bool> idle{true};
  unsigned long thread = 0;   // pthread_t of the hub's thread
  long tid = 0;               // its arch::thread_id()
  LoopMonitor* prev = nullptr;
  LoopMonitor* next = nullptr;
  void tick() noexcept {
    iterations.store(iterations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void set_idle(bool on) noexcept { idle.store(on, std::memory_order_relaxed); }
};
// Calls fn for every hub's monitor of the process, under the list's lock
// (a hub being created or destroyed waits). Any thread.
void for_each_monitor(void (*fn)(LoopMonitor&, void*), void* ctx);
}  // namespace detail

class Hub {
 public:
  // This thread's hub, created on first use; its parent is the thread's
  // main greenlet (HUB-1).
  static Hub& current() {
    if (__builtin_expect(t_current_ != nullptr, 1)) return *t_current_;
    return create_current();
  }
  // The hub if one exists on this thread, else nullptr.
  static Hub* current_if_exists() noexcept { return t_current_; }
  // Destroys this thread's hub (its suspended loop is unwound); the next
  // current() makes a new one (HUB-14). Call from the thread's main
  // greenlet or another greenlet that is not a task of this hub; from inside
  // the hub or one of its tasks it throws std::logic_error and changes nothing.
  static void destroy_current();

  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;
  ~Hub();

  const Greenlet& greenlet() const noexcept { return greenlet_; }
  bool in_hub() const noexcept;  // is the hub the running greenlet?

  // ---- The one wait ----
  // Blocks the calling greenlet until `w` is woken (true) or the deadline
  // passes (false); a wake before the call returns true at once. Rethrows
  // wake_error's exception and anything thrown in meanwhile (kill,
  // Timeout); its timer is disarmed on every exit. With no deadline and
  // nothing left that could wake it, main gets LoopExit (HUB-2). Throws
  // BlockingSwitchOutError in the hub (HUB-9), InvalidSwitchError when
  // something else switches in (GV-21). Every blocking call in fern is this.
  // `what` and `object` say what it waits on, for dump_greenlets and gdb
  // (a static string such as "Event.wait"; an fd number for "fd ..." waits).
  // Without a deadline it is inline, so that its switch is in the caller's
  // frame: after the switch no return goes through a frame from before it
  // (each such return is mispredicted).
  [[gnu::always_inline]] bool park(Waiter& w, Deadline deadline = Deadline::never(), const char* what = nullptr,
                                   const void* object = nullptr) {
    if (!deadline.is_never() || w.ready_) return park_timed(w, deadline, what, object);
    detail::GreenletImpl* me = checked_current();
    ParkSite site(me, what, object);
    suspend(w, me);
    consume(w);
    return true;
  }

  // sleep(0): a FIFO yield through the callback queue (F3, HUB-3). Inline,
  // with the switch in the caller's frame: after it, no return goes through
  // a frame from before the switch (each such return is mispredicted).
  [[gnu::always_inline]] void yield() {
    YieldNode node;
    callbacks_.push_back(&node);
    suspend<true>(node.waiter, checked_current());
    consume(node.waiter);
  }

  // ---- Callbacks ----
  // Queues cb to run in the hub on the next callback batch (FIFO). No
  // switch. A cb already queued stays where it is (checked: assert in debug).
  void schedule(Callback* cb) noexcept { callbacks_.push_back(cb); }
  // Queues cb before everything else (a round that goes on). No switch.
  void schedule_first(Callback* cb) noexcept { callbacks_.push_front(cb); }
  // Idle callbacks run only when nothing else is pending (HUB-5).
  void schedule_idle(Callback* cb) noexcept;
  // gevent's loop.run_callback(f): fn runs in the hub on the next batch,
  // FIFO with everything else scheduled (HUB-4). Allocates one node. An
  // empty fn: std::invalid_argument (here and for run_callback_threadsafe).
  void run_callback(std::function<void()> fn);

  // ---- Timers ----
  // Arms (or re-arms) t for an absolute deadline. No allocation.
  void start_timer(Timer* t, Deadline deadline);
  // The loop's cached clock (updated every iteration and by update_now()).
  Nanos now() const noexcept { return now_; }
  Nanos update_now() noexcept { return now_ = monotonic_now(); }

  // ---- fds ----
  // A watcher of one fd in one direction: fn runs in the hub with the
  // readiness, or with 0 and `error` set when the fd was cancelled (closed
  // through fern, or found closed behind fern's back). It leaves the hub's
  // fd table, and its queued cancel callback, when destroyed. Any number of
  // watchers may wait on one fd and direction (gevent's io watchers, one per
  // wait_read or select): an event calls each, first come first.
  struct IoWatcher : detail::Hook {
    void (*fn)(IoWatcher*, unsigned ready) = nullptr;
    bool ref = true;
    // The fd is closed only through fern::close (a Socket's): when this
    // watcher leaves, the poller keeps the fd's interest, so the next wait
    // costs no syscall; an event that finds no watcher drops it then. It is
    // the owning object's, one greenlet per direction: a second sticky
    // watcher of the same direction is refused (kBusy, IO-2).
    bool sticky = false;
    int fd = -1;
    unsigned direction = kNone;
    // The hub's batch of fd events that was being run when it started
    // watching (hub-internal): a watcher that starts while its fd's event
    // runs waits for the next one (poll_io).
    std::uint32_t batch = 0;
    std::exception_ptr error;
    struct Cancel : Callback {
      IoWatcher* watcher = nullptr;
    } cancel;  // queued by cancel_fd
  };
  enum class Watch { kStarted, kBusy, kAlwaysReady };
  // Starts watching fd for `direction` (kReadable or kWritable). kBusy: w is
  // sticky and that direction already has a sticky watcher. kAlwaysReady: the fd cannot be polled
  // (a regular file), so it never blocks. Throws std::system_error (EBADF)
  // for an invalid fd, without growing any table.
  Watch watch_fd(int fd, unsigned direction, IoWatcher* w);
  // For an fd being closed: unregisters it and schedules every watcher's fn
  // with `error` set (gevent's cancel_wait, HUB-12, IO-3). No switch.
  void cancel_fd(int fd, std::exception_ptr error) noexcept;
  // Whether watchers wait on fd (cancel_fd would call someone): without
  // any, cancel_fd needs no error, so a close need not allocate one.
  bool fd_has_watchers(int fd) const noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return false;
    const FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
    return slot.reader != nullptr || slot.writer != nullptr;
  }

  // Registers a hook run by ~Hub (before the loop is unwound), so that tasks
  // still suspended at thread exit unwind their stacks. O(1); the hook
  // leaves by itself when destroyed.
  void add_exit_hook(ExitHook* h) noexcept;
  // The exit hook of this hub's tasks (task.cpp adds it with the first task
  // made): it unwinds every task suspended when the hub goes, so that a
  // task needs no hook of its own while it runs.
  ExitHook& tasks_exit_hook() noexcept { return tasks_exit_; }

  // ---- Other threads and signals ----
  // Cross-thread: queue fn to run in this hub's thread (any thread may call).
  void run_callback_threadsafe(std::function<void()> fn) { remote_->post(std::move(fn)); }
  // The door other threads keep; it outlives the hub.
  std::shared_ptr<RemoteQueue> remote() const noexcept { return remote_; }
  // Async-signal-safe: wakes the loop; the wake-up hook then runs in the hub.
  void wake_from_signal() noexcept { remote_->wake(); }
  // Runs in the hub after every wake-up of the loop (signals use it).
  // One hook per process; set before the signal can arrive.
  static void set_wakeup_hook(void (*hook)(Hub&)) noexcept;

  // Runs the loop until nothing is left to do, or until the deadline. True
  // if it ran out of work (HUB-6). From the main greenlet only: elsewhere
  // MainGreenletOnlyError (BlockingSwitchOutError in the hub), nothing run.
  bool run_until_idle(Deadline deadline = Deadline::never());
  bool run_until_idle_for(Duration d) { return run_until_idle(d.from(update_now())); }

  // After fork(), in the child: new poller and wake-up fd. Runs by itself
  // (pthread_atfork) for the forking thread's hub.
  void reinit_after_fork();

  // Raises `error` in the thread's main greenlet at its blocking point: at
  // once when called in the hub, else from the next callback batch (GV-19,
  // SIG-3). No switch when called outside the hub.
  void raise_in_main(std::exception_ptr error);

  // Reports an exception that escaped a hub-run callback or task on stderr
  // the way gevent does (GV-3, HUB-8); `context` names what raised it.
  static void report_error(const std::string& context, std::exception_ptr error) noexcept;

  // The loop's statistics so far (hub's thread; for another thread, read
  // them in a callback posted with run_callback_threadsafe).
  LoopStats stats() const noexcept {
    LoopStats s = stats_;
    s.iterations = monitor_.iterations.load(std::memory_order_relaxed);
    return s;
  }
  // Measures each callback batch's duration into stats().max_batch.
  void set_batch_timing(bool on) noexcept { batch_timing_ = on; }

  // Counters for leak checks in tests.
  std::size_t armed_timers() const noexcept { return timers_.size(); }
  std::size_t watched_fds() const noexcept { return watched_fds_; }
  std::size_t queued_callbacks() const noexcept { return callbacks_.size() + idle_.size(); }

 private:
  Hub();
  void loop();
  void run_callbacks();
  void run_timers();
  void poll_io(bool block);
  void run_idle();
  static Hub& create_current();
  bool batch_continues() noexcept;
  // The greenlet a parking greenlet switches to (see hub.cpp).
  [[gnu::noinline]] detail::GreenletImpl* next_to_run() noexcept;  // out of line: the yield's leaf stays one
  // The same for a yield: a leaf function for its common case (a resume node
  // at the head of a batch that goes on), else next_to_run. Only yields
  // take it: a primitive's wait usually finds a round at the head, and
  // would pay the extra checks for nothing.
  detail::GreenletImpl* next_to_run_yield() noexcept;
  void prefetch_ahead() noexcept;
  detail::GreenletImpl* pick_next() noexcept;  // next_to_run's body
  // For a greenlet that ends without an error: the greenlet to switch to
  // instead of `to`, when `to` is the hub (ThreadState::end_handoff).
  static detail::GreenletImpl* next_at_end(detail::GreenletImpl* to) noexcept;
  [[noreturn]] static void throw_invalid_switch();
  bool park_timed(Waiter& w, Deadline deadline, const char* what, const void* object);  // hub.cpp
  // What a parked greenlet waits on, for dump_greenlets and gdb: two stores,
  // cleared on every way out.
  struct ParkSite {
    detail::GreenletHead* head;
    ParkSite(detail::GreenletImpl* me, const char* what, const void* object) noexcept : head(detail::head_of(me)) {
      head->park_what = what ? what : "wait";
      head->park_object = object;
    }
    ParkSite(const ParkSite&) = delete;
    ParkSite& operator=(const ParkSite&) = delete;
    ~ParkSite() { head->park_what = nullptr; }
  };
  // The running greenlet; BlockingSwitchOutError in the hub (HUB-9).
  detail::GreenletImpl* checked_current() const {
    // The thread's state exists while it has a hub: current_impl (which
    // makes it) only when it has none.
    auto* me = reinterpret_cast<detail::GreenletImpl*>(detail::t_state.current);
    if (__builtin_expect(me == nullptr, 0)) me = detail::current_impl();
    if (__builtin_expect(me == hub_impl_, 0)) throw BlockingSwitchOutError();
    return me;
  }
  // Parks `me` on w and switches to whatever runs next (the hub, or a
  // greenlet handed off to directly); returns when switched back.
  template <bool kYield = false>
  [[gnu::always_inline]] void suspend(Waiter& w, detail::GreenletImpl* me) {
    w.waiting_ = me;
    struct Forget {
      Waiter& w;
      ~Forget() { w.waiting_ = nullptr; }
    } forget{w};
    detail::GreenletImpl* next = kYield ? next_to_run_yield() : next_to_run();
    if (next != me) detail::switch_word(next, 0, nullptr);  // carries nothing
  }
  // After a suspend: the wake it got (GV-21: something else switched in).
  [[gnu::always_inline]] static void consume(Waiter& w) {
    if (__builtin_expect(!w.ready_, 0)) throw_invalid_switch();
    w.ready_ = false;
    if (__builtin_expect(w.error_ != nullptr, 0)) std::rethrow_exception(std::exchange(w.error_, nullptr));
  }
  static inline thread_local Hub* t_current_ = nullptr;
  bool has_work() const noexcept;
  void drain_remote();
  void watch_wakeup();
  void unwatch(IoWatcher* w) noexcept;
  void drop_unwatched(int fd, unsigned direction) noexcept;
  bool registration_stale(int fd) noexcept;
  void revalidate_fds() noexcept;
  std::size_t revalidate_cursor_ = 0;
  static void detach_watcher(detail::HookHolder* self, detail::Hook* h) noexcept;

  Greenlet greenlet_;
  detail::GreenletImpl* hub_impl_ = nullptr;
  std::unique_ptr<Poller> poller_;
  TimerHeap timers_;
  Nanos now_ = 0;

  detail::HookList callbacks_;
  unsigned batch_ran_ = 0;    // callbacks (and direct hand-offs) of this batch
  Nanos batch_start_ = 0;
  bool batch_cut_ = false;    // F6: the rest waits for the next iteration
  // The hub is in a batch callback that has nothing left to do after its
  // switch (a resume, one step of a round, a start), and the batch is not
  // cut: a parking greenlet may do the hub's next step itself. One flag, so
  // that a yield's hand-off tests one byte. run_callbacks clears it before
  // each callback, and those four kinds set it as they begin (enter_hand_off):
  // no test of a callback's kind for the others (a task's links, say).
  bool hand_off_ = false;
  bool in_batch_ = false;  // in run_callbacks: not an idle callback or a timer
  static void enter_hand_off() noexcept {
    Hub* hub = t_current_;
    hub->hand_off_ = hub->in_batch_;
  }
  friend struct ResumeNode;
  friend struct YieldNode;
  friend struct StartNode;
  friend struct RoundNode;
  detail::HookList idle_;
  detail::HookList exit_hooks_;
  ExitHook tasks_exit_;

  std::size_t ref_fds_ = 0;  // fd watchers with ref
  std::size_t watched_fds_ = 0;

  // Each direction's watchers, first to last, threaded through their hooks'
  // links (the first's prev is the last); `owned`: the directions a sticky
  // (owning object's) watcher waits in, one at most each (IO-2).
  struct FdSlot {
    IoWatcher* reader = nullptr;
    IoWatcher* writer = nullptr;
    unsigned registered = kNone;
    unsigned owned = kNone;
  };
  struct FdTable : detail::HookHolder {
    Hub* hub;
  } fd_table_;
  std::vector<FdSlot> fds_;
  IoWatcher* fd_cursor_ = nullptr;  // the next watcher an fd event calls (poll_io)
  std::uint32_t fd_batch_ = 0;      // counts poll_io's batches of events (IoWatcher::batch)

  std::shared_ptr<RemoteQueue> remote_;
  IoWatcher wake_watcher_;

  LoopStats stats_;
  bool batch_timing_ = false;
  detail::LoopMonitor monitor_;
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
  } catch (const SystemExit&) {
    Hub::current().raise_in_main(std::current_exception());
  } catch (...) {
    Hub::report_error(what, std::current_exception());
  }
}

}  // namespace detail
}  // namespace fern
