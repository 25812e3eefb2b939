// The hub's loop: callbacks -> timers -> fd events -> idle (SEMANTICS F4).
#include "fern/core/hub.h"

#include <cxxabi.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>

namespace fern {
namespace {

constexpr Nanos kSwitchInterval = 5'000'000;  // gevent's getswitchinterval(): 5 ms
constexpr int kMaxEvents = 256;

thread_local Hub* t_hub = nullptr;

std::string demangled(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? d : name;
  std::free(d);
  return out;
}

thread_local std::unique_ptr<Hub> t_hub_owner;

}  // namespace

// ---- Waiter ----

void Waiter::wait() { Hub::current().park(*this); }

// Runs in the hub. The switch returns when the woken greenlet blocks again;
// it throws only when the hub itself is being destroyed (GreenletExit).
void Waiter::wake() {
  if (ready_) return;  // one-shot: a second wake (a timer racing an event) is ignored
  ready_ = true;
  // Cleared first: the woken greenlet may destroy this Waiter before the
  // switch returns here.
  if (detail::GreenletImpl* g = std::exchange(waiting_, nullptr)) Greenlet::switch_impl(g, Value());
}

void Waiter::wake_error(std::exception_ptr error) {
  if (ready_) return;
  error_ = std::move(error);
  wake();
}

// ---- Hub ----

namespace {

// The deadline of one park: wakes the waiter when it passes.
struct Expiry : Timer {
  Waiter* waiter;
  bool fired = false;
  explicit Expiry(Waiter& w) : waiter(&w) {
    fn = [](Timer* t) {
      auto* self = static_cast<Expiry*>(t);
      self->fired = true;
      self->waiter->wake();
    };
  }
};

std::once_flag g_atfork_once;

}  // namespace

bool Hub::park(Waiter& w, Deadline deadline) {
  bool expired = false;
  if (!w.ready_) {
    detail::GreenletImpl* me = detail::current_impl();
    if (__builtin_expect(me == hub_impl_, 0)) throw BlockingSwitchOutError();
    w.waiting_ = me;
    struct Forget {
      Waiter& w;
      ~Forget() { w.waiting_ = nullptr; }
    } forget{w};
    if (deadline.is_never()) {
      // No timer at all: the hub can tell when nothing will wake us (LoopExit).
      Greenlet::switch_impl(hub_impl_, Value());
    } else {
      Expiry timer(w);  // disarmed by its destructor on every exit
      start_timer(&timer, deadline);
      Greenlet::switch_impl(hub_impl_, Value());
      expired = timer.fired;
    }
    if (!w.ready_) throw InvalidSwitchError("fern: invalid switch into a greenlet waiting in the hub");
  }
  w.ready_ = false;
  if (w.error_) std::rethrow_exception(std::exchange(w.error_, nullptr));
  return !expired;
}

Hub& Hub::current() {
  if (__builtin_expect(t_hub == nullptr, 0)) {
    // Build the hub (and with it the thread's greenlet state) before the
    // owner is first touched: thread_locals die in reverse order of first
    // use, and the hub must go before the greenlet state it needs.
    Hub* hub = new Hub;
    t_hub_owner.reset(hub);
    t_hub = hub;
  }
  return *t_hub;
}

Hub* Hub::current_if_exists() noexcept { return t_hub; }

void Hub::destroy_current() {
  Hub* hub = t_hub;
  if (!hub) return;
  // From inside the hub or one of its tasks the loop we would unwind is
  // our own caller: refuse clearly instead of leaving a broken thread.
  for (Greenlet g = Greenlet::current(); g; g = g.parent()) {
    if (g == hub->greenlet_)
      throw std::logic_error("fern: Hub::destroy_current() called from inside the hub or one of its tasks; "
                             "call it from the thread's main greenlet");
  }
  t_hub_owner.reset();
}

void Hub::run_callback(std::function<void()> fn) {
  struct Owned : Callback {
    std::function<void()> fn;
  };
  auto* node = new Owned;
  node->fn = std::move(fn);
  static_cast<Callback*>(node)->fn = [](Callback* cb) {
    std::unique_ptr<Owned> self(static_cast<Owned*>(cb));
    detail::run_guarded("a callback", [&] { self->fn(); });  // HUB-8: the loop goes on
  };
  schedule(node);
}

Hub::Hub() : poller_(Poller::create()), remote_(std::make_shared<RemoteQueue>()) {
  fd_table_.hub = this;
  fd_table_.detach = &Hub::detach_watcher;
  Greenlet main = Greenlet::current();
  while (main.parent()) main = main.parent();
  greenlet_ = Greenlet([this] { loop(); }, main);
  hub_impl_ = detail::impl_of(greenlet_);
  now_ = monotonic_now();
  watch_wakeup();
  // A child of fork() must not share the parent's epoll set or wake-up fd:
  // the forking thread's hub is renewed in the child before fork returns.
  std::call_once(g_atfork_once, [] {
    pthread_atfork(nullptr, nullptr, [] {
      if (t_hub) t_hub->reinit_after_fork();
    });
  });
}

void Hub::add_exit_hook(ExitHook* h) noexcept { exit_hooks_.push_back(h); }

Hub::~Hub() {
  // Let queued callbacks (links of tasks that just ended, among others) run:
  // yield through the queue until it is empty.
  if (greenlet_.active() && !in_hub()) {
    for (int rounds = 0; !callbacks_.empty() && rounds < 64; ++rounds) {
      struct Yield : Callback {
        Waiter waiter;
      } y;
      y.fn = [](Callback* cb) { static_cast<Yield*>(cb)->waiter.wake(); };
      schedule(&y);
      try {
        y.waiter.wait();
      } catch (...) {
        break;
      }
    }
  }
  // Tasks still suspended: unwind them, so their stacks release what they
  // hold (each hook leaves the list when its task ends).
  while (auto* h = static_cast<ExitHook*>(exit_hooks_.pop_front())) {
    try {
      h->fn(h);
    } catch (...) {
    }
  }
  if (greenlet_.active() && !in_hub()) {
    try {
      greenlet_.throw_in();  // unwinds the suspended loop
    } catch (...) {
    }
  }
  // Timers still armed will never fire: owners that keep themselves alive
  // for their timer (a dropped Timeout) are told.
  while (auto* t = static_cast<Timer*>(timers_.top())) {
    t->unlink();
    if (t->orphan) t->orphan(t);
  }
  wake_watcher_.unlink();
  remote_->close_door();
  t_hub = nullptr;
  // Dropping greenlet_ kills the suspended loop (GreenletExit unwinds it).
}

bool Hub::in_hub() const noexcept { return detail::current_impl() == hub_impl_; }

void Hub::schedule(Callback* cb) noexcept { callbacks_.push_back(cb); }

void Hub::schedule_idle(Callback* cb) noexcept { idle_.push_back(cb); }

void Hub::start_timer(Timer* t, Deadline deadline) {
  t->deadline = deadline.nanos();
  timers_.push(t);
}

bool Hub::has_work() const noexcept {
  return !callbacks_.empty() || !idle_.empty() || timers_.ref_count() || ref_fds_ ||
         remote_->pending_.load(std::memory_order_acquire);
}

// The hub greenlet's body. When nothing can wake anyone, LoopExit goes to
// the main greenlet; if main blocks again later, the loop carries on.
void Hub::loop() {
  Greenlet main = greenlet_.parent();
  for (;;) {
    while (has_work()) {
      run_callbacks();
      run_timers();
      // Block in the poller only while something referenced can still fire.
      poll_io(callbacks_.empty() && idle_.empty() && (timers_.ref_count() || ref_fds_));
      if (callbacks_.empty()) run_idle();
    }
    main.throw_in(std::make_exception_ptr(LoopExit()));
  }
}

void Hub::run_callbacks() {
  Nanos start = 0;
  unsigned ran = 0;
  while (auto* cb = static_cast<Callback*>(callbacks_.pop_front())) {
    detail::run_guarded("a callback", [cb] { cb->fn(cb); });
    // F6: cut the batch after the switch interval so timers get their turn.
    if ((++ran & 63) == 0) {
      Nanos t = monotonic_now();
      if (start == 0) start = t;
      else if (t - start > kSwitchInterval) break;
    }
  }
}

void Hub::run_timers() {
  Nanos now = update_now();
  // Fire at most the timers queued now: one re-armed for "now" waits a turn.
  for (std::size_t budget = timers_.size(); budget; --budget) {
    auto* t = static_cast<Timer*>(timers_.pop_expired(now));
    if (!t) break;
    detail::run_guarded("a timer", [t] { t->fn(t); });
  }
}

void Hub::poll_io(bool block) {
  Nanos timeout = 0;
  if (block) {
    TimerNode* next = timers_.top();
    Nanos left = next ? Deadline::at(next->deadline).remaining(monotonic_now()) : Deadline::kNever;
    timeout = left == Deadline::kNever ? -1 : left;
  }
  PollEvent events[kMaxEvents];
  int n = poller_->wait(timeout, events, kMaxEvents);
  if (n > 0) update_now();
  for (int i = 0; i < n; ++i) {
    const PollEvent& ev = events[i];
    for (unsigned direction : {unsigned{kReadable}, unsigned{kWritable}}) {
      if (!(ev.ready & direction) || !poller_->is_current(ev)) continue;
      FdSlot& slot = fds_[static_cast<std::size_t>(ev.fd)];
      IoWatcher* w = direction == kReadable ? slot.reader : slot.writer;
      if (w) detail::run_guarded("an fd watcher", [w, &ev] { w->fn(w, ev.ready); });
    }
  }
}

// The batch is moved to a list of its own: a node whose owner goes while
// the batch runs (a waiter killed by an earlier idle callback) leaves it.
void Hub::run_idle() {
  detail::HookList batch;
  batch.splice_back(idle_);
  while (auto* cb = static_cast<Callback*>(batch.pop_front())) {
    detail::run_guarded("an idle callback", [cb] { cb->fn(cb); });
  }
}

bool Hub::run_until_idle(Deadline deadline) {
  struct Stop : Timer {
    Greenlet waiter;
    bool expired = false;
  } stop;
  if (!deadline.is_never()) {
    stop.set_ref(false);  // the deadline itself is no reason to keep running
    stop.waiter = Greenlet::current();
    stop.fn = [](Timer* t) {
      auto* d = static_cast<Stop*>(t);
      d->expired = true;
      d->waiter.switch_to();
    };
    start_timer(&stop, deadline);
  }
  if (in_hub()) throw BlockingSwitchOutError();
  try {
    Greenlet::switch_impl(hub_impl_, Value());
  } catch (const LoopExit&) {
  }
  return !stop.expired;
}

void Hub::raise_in_main(std::exception_ptr error) {
  if (in_hub()) {
    Greenlet main = greenlet_.parent();
    main.throw_in(std::move(error));  // returns when main blocks again
    return;
  }
  run_callback([this, error] { raise_in_main(error); });
}

void Hub::report_error(const std::string& context, std::exception_ptr error) noexcept {
  std::string type = "unknown exception", what;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    type = demangled(typeid(e).name());
    what = e.what();
  } catch (const GreenletExit&) {
    type = "fern::GreenletExit";
  } catch (...) {
    if (const std::type_info* t = abi::__cxa_current_exception_type()) type = demangled(t->name());
  }
  char stamp[32] = "";
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  if (gmtime_r(&now, &tm)) std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s: %s\n%s %s failed with %s\n\n", type.c_str(), what.c_str(), stamp,
               context.c_str(), type.c_str());
}

}  // namespace fern
