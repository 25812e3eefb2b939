#pragma once
// Deadlines: absolute, saturating monotonic time, the only way fern measures
// "until when" (libdill's rule: durations at the API, deadlines inside).
//
//   Deadline::never()           no limit
//   Deadline::after(0.5)        double seconds, gevent's idiom: NaN and
//                               negative mean "now" (an immediate timeout),
//                               +inf and values past the clock's range never
//   Deadline::after(250ms)      any std::chrono duration, saturating
//   Deadline::at(nanos)         an absolute monotonic_now() value
//   Deadline(steady_clock::now() + 1s)
//
// A Duration is the argument of every *_for call: a std::chrono duration or
// double seconds, turned into a Deadline when the call starts. No `now + x`
// happens anywhere else in fern: the sums here saturate at never.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "fern/core/clock.h"

namespace fern {

class Deadline {
 public:
  static constexpr Nanos kNever = std::numeric_limits<Nanos>::max();

  constexpr Deadline() noexcept = default;  // never
  template <class Dur>
  Deadline(std::chrono::time_point<std::chrono::steady_clock, Dur> t) noexcept  // NOLINT: implicit
      : at_(from_steady(t)) {}

  static constexpr Deadline never() noexcept { return Deadline(); }
  static constexpr Deadline at(Nanos monotonic_ns) noexcept { return Deadline(monotonic_ns, 0); }
  static Deadline now() noexcept { return at(monotonic_now()); }
  // Relative to `base` (default: the monotonic clock now); saturating.
  static Deadline after(double seconds) noexcept { return after(seconds, monotonic_now()); }
  static Deadline after(double seconds, Nanos base) noexcept {
    return at(saturating_add(base, seconds_to_nanos_or_never(seconds)));
  }
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> d, Nanos base = monotonic_now()) noexcept {
    return at(saturating_add(base, duration_to_nanos(d)));
  }

  constexpr bool is_never() const noexcept { return at_ == kNever; }
  constexpr Nanos nanos() const noexcept { return at_; }
  constexpr bool expired(Nanos now) const noexcept { return at_ <= now; }
  // deadline <= now ? 0 : deadline - now; never stays kNever.
  constexpr Nanos remaining(Nanos now) const noexcept {
    return is_never() ? kNever : (at_ <= now ? 0 : at_ - now);
  }
  // For pollers that take milliseconds: rounded up (never wakes early),
  // clamped to INT32_MAX; -1 for never.
  constexpr int remaining_ms(Nanos now) const noexcept {
    if (is_never()) return -1;
    Nanos ns = remaining(now);
    Nanos ms = ns / 1'000'000 + (ns % 1'000'000 != 0);
    return ms > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(ms);
  }

  friend constexpr bool operator==(Deadline a, Deadline b) noexcept { return a.at_ == b.at_; }
  friend constexpr bool operator!=(Deadline a, Deadline b) noexcept { return a.at_ != b.at_; }
  friend constexpr bool operator<(Deadline a, Deadline b) noexcept { return a.at_ < b.at_; }
  friend constexpr bool operator<=(Deadline a, Deadline b) noexcept { return a.at_ <= b.at_; }
  friend constexpr Deadline earlier(Deadline a, Deadline b) noexcept { return a.at_ <= b.at_ ? a : b; }

  // Non-negative sum, saturating at kNever.
  static constexpr Nanos saturating_add(Nanos base, Nanos delta) noexcept {
    if (delta <= 0) return base;
    return base > kNever - delta ? kNever : base + delta;
  }
  // Seconds to nanoseconds, rounded up (a wait never ends early); NaN and
  // negative -> 0; +inf and anything past ~292 years -> kNever.
  static Nanos seconds_to_nanos_or_never(double seconds) noexcept {
    Nanos ns = seconds_to_nanos(seconds);
    return ns == std::numeric_limits<Nanos>::max() ? kNever : ns;
  }
  template <class Rep, class Period>
  static constexpr Nanos duration_to_nanos(std::chrono::duration<Rep, Period> d) noexcept {
    if constexpr (std::is_floating_point_v<Rep>) {
      return seconds_to_nanos_or_never(std::chrono::duration<double>(d).count());
    } else {
      using namespace std::chrono;
      if (d <= d.zero()) return 0;
      // Saturate before the cast can overflow.
      using Max = duration<Nanos, std::nano>;
      if (duration_cast<duration<double>>(d).count() >= duration_cast<duration<double>>(Max::max()).count())
        return kNever;
      Nanos ns = duration_cast<nanoseconds>(d).count();
      if (duration_cast<Max>(nanoseconds(ns)) < d) ++ns;  // round up sub-nanosecond periods
      return ns;
    }
  }

 private:
  constexpr Deadline(Nanos at, int) noexcept : at_(at) {}
  template <class Dur>
  static Nanos from_steady(std::chrono::time_point<std::chrono::steady_clock, Dur> t) noexcept {
    // steady_clock and monotonic_now() are both CLOCK_MONOTONIC on the
    // platforms fern builds for; compute through the difference so that a
    // different epoch would still be honoured.
    using namespace std::chrono;
    auto now_steady = steady_clock::now();
    Nanos now = monotonic_now();
    // Exactly, in the common unit, where t and now both fit it with room
    // for their difference (a time_point<hours>::max() in nanoseconds would
    // overflow); else through double seconds, saturating: huge is never,
    // far past is expired, NaN is now (the rule for durations).
    using Common = std::common_type_t<Dur, steady_clock::duration>;
    if constexpr (!std::is_floating_point_v<typename Common::rep>) {
      constexpr double kRoom = static_cast<double>(std::numeric_limits<typename Common::rep>::max()) / 4;
      double at = duration<double, typename Common::period>(t.time_since_epoch()).count();
      double here = duration<double, typename Common::period>(now_steady.time_since_epoch()).count();
      if (at < kRoom && at > -kRoom && here < kRoom && here > -kRoom) {
        Common ahead = Common(t.time_since_epoch()) - Common(now_steady.time_since_epoch());
        if (ahead > Common::zero()) return saturating_add(now, duration_to_nanos(ahead));
        Nanos back = duration_to_nanos(-ahead);
        return back >= now ? 0 : now - back;
      }
    }
    double ahead = duration<double>(t.time_since_epoch()).count() - duration<double>(now_steady.time_since_epoch()).count();
    if (ahead > 0) return saturating_add(now, seconds_to_nanos_or_never(ahead));
    if (!(ahead <= 0)) return now;  // NaN
    Nanos back = seconds_to_nanos_or_never(-ahead);
    return back >= now ? 0 : now - back;
  }

  Nanos at_ = kNever;
};

// The argument of every *_for call: a std::chrono duration or double seconds
// (gevent's unit). Converted to a Deadline when the call starts.
class Duration {
 public:
  Duration(double seconds) noexcept  // NOLINT: implicit, so f(0.5) and f(500ms) both read well
      : ns_(Deadline::seconds_to_nanos_or_never(seconds)) {}
  template <class Rep, class Period>
  Duration(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT: implicit
      : ns_(Deadline::duration_to_nanos(d)) {}
  static constexpr Duration forever() noexcept { return Duration(Deadline::kNever, 0); }

  Deadline from_now() const noexcept { return Deadline::at(Deadline::saturating_add(monotonic_now(), ns_)); }
  Deadline from(Nanos base) const noexcept { return Deadline::at(Deadline::saturating_add(base, ns_)); }
  Nanos nanos() const noexcept { return ns_; }
  bool is_forever() const noexcept { return ns_ == Deadline::kNever; }
  double seconds() const noexcept { return is_forever() ? std::numeric_limits<double>::infinity() : static_cast<double>(ns_) / 1e9; }

 private:
  constexpr Duration(Nanos ns, int) noexcept : ns_(ns) {}
  Nanos ns_;
};

namespace detail {

// The options of a wait on several things (joinall, fern::wait): a
// deadline, set by within(d) or until(deadline), and how many to wait for
// (count(n); 0: all). Chainable: JoinAll().within(1s).count(2).
template <class Self>
struct ManyWaitOptions {
  Deadline deadline;
  std::size_t n = 0;
  Self& within(Duration d) {
    deadline = d.from_now();
    return static_cast<Self&>(*this);
  }
  Self& until(Deadline d) {
    deadline = d;
    return static_cast<Self&>(*this);
  }
  Self& count(std::size_t count) {
    n = count;
    return static_cast<Self&>(*this);
  }
};

}  // namespace detail
}  // namespace fern
