#pragma once
// gevent's Timeout: a timer that, when it fires, raises an exception in the
// greenlet that started it, at the point where that greenlet is blocked.
//
// Mapping from gevent:
//   Timeout(seconds, exception)    Timeout(seconds) / Timeout(seconds, exc) / Timeout::silent(seconds)
//   t.start(), t.cancel()          t.start(), t.cancel()   (t.close() too)
//   Timeout.start_new(s, exc)      Timeout::start_new(s) / start_new(s, exc)
//   with Timeout(s):               TimeoutScope scope(s);  (starts now, cancels at scope exit)
//   with Timeout(s, False):        bool done = Timeout::silently(s, fn);
//   with_timeout(s, f, timeout_value=v)   with_timeout(s, f, v)
//   except Timeout as t: t is mine catch (const Timeout& t) { if (t == mine) ... }
// A Timeout is a handle: copies share one timer, and the exception thrown by
// default is a copy, so it compares equal to the Timeout that fired (TO-4,
// TO-5). Timeout does not derive from std::exception (TO-1).
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

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
  // Raises this Timeout itself when it fires; `seconds` < 0 means never.
  explicit Timeout(double seconds);
  // Raises `exception` instead (a class in gevent; here any exception object).
  Timeout(double seconds, std::exception_ptr exception);
  template <class E, class = std::enable_if_t<!std::is_same_v<std::decay_t<E>, std::exception_ptr> &&
                                              !std::is_arithmetic_v<std::decay_t<E>>>>
  Timeout(double seconds, E&& exception) : Timeout(seconds, std::make_exception_ptr(std::forward<E>(exception))) {}
  // Raises a Timeout with a message: str() ends with ": message" (TO-4, TO-7).
  static Timeout with_message(double seconds, std::string message);
  // gevent's exception=False: silently() swallows it at its own scope.
  static Timeout silent(double seconds);

  // Arms the timer for the calling greenlet; TimeoutPendingError if pending.
  // Must be called in a greenlet of a thread with a hub (created on demand).
  Timeout& start();
  // Creates and starts one (Timeout.start_new).
  static Timeout start_new(double seconds);
  static Timeout start_new(double seconds, std::exception_ptr exception);
  // Disarms; a no-op when not pending. close() is the same.
  void cancel() noexcept;
  void close() noexcept { cancel(); }
  bool pending() const noexcept;
  double seconds() const noexcept;
  bool is_silent() const noexcept;

  // "1 second", "2 seconds", "0.5 seconds (silent)", "1 second: msg", "" (TO-7).
  std::string str() const;

  // Runs fn under a silent timeout: true if fn finished, false if the
  // timeout cut it short (gevent's `with Timeout(s, False)`).
  template <class F>
  static bool silently(double seconds, F&& fn) {
    Timeout t = silent(seconds);
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
  explicit TimeoutScope(double seconds) : timeout_(seconds) { timeout_.start(); }
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
auto with_timeout(double seconds, F&& fn, V&& timeout_value) -> decltype(fn()) {
  Timeout t(seconds);
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
auto with_timeout(double seconds, F&& fn) -> decltype(fn()) {
  Timeout t(seconds);
  t.start();
  struct Cancel {
    Timeout& t;
    ~Cancel() { t.cancel(); }
  } cancel{t};
  return std::forward<F>(fn)();
}

}  // namespace fern
