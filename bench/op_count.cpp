// A deterministic loop per hub benchmark subject, for instruction counting
// (callgrind_ops.sh): N operations of one subject, fern or Boost.Fiber.
//
//   op_count N SUBJECT
//
// SUBJECT: yield_fern, yield1000_fern, event_fern, queue_fern,
// semaphore_fern, channel_fern, spawnjoin_fern, and yield_boost_fiber,
// event_boost_fiber, channel_boost_fiber when built with Boost.Fiber. One
// operation is what one item of hub_bench / sync_bench is: one yield (of two
// tasks, or of 1000), one hand-off of a ping-pong (a round trip is two), one
// spawned and joined task.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/channel.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"

#if FERN_HAVE_BOOST_FIBER
#  include <boost/fiber/all.hpp>

#  include "boost_event.h"
#endif

namespace {

void yield_fern(long n) {
  bool stop = false;
  auto other = fern::spawn([&] {
    while (!stop) fern::sleep(0);
  });
  fern::sleep(0);
  for (long i = 0; i < n / 2; ++i) fern::sleep(0);
  stop = true;
  other.join();
}

// 1000 greenlets yielding in turn (hub_bench's Yield/1000): one operation
// is one yield; for callgrind's cache simulation of the many-greenlet case.
void yield1000_fern(long n) {
  bool stop = false;
  std::vector<fern::AnyTask> others;
  for (int i = 0; i < 999; ++i)
    others.push_back(fern::spawn([&stop] {
      while (!stop) fern::sleep(0);
    }).core());
  fern::sleep(0);
  for (long i = 0; i < n / 1000; ++i) fern::sleep(0);
  stop = true;
  fern::joinall(others);
}

void event_fern(long n) {
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
  for (long i = 0; i < n / 2; ++i) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  stop = true;
  ping.set();
  other.join();
}

template <class Q>
void ping_pong(long n, Q& there, Q& back) {
  auto other = fern::spawn([&] {
    for (;;) {
      int v = there.get();
      if (v < 0) return;
      back.put(v);
    }
  });
  int v = 0;
  for (long i = 0; i < n / 2; ++i) {
    there.put(v);
    v = back.get() + 1;
  }
  there.put(-1);
  other.join();
}

void queue_fern(long n) {
  fern::Queue<int> there(1), back(1);
  ping_pong(n, there, back);
}

void channel_fern(long n) {
  fern::Channel<int> there, back;
  ping_pong(n, there, back);
}

void semaphore_fern(long n) {
  fern::Semaphore ping(0), pong(0);
  bool stop = false;
  auto other = fern::spawn([&] {
    for (;;) {
      ping.acquire();
      if (stop) return;
      pong.release();
    }
  });
  for (long i = 0; i < n / 2; ++i) {
    ping.release();
    pong.acquire();
  }
  stop = true;
  ping.release();
  other.join();
}

void spawnjoin_fern(long n) {
  std::vector<fern::AnyTask> batch;
  batch.reserve(1000);
  int ran = 0;
  for (long done = 0; done < n; done += 1000) {
    for (int i = 0; i < 1000; ++i) batch.push_back(fern::spawn([&ran] { ++ran; }).core());
    fern::joinall(batch);
    batch.clear();
  }
}

#if FERN_HAVE_BOOST_FIBER
namespace bf = boost::fibers;

void yield_boost_fiber(long n) {
  bool stop = false;
  bf::fiber other([&] {
    while (!stop) boost::this_fiber::yield();
  });
  boost::this_fiber::yield();
  for (long i = 0; i < n / 2; ++i) boost::this_fiber::yield();
  stop = true;
  other.join();
}

using fern::bench::BoostEvent;

void event_boost_fiber(long n) {
  BoostEvent ping, pong;
  bool stop = false;
  bf::fiber other([&] {
    for (;;) {
      ping.wait_and_clear();
      if (stop) return;
      pong.set();
    }
  });
  for (long i = 0; i < n / 2; ++i) {
    ping.set();
    pong.wait_and_clear();
  }
  stop = true;
  ping.set();
  other.join();
}

void channel_boost_fiber(long n) {
  bf::unbuffered_channel<int> there, back;
  bf::fiber other([&] {
    for (;;) {
      int v = there.value_pop();
      if (v < 0) return;
      back.push(v);
    }
  });
  int v = 0;
  for (long i = 0; i < n / 2; ++i) {
    there.push(v);
    v = back.value_pop() + 1;
  }
  there.push(-1);
  other.join();
}
#endif

struct Subject {
  const char* name;
  void (*run)(long);
};

const Subject kSubjects[] = {
    {"yield_fern", yield_fern},       {"yield1000_fern", yield1000_fern}, {"event_fern", event_fern},         {"queue_fern", queue_fern},
    {"semaphore_fern", semaphore_fern}, {"channel_fern", channel_fern},   {"spawnjoin_fern", spawnjoin_fern},
#if FERN_HAVE_BOOST_FIBER
    {"yield_boost_fiber", yield_boost_fiber}, {"event_boost_fiber", event_boost_fiber},
    {"channel_boost_fiber", channel_boost_fiber},
#endif
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s N SUBJECT\n", argv[0]);
    return 2;
  }
  long n = std::atol(argv[1]);
  for (const Subject& s : kSubjects) {
    if (std::strcmp(s.name, argv[2]) != 0) continue;
    s.run(n);
    return 0;
  }
  std::fprintf(stderr, "%s: unknown subject %s\n", argv[0], argv[2]);
  return 2;
}
