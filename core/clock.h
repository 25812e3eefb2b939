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
Nanos seconds_to_nanos(double seconds) noexcept;

}  // namespace fern
