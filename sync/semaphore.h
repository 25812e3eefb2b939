#pragma once
// Semaphores and locks (gevent.lock), built on the hub's one-shot Waiter.
//
// Mapping from gevent:
//   Semaphore(value=1)               Semaphore(value)   (negative -> std::invalid_argument)
//   s.acquire()                      s.acquire()
//   s.acquire(timeout=s)             s.acquire_for(d) / s.acquire_until(deadline) -> bool
//   s.acquire(blocking=False)        s.try_acquire() -> bool
//   s.release()                      s.release() -> counter    (never switches; at LONG_MAX,
//                                    std::overflow_error instead of wrapping)
//   s.wait() / wait(timeout)         s.wait() / s.wait_for(d) -> counter (waits for a permit,
//                                    takes none; 0 on timeout)
//   s.rawlink(cb) / unlink(cb)       s.rawlink(fn) -> id / s.unlink(id): fn(sem) runs in the hub
//                                    after a release while a permit is free (LK-5)
//   s.counter, s.locked()            s.counter(), s.locked()
//   with s:                          std::lock_guard / std::unique_lock / std::scoped_lock:
//                                    every class here has lock(), unlock(), try_lock()
//   BoundedSemaphore(value)          BoundedSemaphore(value): release past the initial value
//                                    -> SemaphoreReleasedTooManyTimes (ValueError in gevent)
//   DummySemaphore()                 DummySemaphore   (never blocks)
//   Lock / thread.LockType           Lock             (a BoundedSemaphore(1))
//   RLock()                          RLock: re-entrant by its owner; release by anyone else
//                                    -> NotOwnerError (RuntimeError in gevent)
// Order (SEMANTICS F7, F9, LK-3): release() schedules one hub callback that
// hands permits to waiters FIFO while permits last; a running greenlet that
// releases and acquires again without blocking keeps the permit (barging),
// but each waiter is served when its turn comes, so none is starved.
// One thread: the hub's (LK-7's cross-thread use is not supported).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <functional>
#include <string>
#include <vector>

#include "fern/sync/remote.h"
#include "fern/sync/wait_list.h"

namespace fern {

// BoundedSemaphore::release() past the initial value (LK-2).
class SemaphoreReleasedTooManyTimes : public std::logic_error {
 public:
  SemaphoreReleasedTooManyTimes() : std::logic_error("fern: Semaphore released too many times") {}
};

// RLock::release() by a greenlet that does not own it (LK-6).
class NotOwnerError : public std::logic_error {
 public:
  explicit NotOwnerError(const std::string& what) : std::logic_error(what) {}
};

class Semaphore {
 public:
  // `value` permits; negative throws std::invalid_argument (LK-1).
  explicit Semaphore(long value = 1);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  // Greenlets still waiting stay parked (until their timeout or a kill).
  ~Semaphore() = default;

  // Takes a permit: at once if one is free (no switch), else parks FIFO
  // (switches to the hub) until handed one (true) or the deadline passes
  // (false). A kill or Timeout thrown in propagates and no permit is taken
  // (TO-10).
  bool acquire_until(Deadline deadline);
  void acquire() { acquire_until(Deadline::never()); }
  bool acquire_for(Duration d) { return acquire_until(d.from_now()); }
  // Without blocking: false when no permit is free.
  bool try_acquire() noexcept {
    if (counter_ <= 0) return false;
    --counter_;
    return true;
  }
  // Returns a permit and schedules handing it to the first waiter. Never
  // switches. Returns the new counter. BoundedSemaphore: may throw
  // SemaphoreReleasedTooManyTimes.
  long release();
  // Blocks until a permit is free or the deadline passes, taking none;
  // returns the counter (0 on timeout). Waits its turn behind earlier
  // acquirers.
  long wait_until(Deadline deadline);
  long wait() { return wait_until(Deadline::never()); }
  long wait_for(Duration d) { return wait_until(d.from_now()); }

  // LK-5: fn(*this) runs in the hub after each release() that leaves a
  // permit free (and at once, scheduled, if one is free now), until
  // unlinked. Returns an id for unlink; `holder` as for Event::rawlink. An
  // empty fn: std::invalid_argument.
  using LinkFn = std::function<void(Semaphore&)>;
  std::size_t rawlink(LinkFn fn, std::size_t* holder = nullptr);
  void unlink(std::size_t id) noexcept;

  // A handle other threads release() it through, waking its waiters in
  // this thread's hub (LK-7, sync/remote.h). This thread only.
  Remote<Semaphore> remote() { return Remote<Semaphore>(remote_.acquire(this)); }

  long counter() const noexcept { return counter_; }
  bool locked() const noexcept { return counter_ <= 0; }
  std::size_t waiter_count() const noexcept { return waiters_.size(); }

  // Lockable (std::lock_guard, std::unique_lock): acquire() / release() /
  // try_acquire().
  void lock() { acquire(); }
  void unlock() { release(); }
  bool try_lock() { return try_acquire(); }

 protected:
  Semaphore(long value, long bound);

 private:
  struct Node : detail::WaitNode {
    bool acquiring = true;  // false: wait() only watches for a permit
  };
  static Waiter* step(void* self, bool first);
  static void finish(void* self, const bool& gone);
  void run_links();

  detail::RawLinks<LinkFn> links_;
  detail::WaitList waiters_;
  detail::Notifier notifier_;  // after waiters_: destroyed first
  std::uint64_t round_bound_ = 0;  // the round serves the waiters with seq below this
  long counter_;
  long bound_;  // release() beyond this throws; < 0: unbounded
  detail::RemoteHome remote_;
};

// A Semaphore that may not be released above its initial value (LK-2).
class BoundedSemaphore : public Semaphore {
 public:
  // Throws std::invalid_argument for a negative value.
  explicit BoundedSemaphore(long value = 1) : Semaphore(value, value) {}
};

// gevent's Lock: a BoundedSemaphore(1).
class Lock : public BoundedSemaphore {
 public:
  Lock() : BoundedSemaphore(1) {}
};

// A semaphore that never blocks and counts nothing (LK-7).
class DummySemaphore {
 public:
  void acquire() noexcept {}
  bool try_acquire() noexcept { return true; }
  bool acquire_for(Duration) noexcept { return true; }
  bool acquire_until(Deadline) noexcept { return true; }
  long release() noexcept { return 1; }
  long wait() noexcept { return 1; }
  long wait_for(Duration) noexcept { return 1; }
  bool locked() const noexcept { return false; }
  void lock() noexcept {}
  void unlock() noexcept {}
  bool try_lock() noexcept { return true; }
};

// A lock its owner greenlet may acquire again; it is free once released as
// many times as acquired (LK-6). Owner = the greenlet that acquired it.
class RLock {
 public:
  RLock() = default;
  RLock(const RLock&) = delete;
  RLock& operator=(const RLock&) = delete;

  // The owner: count + 1, true, no switch. Anyone else: as
  // Semaphore::acquire_until (blocks FIFO; false on timeout).
  bool acquire_until(Deadline deadline);
  void acquire() { acquire_until(Deadline::never()); }
  bool acquire_for(Duration d) { return acquire_until(d.from_now()); }
  bool try_acquire();
  // Count - 1; frees the lock (waking the first waiter, no switch) at 0.
  // Throws NotOwnerError when the caller is not the owner or it is free.
  void release();
  bool locked() const noexcept { return block_.locked(); }
  // Re-entry count (0: free) and whether the calling greenlet owns it.
  // 64 bits: no program re-enters often enough to wrap it.
  std::uint64_t count() const noexcept { return count_; }
  bool is_owned_by_current() const noexcept;

  void lock() { acquire(); }
  void unlock() { release(); }
  bool try_lock() { return try_acquire(); }

 private:
  bool take(bool acquired);
  Semaphore block_{1};
  unsigned long owner_ = 0;  // Greenlet::id() of the owner while count_ > 0
  std::uint64_t count_ = 0;
};

}  // namespace fern
