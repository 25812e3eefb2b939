#pragma once
// Monotonic time in nanoseconds. Deadlines inside fern are absolute.
#include <cstdint>
#include <ctime>

namespace fern {

using Nanos = std::int64_t;

inline Nanos monotonic_now() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return Nanos{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Seconds (gevent's unit) to nanoseconds, rounded up so that a wait never
// ends early; negative and NaN become 0, huge values saturate.
// Inline for the common 0 (sleep(0), a zero timeout).
Nanos positive_seconds_to_nanos(double seconds) noexcept;
inline Nanos seconds_to_nanos(double seconds) noexcept {
  if (!(seconds > 0)) return 0;  // also catches NaN
  return positive_seconds_to_nanos(seconds);
}

}  // namespace fern
