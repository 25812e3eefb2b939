// The C++-native surface (issue 7): distinct names instead of flag
// arguments, move-only bodies and results, and the gevent behaviours that
// came with it: GV-10, GV-19, GV-22, HUB-7, HUB-13, LK-5, PL-3, PL-6, Q-12.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <new>
#include <optional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/event.h"
#include "fern/sync/channel.h"
#include "fern/sync/group.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "fern/sync/wait_any.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Api = fern::testing::HubTest;
using Vec = std::vector<std::string>;
using namespace std::chrono_literals;

// q.get(0.1) must not compile into "block forever" (it did with get(bool, double)).
template <class Q, class = void>
struct GetTakesANumber : std::false_type {};
template <class Q>
struct GetTakesANumber<Q, std::void_t<decltype(std::declval<Q&>().get(0.1))>> : std::true_type {};
template <class S, class = void>
struct AcquireTakesANumber : std::false_type {};
template <class S>
struct AcquireTakesANumber<S, std::void_t<decltype(std::declval<S&>().acquire(0.1))>> : std::true_type {};
static_assert(!GetTakesANumber<fern::Queue<int>>::value, "q.get(0.1) must not compile");
static_assert(!GetTakesANumber<fern::Channel<int>>::value, "ch.get(0.1) must not compile");
static_assert(!GetTakesANumber<fern::Task<int>>::value, "t.get(0.1) must not compile");
static_assert(!GetTakesANumber<fern::AsyncResult<int>>::value, "a.get(0.1) must not compile");
static_assert(!AcquireTakesANumber<fern::Semaphore>::value, "s.acquire(0.1) must not compile");

TEST_F(Api, TimeoutsTakeChronoDurationsAndSeconds) {
  fern::Queue<int> q;
  EXPECT_EQ(q.get_for(1ms), std::nullopt);
  EXPECT_EQ(q.get_for(0.001), std::nullopt);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_THROW(q.get_nowait(), fern::QueueEmpty);
  EXPECT_TRUE(q.try_put(1));
  EXPECT_EQ(q.get_until(fern::Deadline::after(1s)), 1);
  fern::Semaphore s(0);
  EXPECT_FALSE(s.try_acquire());
  EXPECT_FALSE(s.acquire_for(1ms));
  sleep(1ms);
}

TEST_F(Api, MoveOnlyBodiesAndResultsWork) {
  auto owned = std::make_unique<int>(41);
  auto t = spawn([p = std::move(owned)]() mutable { return std::make_unique<int>(*p + 1); });
  std::unique_ptr<int> result = std::move(t).get();
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, 42);
  fern::AsyncResult<std::unique_ptr<int>> a;
  a.set(std::make_unique<int>(7));
  EXPECT_EQ(*std::move(a).get(), 7);
}

TEST_F(Api, JoinallTakesTasksDirectly) {
  auto a = spawn([] { return 1; });
  auto b = spawn([] { sleep(0.001); });
  auto done = fern::joinall(a, b);
  EXPECT_EQ(done.size(), 2u);
  std::vector<fern::Task<int>> many;
  for (int i = 0; i < 3; ++i) many.push_back(spawn([i] { return i; }));
  EXPECT_EQ(fern::joinall(many).size(), 3u);
  EXPECT_EQ(many[2].get(), 2);
}

TEST_F(Api, AsyncResultRefusesANullException) {
  fern::AsyncResult<int> a;
  EXPECT_THROW(a.set_exception(nullptr), std::invalid_argument);
  EXPECT_FALSE(a.ready());
}

// GV-10: a Timeout object given to get() is raised as itself.
TEST_F(Api, GetWithATimeoutObjectRaisesThatTimeout) {
  auto slow = spawn([] { sleep(1); });
  fern::Timeout mine(0.002);
  try {
    slow.get(mine);
    ADD_FAILURE() << "get returned";
  } catch (const fern::Timeout& t) {
    EXPECT_TRUE(t == mine);
  }
  fern::AsyncResult<int> never;
  fern::Timeout custom(0.002, std::runtime_error("custom"));
  EXPECT_THROW(never.get(custom), std::runtime_error);
  slow.kill();
}

// GV-19: SystemExit escaping a task is raised in main, not reported.
TEST_F(Api, SystemExitFromATaskIsRaisedInMain) {
  ::testing::internal::CaptureStderr();
  auto t = spawn([] { throw fern::SystemExit(3); });
  try {
    sleep(0.05);
    ADD_FAILURE() << "no SystemExit in main";
  } catch (const fern::SystemExit& e) {
    EXPECT_EQ(e.code(), 3);
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(t.dead());
}

// GV-22: a raw greenlet whose parent is the hub, kept alive by the hub.
TEST_F(Api, SpawnRawStartsAPlainGreenletUnderTheHub) {
  bool ran = false;
  fern::Event done;
  fern::Greenlet g = fern::spawn_raw([&](int x) {
    sleep(0.001);
    ran = x == 5;
    done.set();
  }, 5);
  EXPECT_EQ(g.parent(), fern::Hub::current().greenlet());
  g = fern::Greenlet();  // dropping the handle does not kill it
  EXPECT_TRUE(done.wait_for(10.0));  // an event, not a longer sleep: no race with a slow start
  EXPECT_TRUE(ran);
}

// HUB-7: a timer's ref may change while armed.
TEST_F(Api, TimerRefChangesWhileArmed) {
  fern::Hub& hub = fern::Hub::current();
  fern::Timer t;
  t.fn = [](fern::Timer*) {};
  hub.start_timer(&t, fern::Deadline::after(10.0));
  t.set_ref(false);
  EXPECT_TRUE(hub.run_until_idle());  // does not wait 10 s
  t.set_ref(true);
  EXPECT_FALSE(hub.run_until_idle_for(0.001));
  t.unlink();
}

// HUB-13: wait() and iwait() over tasks, events, results and semaphores.
TEST_F(Api, WaitReturnsObjectsInTheOrderTheyBecameReady) {
  fern::Event ev;
  fern::AsyncResult<int> result;
  fern::Semaphore sem(0);
  auto task = spawn([] { sleep(0.002); });
  spawn([&] {
    result.set(1);
    sleep(0);
    ev.set();
    sleep(0.005);
    sem.release();
  });
  auto order = fern::wait({task, ev, result, sem});
  EXPECT_EQ(order, (std::vector<std::size_t>{2, 1, 0, 3}));
  EXPECT_EQ(sem.counter(), 1);  // watched, not taken
}

TEST_F(Api, WaitWithCountAndDeadlineAndAlreadyReadyObjects) {
  fern::Event a, b, never;
  a.set();
  auto first = fern::wait({never, a, b}, fern::WaitAny().count(1));
  EXPECT_EQ(first, (std::vector<std::size_t>{1}));
  auto timed = fern::wait({never, b}, fern::WaitAny().within(2ms));
  EXPECT_TRUE(timed.empty());
  EXPECT_EQ(never.waiter_count(), 0u);
}

TEST_F(Api, IwaitYieldsAsObjectsBecomeReadyAndUnlinksTheRest) {
  fern::Event a, b, c;
  spawn([&] {
    b.set();
    sleep(0.001);
    a.set();
  });
  {
    fern::IWait it({a, b, c});
    EXPECT_EQ(it.next(), 1u);
    EXPECT_EQ(it.next(), 0u);
  }  // c stays unconsumed: unlinked here
  c.set();
  sleep(0);
}

// An object destroyed while watched is never ready, and nothing touches it
// again: not its link's removal when the wait ends (ASan sees any use).
TEST_F(Api, WaitingOnObjectsDestroyedMeanwhileTouchesNothingOfThem) {
  auto event = std::make_unique<fern::Event>();
  auto result = std::make_unique<fern::AsyncResult<int>>();
  auto sem = std::make_unique<fern::Semaphore>(0);
  fern::Event kept;
  spawn([&] {
    event.reset();
    result.reset();
    sem.reset();
  });
  EXPECT_TRUE(fern::wait({*event, *result, *sem, kept}, fern::WaitAny().within(0.01)).empty());
  auto again = std::make_unique<fern::Event>();
  {
    fern::IWait it({*again, kept});
    again.reset();
    spawn([&] { kept.set(); });
    EXPECT_EQ(it.next(), 1u);
  }
}

// gevent's Waiter.get ("This Waiter is already used", ConcurrentObjectUseError),
// which _WaitIterator.__next__ waits in: a second greenlet's next() while one
// waits in the IWait is refused at once; before, it took the one wake-up
// slot and the first waiter was never woken (LoopExit, or a hang while
// anything else ran).
TEST_F(Api, SecondGreenletWaitingInOneIwaitIsRefused) {
  fern::Event a;
  fern::Event b;
  fern::IWait it({a, b});
  auto first = spawn([&] { return it.next(); });
  auto second = spawn([&] {
    try {
      it.next();
      return std::string("waited");
    } catch (const fern::ConcurrentObjectUseError& e) {
      return std::string(e.what());
    }
  });
  sleep(0);
  EXPECT_NE(second.get().find("another greenlet waits in it"), std::string::npos);
  b.set();
  EXPECT_EQ(first.get(), std::optional<std::size_t>(1));
  a.set();
  EXPECT_EQ(it.next(), std::optional<std::size_t>(0));  // the slot is free again
  EXPECT_EQ(it.next(), std::nullopt);
}

// An IWait destroyed (by another greenlet) while a greenlet waits in its
// next(): that next() returns empty at its deadline and writes nothing into
// the IWait's memory (it used to clear its wake-up slot there).
TEST_F(Api, IwaitDestroyedUnderItsWaiterIsNotTouchedAgain) {
  fern::Event never;
  alignas(fern::IWait) unsigned char storage[sizeof(fern::IWait)];
  auto* it = new (storage) fern::IWait({never}, fern::WaitAny().within(0.01));
  auto waiter = spawn([&] { return it->next(); });
  sleep(0);
  it->~IWait();
  std::memset(storage, 0xA5, sizeof storage);
  EXPECT_EQ(waiter.get(), std::nullopt);
  for (unsigned char byte : storage) ASSERT_EQ(byte, 0xA5);
  EXPECT_EQ(never.waiter_count(), 0u);
}

// EV-8 (rawlink(None) -> TypeError): an empty function given as a link,
// rawlink or callback is refused where it is given (std::invalid_argument),
// not found out later in the hub as a reported bad_function_call.
TEST_F(Api, EmptyLinkFunctionsAreRefusedAtOnce) {
  fern::Event event;
  fern::AsyncResult<int> result;
  fern::Semaphore semaphore;
  auto task = spawn([] { return 1; });
  EXPECT_THROW(event.rawlink(nullptr), std::invalid_argument);
  EXPECT_THROW(result.rawlink(nullptr), std::invalid_argument);
  EXPECT_THROW(semaphore.rawlink(nullptr), std::invalid_argument);
  EXPECT_THROW(task->link(nullptr), std::invalid_argument);
  EXPECT_THROW(task->link_value(nullptr), std::invalid_argument);
  EXPECT_THROW(task->link_exception(nullptr), std::invalid_argument);
  EXPECT_THROW(fern::Hub::current().run_callback(nullptr), std::invalid_argument);
  EXPECT_THROW(fern::Hub::current().run_callback_threadsafe(nullptr), std::invalid_argument);
  EXPECT_FALSE(task->has_links());
  ::testing::internal::CaptureStderr();
  event.set();
  result.set(1);
  EXPECT_EQ(task.get(), 1);
  sleep(0);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");  // nothing was linked
}

// LK-5: rawlink on a semaphore runs after a release while a permit is free.
TEST_F(Api, SemaphoreRawlinkRunsAfterRelease) {
  fern::Semaphore s(0);
  int calls = 0;
  std::size_t id = s.rawlink([&](fern::Semaphore& sem) {
    EXPECT_EQ(&sem, &s);
    ++calls;
  });
  s.release();
  sleep(0);
  EXPECT_EQ(calls, 1);
  s.unlink(id);
  s.release();
  sleep(0);
  EXPECT_EQ(calls, 1);
}

// PL-6: start on a full pool, bounded or not blocking.
TEST_F(Api, PoolStartWaitsForASlotOrGivesUp) {
  fern::Pool p(1);
  auto busy = p.spawn([] { sleep(0.005); });
  auto next = fern::Task<void>::create([] {});
  EXPECT_FALSE(p.try_start(next.core()));
  EXPECT_FALSE(p.start_for(next.core(), 1ms));
  EXPECT_FALSE(next.started());
  EXPECT_TRUE(p.start_for(next.core(), 1s));
  p.join();
  EXPECT_TRUE(next.dead());
}

// PL-3: killone on a member already being killed delivers nothing more and
// does not wait for it.
TEST_F(Api, KilloneOnADyingMemberDoesNotKillTwice) {
  fern::Group g;
  int exits = 0;
  auto slow = g.spawn([&] {
    try {
      sleep(1);
    } catch (const fern::GreenletExit&) {
      ++exits;
      try {
        sleep(0.002);  // dies slowly
      } catch (const fern::GreenletExit&) {
        ++exits;
      }
      throw;
    }
  });
  sleep(0);
  g.killone_async(slow);
  sleep(0);
  EXPECT_FALSE(g.killone(slow));  // already dying: returns at once
  g.kill();
  EXPECT_EQ(exits, 1);
}

// every stored item counts, also through a Queue<T>&.
TEST_F(Api, JoinableQueueCountsPutsMadeThroughAQueueReference) {
  fern::JoinableQueue<int> jq;
  fern::Queue<int>& q = jq;
  q.put(1);
  EXPECT_EQ(jq.unfinished_tasks(), 1u);
  EXPECT_FALSE(jq.join_for(1ms));
  EXPECT_EQ(jq.get(), 1);
  jq.task_done();
  EXPECT_TRUE(jq.join_for(1ms));
}

// PL-8: a maxsize past what a semaphore counts means no bound.
TEST_F(Api, ImapWithAHugeMaxsizeWorks) {
  fern::Pool p(2);
  std::vector<int> in{1, 2, 3};
  std::vector<int> out;
  for (int x : p.imap([](int v) { return v * 2; }, in, static_cast<std::size_t>(-1))) out.push_back(x);
  EXPECT_EQ(out, (std::vector<int>{2, 4, 6}));
}

}  // namespace
