// Primitives across OS threads: SEMANTICS EV-9 (set from another thread
// wakes the waiter in its hub, and vice versa) and LK-7 (a semaphore released
// from another thread), plus a Queue fed from other threads. Real threads;
// run under ThreadSanitizer in CI (tsan preset).
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/greenlet.h"
#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "hub_fixture.h"

namespace {

using CrossThread = fern::testing::HubTest;

// EV-9
TEST_F(CrossThread, EventSetFromAnotherThreadWakesTheWaiterInItsHub) {
  fern::Event done;
  std::thread setter([remote = done.remote()] { EXPECT_TRUE(remote.set()); });
  EXPECT_TRUE(done.wait_for(30.0));  // no LoopExit: the handle keeps the loop waiting
  EXPECT_TRUE(done.is_set());
  setter.join();
}

// EV-9: every waiter of the round wakes, in its own hub, FIFO (F7).
TEST_F(CrossThread, EventSetFromAnotherThreadWakesEveryWaiterInOrder) {
  fern::Event go;
  std::vector<int> order;
  auto a = fern::spawn([&] { go.wait(); order.push_back(1); });
  auto b = fern::spawn([&] { go.wait(); order.push_back(2); });
  fern::sleep(0);
  std::thread setter([remote = go.remote()] { remote.set(); });
  fern::joinall(a, b);
  setter.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

// EV-9 "and vice versa": two threads, each with its own hub, hand a turn
// back and forth through each other's events.
TEST_F(CrossThread, TwoHubsPingPongThroughEachOthersEvents) {
  constexpr int kRounds = 200;
  fern::Event ping_ready;  // the other thread has made its event
  std::atomic<fern::Remote<fern::Event>*> ping_remote{nullptr};
  fern::Event pong;  // ours
  fern::Remote<fern::Event> pong_remote = pong.remote();
  fern::Remote<fern::Event> ready_remote = ping_ready.remote();
  std::thread other([&, pong_remote, ready_remote] {
    fern::Event ping;
    fern::Remote<fern::Event> mine = ping.remote();
    ping_remote = &mine;
    ready_remote.set();
    for (int i = 0; i < kRounds; ++i) {
      ping.wait();
      ping.clear();
      pong_remote.set();
    }
    fern::Hub::destroy_current();
  });
  ping_ready.wait();
  fern::Remote<fern::Event> ping_remote_copy = *ping_remote.load();
  for (int i = 0; i < kRounds; ++i) {
    ping_remote_copy.set();
    pong.wait();
    pong.clear();
  }
  ping_remote_copy = {};
  other.join();
}

// EV-9 with a value.
TEST_F(CrossThread, AsyncResultSetFromAnotherThreadDeliversTheValue) {
  fern::AsyncResult<std::string> result;
  std::thread setter([remote = result.remote()] { remote.set(std::string("from a thread")); });
  EXPECT_EQ(result.get(), "from a thread");
  setter.join();
}

TEST_F(CrossThread, AsyncResultExceptionFromAnotherThreadIsRaised) {
  fern::AsyncResult<int> result;
  std::thread setter([remote = result.remote()] {
    remote.set_exception(std::make_exception_ptr(std::runtime_error("thread failed")));
  });
  EXPECT_THROW(result.get(), std::runtime_error);
  setter.join();
}

// LK-7
TEST_F(CrossThread, SemaphoreReleasedFromAnotherThreadWakesTheAcquirer) {
  fern::Semaphore sem(0);
  std::thread releaser([remote = sem.remote()] {
    for (int i = 0; i < 3; ++i) remote.release();
  });
  for (int i = 0; i < 3; ++i) sem.acquire();
  EXPECT_EQ(sem.counter(), 0);
  releaser.join();
}

// Items from each thread arrive in that thread's order.
TEST_F(CrossThread, QueuePutsFromOtherThreadsArriveInEachThreadsOrder) {
  constexpr int kPerThread = 500;
  fern::Queue<int> queue;
  std::vector<std::thread> putters;
  for (int t = 0; t < 2; ++t) {
    putters.emplace_back([t, remote = queue.remote()] {
      for (int i = 0; i < kPerThread; ++i) remote.put(t * kPerThread + i);
    });
  }
  int next[2] = {0, kPerThread};
  for (int n = 0; n < 2 * kPerThread; ++n) {
    int v = queue.get();
    int t = v / kPerThread;
    EXPECT_EQ(v, next[t]);
    next[t] = v + 1;
  }
  for (auto& p : putters) p.join();
}

// A full bounded queue takes the item once a get makes room.
TEST_F(CrossThread, PutOnAFullBoundedQueueWaitsForRoom) {
  fern::Queue<int> queue(1);
  queue.put(1);
  std::thread putter([remote = queue.remote()] { remote.put(2); });
  putter.join();
  EXPECT_EQ(queue.get(), 1);
  EXPECT_EQ(queue.get(), 2);
}

// A put waiting for room is not passed by a later put of the same thread
// that finds room first (here a get posted between the two makes the room,
// in the hub, before the waiting put is served).
TEST_F(CrossThread, PutsOnAFullBoundedQueueKeepTheirOrder) {
  fern::Queue<int> queue(1);
  queue.put(0);
  fern::Event first_waits, second_posted;
  std::thread first([remote = queue.remote(), waits = first_waits.remote()] {
    remote.put(1);  // no room: waits for it
    waits.set();
  });
  first_waits.wait();
  first.join();
  std::thread second([remote = queue.remote(), posted = second_posted.remote()] {
    remote.post([](auto& q) { EXPECT_EQ(q.try_get().value_or(-1), 0); });
    remote.put(2);
    posted.set();
  });
  second_posted.wait();
  second.join();
  EXPECT_EQ(queue.get(), 1);
  EXPECT_EQ(queue.get(), 2);
}

// A put waiting for room on a queue destroyed meanwhile ends: nothing of
// it is left parked in the hub.
TEST_F(CrossThread, PutWaitingForRoomEndsWithItsQueue) {
  fern::sleep(0);  // the hub's loop has started
  std::size_t greenlets = fern::Greenlet::live_count();
  fern::Event waits;
  {
    fern::Queue<int> queue(1);
    queue.put(0);
    std::thread putter([remote = queue.remote(), w = waits.remote()] {
      remote.put(1);  // no room: waits for it
      w.set();
    });
    waits.wait();
    putter.join();
  }
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(fern::Greenlet::live_count(), greenlets);
}

// Lifetimes: an operation that arrives after its primitive is gone is
// dropped; one posted after its hub is gone is refused.
TEST_F(CrossThread, SetAfterTheEventIsGoneIsDropped) {
  fern::Remote<fern::Event> remote;
  {
    fern::Event gone;
    remote = gone.remote();
  }
  std::thread setter([&remote] { EXPECT_TRUE(remote.set()); });
  setter.join();
  remote = {};
  fern::Hub::current().run_until_idle();  // the posted set runs and finds nothing
}

TEST_F(CrossThread, PostAfterTheHubIsGoneIsRefused) {
  fern::Remote<fern::Event> remote;
  std::thread owner([&remote] {
    fern::Event e;
    remote = e.remote();
    fern::Hub::destroy_current();
  });
  owner.join();
  EXPECT_FALSE(remote.set());
}

// The loop waits for handles: none left, blocking forever is LoopExit again.
TEST_F(CrossThread, DroppingTheLastHandleLetsTheLoopEnd) {
  fern::Event never;
  {
    auto remote = never.remote();
  }
  EXPECT_THROW(never.wait(), fern::LoopExit);
}

}  // namespace
