// fern's timer heap against libev's timers (a 4-ary heap with cached
// deadlines too, libev's default). Only this benchmark links libev, and
// preferably its static archive: through the shared library's PLT each libev
// call costs about 1 ns more than fern's direct calls.
//
// Rows are BM_<Subject>_<impl>/N with impl fern or libev; one item is one
// timer (one arm+cancel pair for TimerArmCancelOne). With the console format
// a table of ns per timer and the ratio fern/libev follows.
//
// Both sides arm the same pseudo-random relative deadlines (fixed seed, 1 ns
// to 1 s) and cancel in the same random order. A fern timer is what a fern
// owner embeds: a TimerNode plus a callback pointer (32 bytes); a libev timer
// is an ev_timer (48 bytes). Each timed iteration is one whole batch; the
// watchers, nodes, random numbers and one untimed warm-up batch (which grows
// libev's and fern's internal arrays to their final size) come first.
#include <benchmark/benchmark.h>
#include <ev.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/timer_heap.h"
#include "ratio_report.h"

namespace {

using fern::Nanos;

constexpr std::uint64_t kSeed = 0x5eed;

// Relative deadlines in ns, 1 ns .. 1 s, and the same in seconds for libev.
struct Deadlines {
  std::vector<Nanos> ns;
  std::vector<double> s;
};

const Deadlines& deadlines(std::size_t n) {
  static std::map<std::size_t, Deadlines> cache;
  Deadlines& d = cache[n];
  if (d.ns.empty()) {
    std::mt19937_64 rng(kSeed + n);
    std::uniform_int_distribution<Nanos> dist(1, 1000000000);
    for (std::size_t i = 0; i < n; ++i) {
      d.ns.push_back(dist(rng));
      d.s.push_back(static_cast<double>(d.ns.back()) * 1e-9);
    }
  }
  return d;
}

std::vector<std::size_t> shuffled(std::size_t n) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), std::mt19937_64(kSeed ^ n));
  return order;
}

std::uint64_t g_fired = 0;

struct FernTimer {
  fern::TimerNode node;  // first member: the node's address is the timer's
  void (*callback)(FernTimer*);
};

void on_fern_timer(FernTimer*) { ++g_fired; }
void on_ev_timer(struct ev_loop*, ev_timer*, int) { ++g_fired; }

std::vector<FernTimer> fern_timers(std::size_t n) {
  std::vector<FernTimer> timers(n);
  for (FernTimer& t : timers) t.callback = on_fern_timer;
  return timers;
}

std::vector<ev_timer> ev_timers(std::size_t n) {
  std::vector<ev_timer> timers(n);
  for (ev_timer& t : timers) ev_timer_init(&t, on_ev_timer, 0., 0.);
  return timers;
}

void set_items(benchmark::State& state, std::size_t per_iteration) {
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(per_iteration));
}

// Start n timers, then cancel them all in random order.

void fern_start_cancel(fern::TimerHeap& heap, std::vector<FernTimer>& timers, Nanos now,
                       const Deadlines& d, const std::vector<std::size_t>& order) {
  for (std::size_t i = 0; i < timers.size(); ++i) {
    timers[i].node.deadline = now + d.ns[i];
    heap.push(&timers[i].node);
  }
  for (std::size_t i : order) heap.remove(&timers[i].node);
}

void BM_TimerStartCancel_fern(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Deadlines& d = deadlines(n);
  const auto order = shuffled(n);
  auto timers = fern_timers(n);
  fern::TimerHeap heap;
  const Nanos now = fern::monotonic_now();
  fern_start_cancel(heap, timers, now, d, order);
  for (auto _ : state) fern_start_cancel(heap, timers, now, d, order);
  set_items(state, n);
}
BENCHMARK(BM_TimerStartCancel_fern)->Arg(1000000)->Unit(benchmark::kMillisecond);

void ev_start_cancel(struct ev_loop* loop, std::vector<ev_timer>& timers, const Deadlines& d,
                     const std::vector<std::size_t>& order) {
  for (std::size_t i = 0; i < timers.size(); ++i) {
    ev_timer_set(&timers[i], d.s[i], 0.);
    ev_timer_start(loop, &timers[i]);
  }
  for (std::size_t i : order) ev_timer_stop(loop, &timers[i]);
}

void BM_TimerStartCancel_libev(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Deadlines& d = deadlines(n);
  const auto order = shuffled(n);
  auto timers = ev_timers(n);
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  ev_start_cancel(loop, timers, d, order);
  for (auto _ : state) ev_start_cancel(loop, timers, d, order);
  ev_loop_destroy(loop);
  set_items(state, n);
}
BENCHMARK(BM_TimerStartCancel_libev)->Arg(1000000)->Unit(benchmark::kMillisecond);

// With n timers armed, arm and cancel one more, kBatch times per iteration,
// each time with the next of a cycle of random deadlines.

constexpr std::size_t kBatch = 4096;

void BM_TimerArmCancelOne_fern(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Deadlines& armed = deadlines(n);
  const Deadlines& extra = deadlines(kBatch);
  auto timers = fern_timers(n + 1);
  fern::TimerHeap heap;
  const Nanos now = fern::monotonic_now();
  for (std::size_t i = 0; i < n; ++i) {
    timers[i].node.deadline = now + armed.ns[i];
    heap.push(&timers[i].node);
  }
  fern::TimerNode* one = &timers[n].node;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      one->deadline = now + extra.ns[i];
      heap.push(one);
      heap.remove(one);
    }
  }
  set_items(state, kBatch);
}
BENCHMARK(BM_TimerArmCancelOne_fern)->Arg(100000);

void BM_TimerArmCancelOne_libev(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Deadlines& armed = deadlines(n);
  const Deadlines& extra = deadlines(kBatch);
  auto timers = ev_timers(n + 1);
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  for (std::size_t i = 0; i < n; ++i) {
    ev_timer_set(&timers[i], armed.s[i], 0.);
    ev_timer_start(loop, &timers[i]);
  }
  ev_timer* one = &timers[n];
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      ev_timer_set(one, extra.s[i], 0.);
      ev_timer_start(loop, one);
      ev_timer_stop(loop, one);
    }
  }
  for (std::size_t i = 0; i < n; ++i) ev_timer_stop(loop, &timers[i]);
  ev_loop_destroy(loop);
  set_items(state, kBatch);
}
BENCHMARK(BM_TimerArmCancelOne_libev)->Arg(100000);

// Arm n timers whose deadlines have all passed (untimed), then fire them all
// in deadline order (timed, manual time).
//
// fern: the loop a hub runs, pop_expired(now) until it returns nullptr, each
// node's owner called through its function pointer.
// libev: one ev_run(loop, EVRUN_NOWAIT). Its timers_reify takes each expired
// watcher off the heap (ev_timer_stop) and queues it, then ev_invoke_pending
// calls each callback through the watcher's pointer. The run also costs one
// epoll_wait(0) and two clock reads, nothing next to n = 1e6 timers.

void BM_TimerFire_fern(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Deadlines& d = deadlines(n);
  auto timers = fern_timers(n);
  fern::TimerHeap heap;
  const Nanos now = fern::monotonic_now();
  auto fire_all = [&] {
    for (std::size_t i = 0; i < n; ++i) {
      timers[i].node.deadline = now - d.ns[i];
      heap.push(&timers[i].node);
    }
    g_fired = 0;
    const auto start = std::chrono::steady_clock::now();
    while (fern::TimerNode* node = heap.pop_expired(now)) {
      auto* timer = reinterpret_cast<FernTimer*>(node);
      timer->callback(timer);
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return elapsed.count();
  };
  fire_all();
  for (auto _ : state) {
    state.SetIterationTime(fire_all());
    if (g_fired != n) state.SkipWithError("not every fern timer fired");
  }
  set_items(state, n);
}
BENCHMARK(BM_TimerFire_fern)->Arg(1000000)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_TimerFire_libev(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Deadlines& d = deadlines(n);
  auto timers = ev_timers(n);
  struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
  auto fire_all = [&] {
    // ev_now stays fixed while timers start: each one's deadline is in the past.
    ev_now_update(loop);
    for (std::size_t i = 0; i < n; ++i) {
      ev_timer_set(&timers[i], -d.s[i], 0.);
      ev_timer_start(loop, &timers[i]);
    }
    g_fired = 0;
    const auto start = std::chrono::steady_clock::now();
    ev_run(loop, EVRUN_NOWAIT);
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    return elapsed.count();
  };
  fire_all();
  for (auto _ : state) {
    state.SetIterationTime(fire_all());
    if (g_fired != n) state.SkipWithError("not every libev timer fired in one ev_run");
  }
  ev_loop_destroy(loop);
  set_items(state, n);
}
BENCHMARK(BM_TimerFire_libev)->Arg(1000000)->UseManualTime()->Unit(benchmark::kMillisecond);

fern::bench::Reference reference(const std::string& subject) { return {subject, "libev"}; }

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
