// The sleep family: a greenlet sleeps on a hub timer (fern::sleep), so the
// others run meanwhile; the call never returns early and is never
// interrupted, so the time left (rem) is left untouched, as libc's after a
// full sleep.
#include <cstdint>

#include "fern/core/task.h"
#include "fern/hooks/detail.h"

using namespace fern;
using namespace fern::hooks::detail;

namespace {

// errno is the caller's again after: a completed sleep leaves it alone.
void sleep_nanos(std::int64_t ns) {
  int caller_errno = errno;
  if (ns <= 0) fern::sleep(0.0);  // gevent's sleep(0): a FIFO yield
  else fern::sleep_until(Deadline::at(Deadline::saturating_add(monotonic_now(), ns)));
  errno = caller_errno;
}

bool valid(const timespec* ts) { return ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000 && ts->tv_sec >= 0; }

std::int64_t to_nanos(const timespec& ts) {
  constexpr std::int64_t kMaxSeconds = INT64_MAX / 1'000'000'000 - 1;
  if (ts.tv_sec > kMaxSeconds) return INT64_MAX;
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

extern "C" {

unsigned int sleep(unsigned int seconds) {
  if (cooperative_hub(fern::hooks::kTime) == nullptr) return FERN_REAL(sleep)(seconds);
  sleep_nanos(static_cast<std::int64_t>(seconds) * 1'000'000'000);
  return 0;
}

int usleep(useconds_t us) {
  if (cooperative_hub(fern::hooks::kTime) == nullptr) return FERN_REAL(usleep)(us);
  sleep_nanos(static_cast<std::int64_t>(us) * 1000);
  return 0;
}

int nanosleep(const timespec* req, timespec* rem) {
  if (cooperative_hub(fern::hooks::kTime) == nullptr || req == nullptr) return FERN_REAL(nanosleep)(req, rem);
  timespec ts{};
  bool readable = copy_in(ts, req);
  if (!readable || !valid(&ts)) {
    errno = readable ? EINVAL : EFAULT;
    return -1;
  }
  sleep_nanos(to_nanos(ts));
  return 0;
}

// Returns the error number, as clock_nanosleep does (errno untouched).
int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  bool known_clock = clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
                     clock == CLOCK_TAI;
  if (!known_clock || req == nullptr || cooperative_hub(fern::hooks::kTime) == nullptr)
    return FERN_REAL(clock_nanosleep)(clock, flags, req, rem);
  timespec ts{};
  if (!copy_in(ts, req)) return EFAULT;
  if (!valid(&ts)) return EINVAL;
  std::int64_t ns = to_nanos(ts);
  if (flags & TIMER_ABSTIME) {
    // The hub's timers are monotonic: the absolute time becomes a duration
    // now (a later change of the realtime clock is not followed).
    timespec now{};
    clock_gettime(clock, &now);
    ns -= to_nanos(now);
  }
  sleep_nanos(ns);
  return 0;
}

}  // extern "C"
