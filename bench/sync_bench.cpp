// sync/ primitives against Boost.Fiber's on the same patterns.
//
// Rows are BM_<Subject>_<impl>[/arg]; one item is one message or hand-off
// (a ping-pong round trip is two), so rows of a subject divide.
//   WaiterPingPong     core's floor: a bare Waiter woken by a scheduled hub
//                      callback, what every fern hand-off below is built on
//   EventPingPong      two greenlets (fibers) alternate through two events;
//                      Boost.Fiber: mutex + condition_variable + flag
//   QueuePingPong/1    through two bounded queues: fern Queue(1), Boost
//                      buffered_channel(2) (which holds 1)
//   QueuePingPong/0    through two unbounded queues: fern Queue(); Boost has
//                      no unbounded channel: buffered_channel(1024)
//   ChannelPingPong    through two rendezvous channels: fern Channel,
//                      Boost unbuffered_channel
//   SemaphorePingPong  a permit handed back and forth through two
//                      semaphores; Boost.Fiber has none: the usual mutex +
//                      condition_variable + counter
//   QueueFanout/N      one producer, N consumers, a queue holding 63 items:
//                      fern Queue(63), Boost buffered_channel(64)
// Both run single-threaded on the calling thread (Boost.Fiber's default
// round_robin scheduler).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "fern/core/hub.h"
#include "fern/core/task.h"
#include "fern/sync/channel.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "ratio_report.h"

#if FERN_HAVE_BOOST_FIBER
#  include <boost/fiber/all.hpp>

#  include "boost_event.h"
#endif

namespace {

// ---- fern ----

// The floor under every fern row: a bare core Waiter woken by a scheduled
// hub resume node, no primitive at all (reported against EventPingPong).
using WakeCallback = fern::ResumeNode;

void BM_WaiterPingPong_fern(benchmark::State& state) {
  fern::Hub& hub = fern::Hub::current();
  fern::Waiter* main_waiter = nullptr;
  fern::Waiter* other_waiter = nullptr;
  WakeCallback to_main, to_other;
  bool stop = false;
  auto other = fern::spawn([&] {
    for (;;) {
      fern::Waiter w;
      other_waiter = &w;
      w.wait();
      if (stop) return;
      to_main.waiter = main_waiter;
      hub.schedule(&to_main);
    }
  });
  fern::sleep(0);  // the other side is parked
  for (auto _ : state) {
    fern::Waiter w;
    main_waiter = &w;
    to_other.waiter = other_waiter;
    hub.schedule(&to_other);
    w.wait();
  }
  stop = true;
  to_other.waiter = other_waiter;
  hub.schedule(&to_other);
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_WaiterPingPong_fern);

void BM_EventPingPong_fern(benchmark::State& state) {
  fern::Event ping, pong;
  bool stop = false;
  auto other = fern::spawn([&] {
    for (;;) {
      ping.wait();
      ping.clear();
      if (stop) return;
      pong.set();
    }
  });
  for (auto _ : state) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  stop = true;
  ping.set();
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_EventPingPong_fern);

void BM_QueuePingPong_fern(benchmark::State& state) {
  const auto maxsize = static_cast<std::size_t>(state.range(0));
  fern::Queue<int> there(maxsize), back(maxsize);
  auto other = fern::spawn([&] {
    for (;;) {
      int v = there.get();
      if (v < 0) return;
      back.put(v);
    }
  });
  int n = 0;
  for (auto _ : state) {
    there.put(n);
    n = back.get() + 1;
  }
  there.put(-1);
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_QueuePingPong_fern)->Arg(1)->Arg(0);

void BM_ChannelPingPong_fern(benchmark::State& state) {
  fern::Channel<int> there, back;
  auto other = fern::spawn([&] {
    for (;;) {
      int v = there.get();
      if (v < 0) return;
      back.put(v);
    }
  });
  int n = 0;
  for (auto _ : state) {
    there.put(n);
    n = back.get() + 1;
  }
  there.put(-1);
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_ChannelPingPong_fern);

void BM_SemaphorePingPong_fern(benchmark::State& state) {
  fern::Semaphore to_other(0), to_main(0);
  bool stop = false;
  auto other = fern::spawn([&] {
    for (;;) {
      to_other.acquire();
      if (stop) return;
      to_main.release();
    }
  });
  for (auto _ : state) {
    to_other.release();
    to_main.acquire();
  }
  stop = true;
  to_other.release();
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_SemaphorePingPong_fern);

void BM_QueueFanout_fern(benchmark::State& state) {
  const int consumers = static_cast<int>(state.range(0));
  fern::Queue<int> q(63);
  long taken = 0;
  std::vector<fern::AnyTask> tasks;
  for (int i = 0; i < consumers; ++i)
    tasks.push_back(fern::spawn([&] {
      while (q.get() >= 0) ++taken;
    }).core());
  for (auto _ : state) q.put(1);
  for (int i = 0; i < consumers; ++i) q.put(-1);
  fern::joinall(tasks);
  benchmark::DoNotOptimize(taken);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueFanout_fern)->Arg(1)->Arg(4)->Arg(64);

// ---- Boost.Fiber ----

#if FERN_HAVE_BOOST_FIBER
namespace bf = boost::fibers;

using fern::bench::BoostEvent;

void BM_EventPingPong_boost_fiber(benchmark::State& state) {
  BoostEvent ping, pong;
  bool stop = false;
  bf::fiber other([&] {
    for (;;) {
      ping.wait_and_clear();
      if (stop) return;
      pong.set();
    }
  });
  for (auto _ : state) {
    ping.set();
    pong.wait_and_clear();
  }
  stop = true;
  ping.set();
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_EventPingPong_boost_fiber);

template <class Chan>
void channel_ping_pong(benchmark::State& state, Chan& there, Chan& back) {
  bf::fiber other([&] {
    for (;;) {
      int v = there.value_pop();
      if (v < 0) return;
      back.push(v);
    }
  });
  int n = 0;
  for (auto _ : state) {
    there.push(n);
    n = back.value_pop() + 1;
  }
  there.push(-1);
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}

void BM_QueuePingPong_boost_fiber(benchmark::State& state) {
  const std::size_t capacity = state.range(0) == 1 ? 2 : 1024;  // a power of 2 holding capacity - 1
  bf::buffered_channel<int> there(capacity), back(capacity);
  channel_ping_pong(state, there, back);
}
BENCHMARK(BM_QueuePingPong_boost_fiber)->Arg(1)->Arg(0);

void BM_ChannelPingPong_boost_fiber(benchmark::State& state) {
  bf::unbuffered_channel<int> there, back;
  channel_ping_pong(state, there, back);
}
BENCHMARK(BM_ChannelPingPong_boost_fiber);

// The usual counting semaphore on Boost.Fiber: mutex + condition_variable.
struct BoostSemaphore {
  bf::mutex m;
  bf::condition_variable cv;
  long count = 0;
  void release() {
    {
      std::lock_guard<bf::mutex> lk(m);
      ++count;
    }
    cv.notify_one();
  }
  void acquire() {
    std::unique_lock<bf::mutex> lk(m);
    cv.wait(lk, [this] { return count > 0; });
    --count;
  }
};

void BM_SemaphorePingPong_boost_fiber(benchmark::State& state) {
  BoostSemaphore to_other, to_main;
  bool stop = false;
  bf::fiber other([&] {
    for (;;) {
      to_other.acquire();
      if (stop) return;
      to_main.release();
    }
  });
  for (auto _ : state) {
    to_other.release();
    to_main.acquire();
  }
  stop = true;
  to_other.release();
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_SemaphorePingPong_boost_fiber);

void BM_QueueFanout_boost_fiber(benchmark::State& state) {
  const int consumers = static_cast<int>(state.range(0));
  bf::buffered_channel<int> q(64);
  long taken = 0;
  std::vector<bf::fiber> fibers;
  for (int i = 0; i < consumers; ++i)
    fibers.emplace_back([&] {
      while (q.value_pop() >= 0) ++taken;
    });
  for (auto _ : state) q.push(1);
  for (int i = 0; i < consumers; ++i) q.push(-1);
  for (auto& f : fibers) f.join();
  benchmark::DoNotOptimize(taken);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueFanout_boost_fiber)->Arg(1)->Arg(4)->Arg(64);
#endif

fern::bench::Reference reference(const std::string& subject) {
  if (subject == "WaiterPingPong") return {"EventPingPong", "boost_fiber"};
  return {subject, "boost_fiber"};
}

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
