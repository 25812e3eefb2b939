#include "fern/core/clock.h"

#include <cmath>
#include <limits>

namespace fern {

Nanos positive_seconds_to_nanos(double seconds) noexcept {
  const double ns = seconds * 1e9;
  // 2^63 is the first double above INT64_MAX; converting it would be UB.
  if (ns >= 0x1p63) return std::numeric_limits<Nanos>::max();
  // A decimal like 1e-9 or 0.067 is stored a few ulp above its value, and
  // ceil would then add a whole nanosecond the caller never asked for. A
  // product within 4 ulp of a whole count is that count: the difference is
  // below the precision of the input itself. Everything else rounds up, so
  // a wait never ends early.
  const double whole = std::round(ns);
  if (whole > 0 && std::fabs(ns - whole) <= ns * 0x1p-50) {
    return static_cast<Nanos>(whole);
  }
  return static_cast<Nanos>(std::ceil(ns));
}

}  // namespace fern
