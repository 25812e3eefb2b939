// The hub's loop: callbacks -> timers -> fd events -> idle (SEMANTICS F4).
#include "fern/core/hub.h"

#include <cxxabi.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdio>
#include <ctime>

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

void Waiter::wait() {
  if (!ready_) {
    Hub& hub = Hub::current();
    waiting_ = detail::current_impl();
    if (__builtin_expect(waiting_ == hub.hub_impl_, 0)) throw BlockingSwitchOutError();
    struct Forget {
      detail::GreenletImpl*& g;
      ~Forget() { g = nullptr; }
    } forget{waiting_};
    Greenlet::switch_impl(hub.hub_impl_, Value());  // what switch_to_hub does, current known
    if (!ready_) throw InvalidSwitchError("fern: invalid switch into a greenlet waiting in the hub");
  }
  ready_ = false;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

// Runs in the hub. The switch returns when the woken greenlet blocks again;
// it throws only when the hub itself is being destroyed (GreenletExit).
void Waiter::wake() {
  ready_ = true;
  // Cleared first: the woken greenlet may destroy this Waiter before the
  // switch returns here.
  if (detail::GreenletImpl* g = std::exchange(waiting_, nullptr)) Greenlet::switch_impl(g, Value());
}

void Waiter::wake_error(std::exception_ptr error) {
  error_ = std::move(error);
  wake();
}

// ---- Hub ----

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

void Hub::destroy_current() noexcept { t_hub_owner.reset(); }

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

Hub::Hub() : poller_(Poller::create()) {
  exit_hooks_.prev = exit_hooks_.next = &exit_hooks_;
  Greenlet main = Greenlet::current();
  while (main.parent()) main = main.parent();
  greenlet_ = Greenlet([this] { loop(); }, main);
  hub_impl_ = detail::impl_of(greenlet_);
  now_ = monotonic_now();
  init_wakeup();
}

void Hub::add_exit_hook(ExitHook* h) noexcept {
  h->next = &exit_hooks_;
  h->prev = exit_hooks_.prev;
  exit_hooks_.prev->next = h;
  exit_hooks_.prev = h;
}

void Hub::remove_exit_hook(ExitHook* h) noexcept {
  if (!h->next) return;
  h->prev->next = h->next;
  h->next->prev = h->prev;
  h->prev = h->next = nullptr;
}

Hub::~Hub() {
  // Let queued callbacks (links of tasks that just ended, among others) run:
  // yield through the queue until it is empty.
  if (greenlet_.active() && !in_hub()) {
    struct Yield : Callback {
      Waiter waiter;
    };
    for (int rounds = 0; head_ && rounds < 64; ++rounds) {
      Yield y;
      y.fn = [](Callback* cb) { static_cast<Yield*>(cb)->waiter.wake(); };
      schedule(&y);
      try {
        y.waiter.wait();
      } catch (...) {
        unschedule(&y);
        break;
      }
    }
  }
  // Tasks still suspended: unwind them, so their stacks release what they
  // hold (each hook removes itself when its task ends).
  while (exit_hooks_.next != &exit_hooks_) {
    ExitHook* h = exit_hooks_.next;
    remove_exit_hook(h);
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
  if (wake_read_fd_ >= 0) {
    unwatch_fd(wake_read_fd_, kReadable, &wake_watcher_);
    close(wake_read_fd_);
    if (wake_write_fd_ != wake_read_fd_) close(wake_write_fd_);
  }
  t_hub = nullptr;
  // Dropping greenlet_ kills the suspended loop (GreenletExit unwinds it).
}

bool Hub::in_hub() const noexcept { return detail::current_impl() == hub_impl_; }

void Hub::switch_to_hub() {
  if (__builtin_expect(in_hub(), 0)) throw BlockingSwitchOutError();
  Greenlet::switch_impl(hub_impl_, Value());
}

void Hub::schedule(Callback* cb) noexcept {
  cb->next = nullptr;
  cb->queued = true;
  if (tail_) tail_->next = cb;
  else head_ = cb;
  tail_ = cb;
}

void Hub::unschedule(Callback* cb) noexcept {
  if (!cb->queued) return;
  Callback* prev = nullptr;
  for (Callback* c = head_; c; prev = c, c = c->next) {
    if (c != cb) continue;
    if (prev) prev->next = c->next;
    else head_ = c->next;
    if (tail_ == c) tail_ = prev;
    break;
  }
  for (Callback *c = idle_head_, *p = nullptr; c; p = c, c = c->next) {
    if (c != cb) continue;
    if (p) p->next = c->next;
    else idle_head_ = c->next;
    if (idle_tail_ == c) idle_tail_ = p;
    break;
  }
  cb->queued = false;
}

void Hub::schedule_idle(Callback* cb) noexcept {
  cb->next = nullptr;
  cb->queued = true;
  if (idle_tail_) idle_tail_->next = cb;
  else idle_head_ = cb;
  idle_tail_ = cb;
}

void Hub::start_timer(Timer* t, Nanos deadline) {
  stop_timer(t);
  t->deadline = deadline;
  timers_.push(t);
  if (t->ref) ++ref_timers_;
}

void Hub::stop_timer(Timer* t) noexcept {
  if (!t->queued()) return;
  timers_.remove(t);
  if (t->ref) --ref_timers_;
}

bool Hub::has_work() const noexcept {
  return head_ || idle_head_ || ref_timers_ || ref_fds_ ||
         remote_pending_.load(std::memory_order_acquire);
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
      poll_io(!head_ && !idle_head_ && (ref_timers_ || ref_fds_));
      if (!head_) run_idle();
    }
    main.throw_in(std::make_exception_ptr(LoopExit()));
  }
}


void Hub::run_callbacks() {
  Nanos start = 0;
  unsigned ran = 0;
  while (Callback* cb = head_) {
    head_ = cb->next;
    if (!head_) tail_ = nullptr;
    cb->queued = false;
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
    if (t->ref) --ref_timers_;
    detail::run_guarded("a timer", [t] { t->fn(t); });
  }
}

void Hub::poll_io(bool block) {
  Nanos timeout = 0;
  if (block) {
    if (TimerNode* next = timers_.top()) {
      timeout = next->deadline - monotonic_now();
      if (timeout < 0) timeout = 0;
    } else {
      timeout = -1;
    }
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
      else drop_unwatched(ev.fd, direction);  // a sticky interest nobody waits on now
    }
  }
}

void Hub::run_idle() {
  Callback* batch = idle_head_;
  idle_head_ = idle_tail_ = nullptr;
  while (Callback* cb = batch) {
    batch = cb->next;
    cb->queued = false;
    detail::run_guarded("an idle callback", [cb] { cb->fn(cb); });
  }
}

bool Hub::run_until_idle(double timeout_seconds) {
  struct Deadline : Timer {
    Greenlet waiter;
    bool expired = false;
  } deadline;
  if (timeout_seconds >= 0) {
    deadline.ref = false;  // the deadline itself is no reason to keep running
    deadline.waiter = Greenlet::current();
    deadline.fn = [](Timer* t) {
      auto* d = static_cast<Deadline*>(t);
      d->expired = true;
      d->waiter.switch_to();
    };
    start_timer(&deadline, update_now() + seconds_to_nanos(timeout_seconds));
  }
  try {
    switch_to_hub();
  } catch (const LoopExit&) {
  }
  stop_timer(&deadline);
  return !deadline.expired;
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
