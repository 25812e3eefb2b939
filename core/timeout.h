#pragma once
// gevent's Timeout: a timer that, when it fires, raises an exception in the
// greenlet that started it, at the point where that greenlet is blocked.
//
// Mapping from gevent:
//   Timeout(None)                  Timeout() (never fires)
//   Timeout(seconds, exception)    Timeout(d) / Timeout(d, exc) / Timeout::silent(d)
//                                  (d: double seconds or a std::chrono duration)
//   t.start(), t.cancel()          t.start(), t.cancel()   (t.close() too)
//   Timeout.start_new(s, exc)      Timeout::start_new(s) / start_new(s, exc)
//   with Timeout(s):               TimeoutScope scope(s);  (starts now, cancels at scope exit)
//   with Timeout(s, False):        bool done = Timeout::silently(s, fn);
//   with_timeout(s, f, timeout_value=v)   with_timeout(s, f, v)
//   except Timeout as t: t is mine catch (const Timeout& t) { if (t == mine) ... }
// A Timeout is a handle: copies share one timer, and the exception thrown by
// default is a copy, so it compares equal to the Timeout that fired (TO-4,
// TO-5). Timeout does not derive from std::exception (TO-1). An armed
// Timeout keeps itself alive: Timeout::start_new(s) with the handle dropped
// still fires, as in gevent; cancel() (or TimeoutScope) disarms it. NaN and
// negative durations fire at once, +inf and huge ones never (core/deadline.h).
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "fern/core/deadline.h"

namespace fern {

namespace detail {
struct TimeoutState;
struct TimeoutAccess;
}

// start() on a Timeout that is already pending (gevent's AssertionError, TO-3).
class TimeoutPendingError : public std::logic_error {
 public:
  TimeoutPendingError() : std::logic_error("fern: Timeout.start() on a pending timeout") {}
};

class Timeout {
 public:
  // A Timeout that never fires (Timeout(None), TO-6).
  Timeout();
  // Copies share one timer. There is no move: moving copies, so a
  // moved-from Timeout still names its timer (never an empty handle).
  Timeout(const Timeout&) = default;
  Timeout& operator=(const Timeout&) = default;
  // Raises this Timeout itself when it fires, `d` after start().
  explicit Timeout(Duration d);
  // Raises `exception` instead (a class in gevent; here any exception object).
  Timeout(Duration d, std::exception_ptr exception);
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr> &&
                                              !std::is_arithmetic_v<std::decay_t<E>>>>
  Timeout(Duration d, E&& exception) : Timeout(d, std::make_exception_ptr(std::forward<E>(exception))) {}
  // Raises a Timeout with a message: str() ends with ": message" (TO-4, TO-7).
  static Timeout with_message(Duration d, std::string message);
  // gevent's exception=False: silently() swallows it at its own scope.
  static Timeout silent(Duration d);

  // Arms the timer for the calling greenlet; TimeoutPendingError if pending.
  // Must be called in a greenlet of a thread with a hub (created on demand).
  Timeout& start();
  // Creates and starts one (Timeout.start_new).
  static Timeout start_new(Duration d);
  static Timeout start_new(Duration d, std::exception_ptr exception);
  // Disarms; a no-op when not pending. close() is the same. Its timer is in
  // the hub of the thread that started it: from another thread, throws
  // CrossThreadError (and disarms nothing).
  void cancel();
  void close() { cancel(); }
  bool pending() const noexcept;
  // The duration in seconds (+inf for a Timeout that never fires).
  double seconds() const noexcept;
  bool is_silent() const noexcept;

  // "1 second", "2 seconds", "0.5 seconds (silent)", "1 second: msg", "" (TO-7).
  std::string str() const;

  // Runs fn under a silent timeout: true if fn finished, false if the
  // timeout cut it short (gevent's `with Timeout(s, False)`).
  template <class F>
  static bool silently(Duration d, F&& fn) {
    Timeout t = silent(d);
    t.start();
    try {
      std::forward<F>(fn)();
    } catch (const Timeout& fired) {
      t.cancel();
      if (fired != t) throw;
      return false;
    } catch (...) {
      t.cancel();
      throw;
    }
    t.cancel();
    return true;
  }

  friend bool operator==(const Timeout& a, const Timeout& b) noexcept { return a.state_ == b.state_; }
  friend bool operator!=(const Timeout& a, const Timeout& b) noexcept { return a.state_ != b.state_; }

 private:
  friend struct detail::TimeoutAccess;
  std::shared_ptr<detail::TimeoutState> state_;
};

// `with Timeout(seconds):` -- starts on construction (unless given a pending
// Timeout), cancels on destruction.
class TimeoutScope {
 public:
  explicit TimeoutScope(Duration d) : timeout_(d) { timeout_.start(); }
  explicit TimeoutScope(Timeout timeout) : timeout_(std::move(timeout)) {
    if (!timeout_.pending()) timeout_.start();
  }
  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;
  ~TimeoutScope() { timeout_.cancel(); }
  const Timeout& timeout() const noexcept { return timeout_; }

 private:
  Timeout timeout_;
};

// Calls fn; if `seconds` pass first, returns timeout_value instead (TO-8).
// Another Timeout (an outer one) passes through untouched.
template <class F, class V>
auto with_timeout(Duration d, F&& fn, V&& timeout_value) -> decltype(fn()) {
  Timeout t(d);
  t.start();
  try {
    auto result = std::forward<F>(fn)();
    t.cancel();
    return result;
  } catch (const Timeout& fired) {
    t.cancel();
    if (fired != t) throw;
    return std::forward<V>(timeout_value);
  } catch (...) {
    t.cancel();
    throw;
  }
}

// Without a timeout value: the Timeout propagates (raise in gevent).
template <class F>
auto with_timeout(Duration d, F&& fn) -> decltype(fn()) {
  Timeout t(d);
  t.start();
  struct Cancel {
    Timeout& t;
    ~Cancel() { t.cancel(); }
  } cancel{t};
  return std::forward<F>(fn)();
}

}  // namespace fern
