// A deterministic loop per timer subject, for instruction counting
// (callgrind_ops.sh): with 100,000 timers armed at pseudo-random deadlines,
// N times arm one more and cancel it (timer_bench's TimerArmCancelOne), in
// fern's heap or in libev's (when built with libev).
//
//   timer_count N armcancel_fern | armcancel_libev
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fern/core/timer_heap.h"

#if FERN_HAVE_LIBEV
#  include <ev.h>
#endif

namespace {

constexpr std::size_t kArmed = 100000;
constexpr std::size_t kCycle = 4096;

// The same pseudo-random deadlines for both (xorshift; 1 ns to 1 s).
std::vector<long> deadlines(std::size_t n, unsigned long seed) {
  std::vector<long> out(n);
  for (long& d : out) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    d = 1 + static_cast<long>(seed % 1000000000);
  }
  return out;
}

void armcancel_fern(long n) {
  const std::vector<long> armed = deadlines(kArmed, 1), extra = deadlines(kCycle, 2);
  std::vector<fern::TimerNode> nodes(kArmed + 1);
  fern::TimerHeap heap;
  for (std::size_t i = 0; i < kArmed; ++i) {
    nodes[i].deadline = armed[i];
    heap.push(&nodes[i]);
  }
  fern::TimerNode* one = &nodes[kArmed];
  for (long i = 0; i < n; ++i) {
    one->deadline = extra[static_cast<std::size_t>(i) % kCycle];
    heap.push(one);
    heap.remove(one);
  }
  if (heap.size() != kArmed) std::abort();
}

#if FERN_HAVE_LIBEV
void armcancel_libev(long n) {
  const std::vector<long> armed = deadlines(kArmed, 1), extra = deadlines(kCycle, 2);
  std::vector<ev_timer> timers(kArmed + 1);
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  for (std::size_t i = 0; i < kArmed; ++i) {
    ev_timer_init(&timers[i], nullptr, static_cast<double>(armed[i]) * 1e-9, 0.);
    ev_timer_start(loop, &timers[i]);
  }
  ev_timer* one = &timers[kArmed];
  ev_timer_init(one, nullptr, 0., 0.);
  for (long i = 0; i < n; ++i) {
    ev_timer_set(one, static_cast<double>(extra[static_cast<std::size_t>(i) % kCycle]) * 1e-9, 0.);
    ev_timer_start(loop, one);
    ev_timer_stop(loop, one);
  }
  for (std::size_t i = 0; i < kArmed; ++i) ev_timer_stop(loop, &timers[i]);
  ev_loop_destroy(loop);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s N armcancel_fern|armcancel_libev\n", argv[0]);
    return 2;
  }
  long n = std::atol(argv[1]);
  if (std::strcmp(argv[2], "armcancel_fern") == 0) {
    armcancel_fern(n);
    return 0;
  }
#if FERN_HAVE_LIBEV
  if (std::strcmp(argv[2], "armcancel_libev") == 0) {
    armcancel_libev(n);
    return 0;
  }
#endif
  std::fprintf(stderr, "%s: unknown subject %s\n", argv[0], argv[2]);
  return 2;
}
