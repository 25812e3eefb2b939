#pragma once
// Event and AsyncResult (gevent.event), built on the hub's one-shot Waiter.
//
// Mapping from gevent:
//   Event()                          Event
//   e.set() / e.clear()              e.set() / e.clear()            (never switch)
//   e.is_set(), e.ready()            e.is_set(), e.ready()
//   e.wait()                         e.wait()
//   e.wait(timeout)                  e.wait_for(d) -> bool, e.wait_until(deadline) -> bool
//   e.linkcount()                    e.waiter_count()
//   AsyncResult()                    AsyncResult<T>                 (AsyncResult<void>: no value)
//   a.set(v), a.set_exception(exc)   a.set(v), a.set_exception(std::exception_ptr)
//   a.get()                          a.get(): the value (a copy; std::move(a).get() moves it out)
//                                    or the exception rethrown
//   a.get(timeout=s) / get(block=False)  a.get_for(d) / a.get_until(deadline) / a.get_nowait():
//                                    fern::Timeout when not ready in time (EV-4)
//   a.get(timeout=Timeout(..))       a.get(timeout_object): that Timeout is raised (GV-10)
//   a.wait(timeout) -> value|None    a.wait() / a.wait_for(d) -> bool ready; then a.value()
//   a.set_exception(None)            rejected: std::invalid_argument
//   a.ready(), successful(), value, exception      same names
//   g.link(a), g.link_value(a), g.link_exception(a)
//                                    g->link(a.as_link()), g->link_value(...), g->link_exception(...),
//                                    or link_to(g, a)  (EV-6)
// Order (SEMANTICS F7, F8, F10): set() schedules one hub callback that wakes
// the greenlets waiting at that moment, FIFO; a wait() while that round is
// pending queues behind it; a set() then clear() before the round runs still
// wakes them and their wait() returns true. One thread: the hub's.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/remote.h"
#include "fern/sync/wait_list.h"

namespace fern {

class Event {
 public:
  Event() noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  // Greenlets still waiting stay parked (until their timeout or a kill).
  ~Event() = default;

  // Sets the flag and schedules waking every current waiter (EV-1). No switch.
  void set() noexcept;
  // Clears the flag; waiters already being notified still wake with true (F10).
  void clear() noexcept { flag_ = false; }
  bool is_set() const noexcept { return flag_; }
  bool ready() const noexcept { return flag_; }

  // True at once if set and no notification round is pending; else blocks
  // (switches to the hub) until a set() wakes it (true, even if cleared since)
  // or the deadline passes (false; a deadline already past does not block).
  // A kill or Timeout thrown in propagates and the greenlet stops waiting
  // (EV-2, TO-10).
  bool wait_until(Deadline deadline);
  void wait() { wait_until(Deadline::never()); }
  bool wait_for(Duration d) { return wait_until(d.from_now()); }

  // Greenlets currently parked in wait() (gevent's linkcount()).
  std::size_t waiter_count() const noexcept { return waiters_.size(); }

  // gevent's rawlink: fn() runs in the hub after the waiters of a set()
  // round (at once, scheduled, when already set), every round until
  // unlinked. For wait()/iwait() over several objects (HUB-13). `holder`
  // (optional) is where the caller keeps the id: zeroed if this Event is
  // destroyed while still linked, so that nothing unlinks from a dead one.
  // An empty fn: std::invalid_argument (EV-8).
  std::size_t rawlink(std::function<void()> fn, std::size_t* holder = nullptr);
  void unlink(std::size_t id) noexcept;

  // A handle other threads set() it through, waking its waiters in this
  // thread's hub (EV-9, sync/remote.h). This thread only; makes its hub.
  Remote<Event> remote() { return Remote<Event>(remote_.acquire(this)); }

 private:
  static Waiter* step(void* self, bool first);
  static void finish(void* self, const bool& gone);

  detail::RemoteHome remote_;
  detail::RawLinks<std::function<void()>> links_;
  detail::WaitList waiters_;
  detail::Notifier notifier_;  // after waiters_: destroyed first
  std::uint64_t round_bound_ = 0;  // the round wakes the waiters with seq below this
  bool flag_ = false;
};

namespace detail {
struct NoValue {};
// The value of a finished task, for AsyncResult's link (throws std::logic_error
// when the task's body does not return R, e.g. a TaskBase subclass).
template <class R>
const R& task_value(TaskBase& task) {
  auto* f = dynamic_cast<ResultTask<R>*>(&task);
  if (!f || !f->value) throw std::logic_error("fern: AsyncResult linked to a task of another result type");
  return *f->value;
}
}  // namespace detail

// A value or an exception that will arrive later (gevent's AsyncResult).
// T may be void. Copying T out in get() leaves it for other waiters.
template <class T>
class AsyncResult {
  using Stored = std::conditional_t<std::is_void_v<T>, detail::NoValue, T>;

 public:
  AsyncResult() = default;
  AsyncResult(const AsyncResult&) = delete;
  AsyncResult& operator=(const AsyncResult&) = delete;
  ~AsyncResult() {
    if (link_self_) *link_self_ = nullptr;
  }

  // Stores the value (overwriting an earlier one, EV-5) and schedules waking
  // every waiter (F7). No switch.
  template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
  void set(U value) {
    value_.emplace(std::move(value));
    error_ = nullptr;
    event_.set();
  }
  template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
  void set() {
    value_.emplace();
    error_ = nullptr;
    event_.set();
  }
  // Stores the exception get() will rethrow and wakes every waiter. No
  // switch. A null exception_ptr is refused: std::invalid_argument.
  void set_exception(std::exception_ptr error) {
    if (!error) throw std::invalid_argument("fern: AsyncResult::set_exception(nullptr): no exception to store");
    value_.reset();
    error_ = std::move(error);
    event_.set();
  }

  bool ready() const noexcept { return event_.is_set(); }
  bool successful() const noexcept { return ready() && !error_; }
  std::exception_ptr exception() const noexcept { return error_; }
  // The value once set (empty before, or when an exception was set).
  template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
  std::optional<U> value() const {
    return value_;
  }

  // The value (a copy), or the stored exception rethrown; blocks (switches
  // to the hub) without limit until ready. std::move(a).get() moves it out.
  T get() & {
    settle(Deadline::never());
    if constexpr (!std::is_void_v<T>) {
      static_assert(std::is_copy_constructible_v<T>,
                    "fern: a move-only value is moved out with std::move(result).get()");
      return *value_;
    }
  }
  T get() && {
    settle(Deadline::never());
    if constexpr (!std::is_void_v<T>) return std::move(*value_);
  }
  // Not ready by the deadline: throws fern::Timeout (EV-4).
  T get_until(Deadline deadline) {
    settle(deadline);
    if constexpr (!std::is_void_v<T>) return *value_;
  }
  T get_for(Duration d) { return get_until(d.from_now()); }
  T get_nowait() { return get_until(Deadline::at(0)); }
  // GV-10: waits under `timeout` (started here unless pending); when it
  // fires, that very Timeout (or its exception) is raised.
  T get(Timeout timeout) {
    if (!ready()) {
      if (!timeout.pending()) timeout.start();
      struct Cancel {
        Timeout& t;
        ~Cancel() { t.cancel(); }
      } cancel{timeout};
      event_.wait();
    }
    return get_nowait();
  }

  // Blocks (switches to the hub) until ready or the deadline passes; true
  // when ready, also when an exception was set. Never throws the stored
  // exception. A result destroyed under a timed waiter times it out.
  bool wait_until(Deadline deadline) {
    // After a wait that timed out this result may be gone (destroyed by
    // another greenlet meanwhile): only the wait's own answer is read.
    return ready() || event_.wait_until(deadline);
  }
  void wait() { wait_until(Deadline::never()); }
  bool wait_for(Duration d) { return wait_until(d.from_now()); }

  // gevent's rawlink: fn() runs in the hub once settled (see Event::rawlink).
  std::size_t rawlink(std::function<void()> fn, std::size_t* holder = nullptr) {
    return event_.rawlink(std::move(fn), holder);
  }
  void unlink(std::size_t id) noexcept { event_.unlink(id); }

  // A handle other threads set() / set_exception() it through, waking its
  // waiters in this thread's hub (EV-9, sync/remote.h). This thread only.
  Remote<AsyncResult> remote() { return Remote<AsyncResult>(remote_.acquire(this)); }

  // A task link that settles this result with the task's outcome: its value,
  // its exception, or GreenletExit for a killed task (EV-6). Runs in the
  // hub, so never switches. A link that fires after this result is gone
  // does nothing (it holds a token the destructor clears, not the result).
  TaskBase::LinkFn as_link() {
    if (!link_self_) link_self_ = std::make_shared<AsyncResult*>(this);
    return [self = link_self_](TaskBase& task) {
      AsyncResult* r = *self;
      if (r) r->settle_from(task);
    };
  }

 private:
  void settle_from(TaskBase& task) {
    if (task.exception()) {
      set_exception(task.exception());
    } else if (task.killed()) {
      set_exception(std::make_exception_ptr(GreenletExit()));
    } else if constexpr (std::is_void_v<T>) {
      set();
    } else {
      set(detail::task_value<T>(task));
    }
  }
  // Woken by set(), this result is alive (the greenlet runs inside its
  // round); timed out, it may be gone, so nothing of it is read then.
  void settle(Deadline deadline) {
    if (!ready() && (deadline.expired(0) || !event_.wait_until(deadline))) throw Timeout();
    if (error_) std::rethrow_exception(error_);
  }

  Event event_;
  std::optional<Stored> value_;
  std::exception_ptr error_;
  detail::RemoteHome remote_;
  std::shared_ptr<AsyncResult*> link_self_;  // as_link's token: null once this is gone
};

// gevent's task.link(async_result): settles `result` when `task` ends.
// Returns the link id for unlink. No switch.
template <class R>
TaskBase::LinkId link_to(const Task<R>& task, AsyncResult<R>& result) {
  return task->link(result.as_link());
}

}  // namespace fern
