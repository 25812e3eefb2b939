// C++ twins of gevent's own tests for the sync primitives that the other
// sync tests did not cover yet (gevent 04752c4, src/gevent/tests/): each
// test names its upstream case. SEMANTICS EV-2 .. EV-4, EV-7, HUB-13, Q-2,
// Q-6 .., LK-1, LK-5, PL-1 .. PL-7, F7, F8.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/channel.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "fern/sync/wait_any.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Twin = fern::testing::HubTest;

struct MyException : std::runtime_error {
  MyException() : std::runtime_error("interrupted") {}
};

// test__event.py TestGeventWaitOnEvent::test_set_during_wait (issue 771):
// a wait() on an event cleared inside its own notification round is not
// answered by that round.
TEST_F(Twin, EventWaitOnAnEventClearedDuringItsRoundTimesOut) {
  fern::Event event;
  auto waiter = spawn([&] {
    auto setter = spawn([&] { event.set(); });
    EXPECT_TRUE(event.wait_for(10.0));
    EXPECT_TRUE(event.ready());
    setter.join();
    event.clear();
    EXPECT_FALSE(event.ready());
    auto ready = fern::wait({event}, fern::WaitAny().within(0.01));
    EXPECT_FALSE(event.ready());
    EXPECT_TRUE(ready.empty());
  });
  waiter.join();
}

// test__event.py TestEventBasics::test_gevent_wait_twice_when_already_set
TEST_F(Twin, EventWaitTwiceWhenAlreadySet) {
  fern::Event event;
  event.set();
  EXPECT_EQ(fern::wait({event}), std::vector<std::size_t>{0});
  EXPECT_EQ(fern::wait({event}), std::vector<std::size_t>{0});
}

// test__event.py TestEvent_SetThenClear1000 (F10)
TEST_F(Twin, EventSetThenClearWakesAThousandWaitersWithTrue) {
  fern::Event event;
  std::vector<fern::Task<bool>> ts;
  for (int i = 0; i < 1000; ++i) ts.push_back(spawn([&] { return event.wait_for(10.0); }));
  sleep(0);
  event.set();
  event.clear();
  for (auto& t : ts) EXPECT_TRUE(t.get());
}

// test__event.py TestAsyncResultWait / TestWaitAsyncResult / TestAsyncResultGet
// / TestEventWait (AbstractGenericWaitTestCase): a timed wait on an object
// nobody sets returns after the timeout (lower bound only), with no result.
TEST_F(Twin, TimedWaitsOnUnsetObjectsReturnEmpty) {
  fern::Event e;
  fern::AsyncResult<int> ar;
  auto t0 = fern::monotonic_now();
  EXPECT_FALSE(e.wait_for(0.005));
  EXPECT_FALSE(ar.wait_for(0.005));
  EXPECT_TRUE(fern::wait({ar}, fern::WaitAny().within(0.005)).empty());
  EXPECT_TRUE(fern::wait({e}, fern::WaitAny().within(0.005)).empty());
  EXPECT_THROW(ar.get_for(0.005), fern::Timeout);
  EXPECT_GE(fern::monotonic_now() - t0, fern::Nanos{25'000'000});
}

// test__event.py TestAsyncResult::test_link
TEST_F(Twin, AsyncResultRawlinkRefusesAnEmptyFunctionAndUnlinkOfNothingIsHarmless) {
  fern::AsyncResult<int> ar;
  EXPECT_THROW(ar.rawlink(nullptr), std::invalid_argument);
  ar.unlink(0);
  ar.unlink(12345);
}

// test__event.py TestAsyncResult::test_set_exc
TEST_F(Twin, AsyncResultSetExceptionIsCaughtByTheWaiter) {
  fern::AsyncResult<int> e;
  EXPECT_EQ(e.exception(), nullptr);
  auto waiter = spawn([&] {
    try {
      e.get();
    } catch (const MyException&) {
      log.push_back("caught");
    }
  });
  sleep(0);
  e.set_exception(std::make_exception_ptr(MyException()));
  sleep(0);
  EXPECT_EQ(log, Vec{"caught"});
  waiter.join();
}

// test__event.py TestAsyncResult::test_set: a Timeout of 0 with an
// exception fires before a set that comes later.
TEST_F(Twin, AsyncResultGetUnderAZeroTimeoutRaisesItsException) {
  fern::AsyncResult<std::string> event1;
  auto g = fern::spawn_later(0.05, [&] { event1.set("hello event1"); });
  {
    fern::TimeoutScope scope(fern::Timeout(0.0, std::make_exception_ptr(MyException())));
    EXPECT_THROW(event1.get(), MyException);
  }
  g.kill();
}

// test__event.py TestAsyncResult::test_set_with_timeout, test_nonblocking_get
TEST_F(Twin, AsyncResultWithTimeoutValueAndNonblockingGet) {
  fern::AsyncResult<int> event2;
  EXPECT_EQ(fern::with_timeout(0.005, [&] { return event2.get(); }, -7), -7);
  EXPECT_THROW(event2.get_nowait(), fern::Timeout);
  EXPECT_THROW(event2.get_until(fern::Deadline::at(0)), fern::Timeout);
}

// test__event.py TestWait (count None / 1 / 2, and no timeout)
TEST_F(Twin, WaitOnEventsAndResultsHonoursCount) {
  for (std::size_t count : {0u, 1u, 2u}) {
    std::vector<std::unique_ptr<fern::Event>> events;
    std::vector<std::unique_ptr<fern::AsyncResult<void>>> asyncs;
    std::vector<fern::Waitable> all;
    for (int i = 0; i < 5; ++i) events.push_back(std::make_unique<fern::Event>());
    for (int i = 0; i < 5; ++i) asyncs.push_back(std::make_unique<fern::AsyncResult<void>>());
    for (auto& e : events) all.emplace_back(*e);
    for (auto& a : asyncs) all.emplace_back(*a);
    auto sender = spawn([&] {
      for (int i = 4; i >= 0; --i) {
        sleep(0.0001);
        events[i]->set();
        sleep(0.0001);
        asyncs[i]->set();
      }
    });
    auto results = fern::wait(all, fern::WaitAny().count(count));
    if (count == 0) {
      EXPECT_EQ(results.size(), 10u);
      EXPECT_TRUE(sender.ready());
    } else {
      EXPECT_EQ(results.size(), count);
      EXPECT_FALSE(sender.ready());
      sender.kill();
    }
    EXPECT_EQ(results[0], 4u);  // events.pop() is the last one
  }
}

// test__queue.py TestSimpleQueue::test_get_nowait_simple: get_nowait from
// loop callbacks: the first gets the item, the second QueueEmpty.
TEST_F(Twin, QueueGetNowaitFromLoopCallbacks) {
  fern::Queue<int> q(1);
  q.put(4);
  for (int i = 0; i < 2; ++i)
    fern::Hub::current().run_callback([&] {
      try {
        log.push_back(std::to_string(q.get_nowait()));
      } catch (const fern::QueueEmpty&) {
        log.push_back("Empty");
      }
    });
  sleep(0);
  EXPECT_EQ(log, (Vec{"4", "Empty"}));
}

// test__queue.py TestSimpleQueue::test_get_nowait_unlock: a get_nowait in
// a loop callback lets a parked putter's item through and the putter ends.
TEST_F(Twin, QueueGetNowaitFromALoopCallbackUnblocksThePutter) {
  fern::Queue<int> q(1);
  auto p = spawn([&] { q.put(5); });
  EXPECT_TRUE(q.empty());
  sleep(0);
  EXPECT_TRUE(q.full());
  std::vector<int> result;
  fern::Hub::current().run_callback([&] { result.push_back(q.get_nowait()); });
  sleep(0);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(result, std::vector<int>{5});
  p.join();
  EXPECT_TRUE(p.dead());
}

// test__queue.py TestSimpleQueue::test_send_first, test_peek_multi_greenlet
TEST_F(Twin, QueuePeekThenGetAndPeekFromAnotherGreenlet) {
  fern::Queue<std::string> q;
  q.put("hi");
  EXPECT_EQ(q.peek(), "hi");
  EXPECT_EQ(q.get(), "hi");
  fern::Queue<int> q2;
  auto g = spawn([&] { return q2.peek(); });
  sleep(0);
  q2.put(1);
  EXPECT_EQ(g.get(), 1);
  EXPECT_EQ(q2.peek(), 1);
}

// test__queue.py TestSimpleQueue::test_peek_empty
TEST_F(Twin, QueuePeekOnEmptyIsLoopExitInMainAndEmptyWithATimeout) {
  fern::Queue<int> q;
  EXPECT_THROW(q.peek(), fern::LoopExit);
  auto g = spawn([&] { return q.peek_for(0.01); });
  EXPECT_FALSE(g.get().has_value());
}

// test__queue.py TestSimpleQueue::test_multiple_waiters
TEST_F(Twin, QueueMultipleWaitersEachGetOneItem) {
  fern::Queue<std::string> q;
  std::vector<std::unique_ptr<fern::AsyncResult<std::string>>> evts;
  for (int i = 0; i < 4; ++i) evts.push_back(std::make_unique<fern::AsyncResult<std::string>>());
  std::vector<fern::Task<void>> ts;
  for (auto& e : evts) ts.push_back(spawn([&q, ev = e.get()] { ev->set(q.get()); }));
  sleep(0.01);
  auto collect = [&] {
    std::size_t n = 0;
    for (auto& e : evts) {
      fern::Timeout::silently(0.001, [&] { e->wait(); });
      n += e->ready();
    }
    return n;
  };
  q.put("1");
  EXPECT_EQ(collect(), 1u);
  q.put("2");
  EXPECT_EQ(collect(), 2u);
  q.put("3");
  q.put("4");
  EXPECT_EQ(collect(), 4u);
  fern::joinall(ts);
}

// test__queue.py TestSimpleQueue::test_waiters_that_cancel,
// test_two_bogus_waiters
TEST_F(Twin, QueueGettersCancelledByAZeroTimeoutTakeNothing) {
  fern::Queue<std::string> q;
  auto do_receive = [&] {
    try {
      fern::TimeoutScope scope(fern::Timeout(0.0, std::make_exception_ptr(std::runtime_error("t"))));
      return q.get();
    } catch (const std::runtime_error&) {
      return std::string("timed out");
    }
  };
  auto e1 = spawn(do_receive);
  auto e2 = spawn(do_receive);
  EXPECT_EQ(e1.get(), "timed out");
  EXPECT_EQ(e2.get(), "timed out");
  q.put("sent");
  EXPECT_EQ(q.get(), "sent");
}

// test__queue.py TestSimpleQueue::test_two_waiters_one_dies
TEST_F(Twin, QueueTwoWaitersOneDies) {
  fern::Queue<std::string> q;
  auto dying = spawn([&] {
    try {
      fern::TimeoutScope scope(fern::Timeout(0.0, std::make_exception_ptr(std::runtime_error("t"))));
      return q.get();
    } catch (const std::runtime_error&) {
      return std::string("timed out");
    }
  });
  auto waiting = spawn([&] { return q.get(); });
  sleep(0.1);
  q.put("hi");
  EXPECT_EQ(dying.get(), "timed out");
  EXPECT_EQ(waiting.get(), "hi");
}

// test__queue.py TestQueue::test_task_done
TEST_F(Twin, JoinableQueueJoinWaitsForEveryTaskDone) {
  fern::JoinableQueue<int> q;
  EXPECT_FALSE(q.join_for(0.0) && q.unfinished_tasks() != 0);
  int total = 0;
  bool done = false;
  std::vector<fern::Task<void>> workers;
  for (int i = 0; i < 10; ++i)
    workers.push_back(spawn([&] {
      for (;;) {
        int x = q.get();
        if (x < 0) {
          q.task_done();
          return;
        }
        total += x;
        q.task_done();
      }
    }));
  for (int i = 0; i < 20; ++i) q.put(i);
  q.join();
  done = q.unfinished_tasks() == 0;
  EXPECT_TRUE(done);
  EXPECT_EQ(total, 190);
  for (int i = 0; i < 10; ++i) q.put(-1);
  q.join();
  fern::joinall(workers);
}

// test__queue.py TestQueue::test_issue_45: join on a queue nothing was put
// in returns at once.
TEST_F(Twin, JoinableQueueJoinWithNothingPutReturnsAtOnce) {
  fern::JoinableQueue<int> q;
  q.join();
  EXPECT_TRUE(q.join_for(0.0));
}

// test__queue.py TestChannel::test_get_nowait_unlock_channel
TEST_F(Twin, ChannelGetNowaitFromALoopCallbackUnblocksThePutter) {
  fern::Channel<int> ch;
  auto p = spawn([&] { ch.put(5); });
  EXPECT_TRUE(ch.empty());
  EXPECT_TRUE(ch.full());
  sleep(0);
  EXPECT_EQ(ch.balance(), 1);
  std::vector<int> result;
  fern::Hub::current().run_callback([&] { result.push_back(ch.get_nowait()); });
  sleep(0);
  EXPECT_EQ(result, std::vector<int>{5});
  p.join();
  EXPECT_EQ(ch.balance(), 0);
}

// test__queue.py TestChannel::test_wait: the sequence of two rendezvous.
TEST_F(Twin, ChannelWaitSequence) {
  fern::Channel<std::string> ch;
  auto sender = spawn([&] {
    log.push_back("sending");
    ch.put("hello");
    log.push_back("sent hello");
    ch.put("world");
    log.push_back("sent world");
  });
  sleep(0);
  EXPECT_EQ(log, Vec{"sending"});
  log.push_back(ch.get());
  log.push_back(ch.get());
  sender.join();
  EXPECT_EQ(log, (Vec{"sending", "hello", "sent hello", "world", "sent world"}));
}

// test__queue.py TestGetInterrupt / TestPutInterrupt (each queue kind): a
// timed get on an empty queue and a timed put on a full one come back empty.
template <class Q>
void timed_get_and_put_come_back_empty() {
  Q q(1);
  EXPECT_FALSE(q.get_for(0.001).has_value());
  q.put(1);
  EXPECT_FALSE(q.put_for(2, 0.001));
  EXPECT_EQ(q.qsize(), 1u);
}
TEST_F(Twin, InterruptedGetAndPutOnEveryQueueKind) {
  timed_get_and_put_come_back_empty<fern::Queue<int>>();
  timed_get_and_put_come_back_empty<fern::LifoQueue<int>>();
  timed_get_and_put_come_back_empty<fern::PriorityQueue<int>>();
  timed_get_and_put_come_back_empty<fern::JoinableQueue<int>>();
  fern::Channel<int> ch;
  EXPECT_FALSE(ch.get_for(0.001).has_value());
  EXPECT_FALSE(ch.put_for(2, 0.001));
}

// test__semaphore.py TestSemaphore::test_acquire_returns_false_after_timeout
TEST_F(Twin, SemaphoreAcquireReturnsFalseAfterTimeout) {
  fern::Semaphore s(0);
  EXPECT_FALSE(s.acquire_for(0.01));
}

// test__semaphore.py TestSemaphore::test_release_twice
TEST_F(Twin, SemaphoreRawlinkRunsOnceForTwoReleases) {
  fern::Semaphore s(1);
  std::vector<long> result;
  s.rawlink([&](fern::Semaphore& sem) { result.push_back(sem.counter()); });
  s.release();
  s.release();
  sleep(0.001);  // a timer: after every callback (F4)
  EXPECT_EQ(result, std::vector<long>{3});
}

// test__semaphore.py TestSemaphore::test_rawlink_on_unacquired_runs_notifiers
TEST_F(Twin, SemaphoreWaitOnAFreeSemaphoreReturnsAtOnce) {
  fern::Semaphore s(1);
  EXPECT_EQ(fern::wait({s}), std::vector<std::size_t>{0});
  EXPECT_EQ(s.counter(), 1);
}

// test__greenletset.py Test::test_basic, test_waitall
TEST_F(Twin, GroupBasicAndWaitall) {
  fern::Group s;
  for (double d : {0.001, 0.002, 0.003}) s.spawn([d] { sleep(d); });
  EXPECT_EQ(s.size(), 3u);
  s.join();
  EXPECT_EQ(s.size(), 0u);
  for (double d : {0.001, 0.002, 0.003}) s.spawn([d] { sleep(d); });
  EXPECT_TRUE(s.join_for(1.0));
  EXPECT_EQ(s.size(), 0u);
}

// test__greenletset.py Test::test_kill_block, test_kill_noblock
TEST_F(Twin, GroupKillBlockAndNoblock) {
  fern::Group s;
  for (double d : {1.0, 2.0, 3.0}) s.spawn([d] { sleep(d); });
  s.kill();
  EXPECT_EQ(s.size(), 0u);
  for (double d : {1.0, 2.0, 3.0}) s.spawn([d] { sleep(d); });
  sleep(0);
  EXPECT_FALSE(s.kill_async());
  EXPECT_EQ(s.size(), 3u);
  s.join();
  EXPECT_EQ(s.size(), 0u);
}

// test__pool.py TestCoroutinePool::test_apply_raises, TestErrorInHandler
TEST_F(Twin, PoolApplyRaisesAndMapRaisesTheWorkersError) {
  fern::Pool pool(1);
  EXPECT_THROW(pool.apply([]() -> int { throw std::runtime_error("x"); }), std::runtime_error);
  std::vector<int> in{1, 2, 3};
  EXPECT_THROW(pool.map([](int) -> int { throw std::runtime_error("x"); }, in), std::runtime_error);
  pool.join();
}

// test__pool.py TestCoroutinePool::test_multiple_coros: a pool member
// waiting on an event set by a later member.
TEST_F(Twin, PoolMultipleCoros) {
  fern::Pool pool(2);
  fern::Event evt;
  std::vector<std::string> results;
  pool.spawn([&] {
    results.push_back("prod");
    evt.set();
  });
  pool.spawn([&] {
    evt.wait();
    results.push_back("cons1");
  });
  pool.join();
  EXPECT_EQ(results, (Vec{"prod", "cons1"}));
}

// test__pool.py TestCoroutinePool::test_reentrant: apply from a member of a
// full pool of size 1 runs inline.
TEST_F(Twin, PoolReentrantApply) {
  fern::Pool pool(1);
  int result = pool.apply([&] { return pool.apply([] { return 42; }); });
  EXPECT_EQ(result, 42);
}

// test__pool.py PoolBasicTests::test_execute_async, test_discard
TEST_F(Twin, PoolExecuteAsyncAndDiscard) {
  fern::Pool p(2);
  fern::Queue<int> q;
  auto r1 = p.spawn([&] { q.put(1); });
  auto r2 = p.spawn([&] { q.put(2); });
  EXPECT_EQ(p.free_count(), 0u);
  auto r3 = p.spawn([&] { q.put(3); });  // blocks until a slot frees
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 2);
  EXPECT_EQ(q.get(), 3);
  p.join();
  fern::Pool d;
  auto g = d.spawn([] { sleep(0.001); });
  EXPECT_TRUE(d.contains(g));
  d.discard(g);
  EXPECT_FALSE(d.contains(g));
  g.join();
}

// test__pool.py PoolBasicTests::test_add_method_non_blocking,
// test_add_method_timeout, test_start_method_timeout
TEST_F(Twin, PoolAddAndStartWithoutBlockingOrWithATimeout) {
  fern::Pool p(1);
  auto first = fern::Task<void>::create([] { sleep(0.01); });
  auto second = fern::Task<void>::create([] {});
  p.add(first.core());
  first->start();
  EXPECT_FALSE(p.try_add(second.core()));
  EXPECT_FALSE(p.add_for(second.core(), 0.001));
  EXPECT_FALSE(p.start_for(second.core(), 0.001));
  EXPECT_FALSE(p.contains(second));
  first.join();
  second.kill();
}

// test__pool.py TestPool::test_empty_imap_unordered, test_empty_imap,
// test_empty_map
TEST_F(Twin, PoolEmptyMapsYieldNothing) {
  fern::Pool p(3);
  std::vector<int> none;
  auto sq = [](int x) { return x * x; };
  EXPECT_TRUE(p.map(sq, none).empty());
  EXPECT_FALSE(p.imap(sq, none).next().has_value());
  EXPECT_FALSE(p.imap_unordered(sq, none).next().has_value());
}

// test__pool.py TestPool::test_imap_unordered_sleep (PL-9)
TEST_F(Twin, PoolImapUnorderedOrderDependsOnSize) {
  auto run = [](long size) {
    fern::Pool p(size);
    std::vector<int> in{10, 1, 2};
    std::vector<int> out;
    // Sleeps 10 ms apart: the order holds unless a member starts 80 ms late
    // (a sanitizer build once started them 8 ms apart).
    for (int x : p.imap_unordered([](int v) { sleep(v * 0.01); return v; }, in)) out.push_back(x);
    return out;
  };
  EXPECT_EQ(run(1), (std::vector<int>{10, 1, 2}));
  EXPECT_EQ(run(10), (std::vector<int>{1, 2, 10}));
}

// test__pool.py TestErrorInHandler::test_imap / test_imap_unordered (PL-7):
// the error at its position, then the rest.
TEST_F(Twin, PoolImapErrorInTheMiddleThenTheRest) {
  fern::Pool p(1);
  std::vector<int> in{1, 2, 3};
  auto f = [](int x) -> int {
    if (x == 2) throw std::runtime_error("2");
    return x;
  };
  auto it = p.imap(f, in);
  EXPECT_EQ(it.next(), 1);
  EXPECT_THROW(it.next(), std::runtime_error);
  EXPECT_EQ(it.next(), 3);
  EXPECT_FALSE(it.next().has_value());
  auto un = p.imap_unordered(f, in);
  EXPECT_EQ(un.next(), 1);
  EXPECT_THROW(un.next(), std::runtime_error);
  EXPECT_EQ(un.next(), 3);
  EXPECT_FALSE(un.next().has_value());
  p.join();
}

// test__pool.py TestPool0::test_wait_full
TEST_F(Twin, PoolOfSizeZeroWaitAvailableReturnsZero) {
  fern::Pool p(0);
  EXPECT_EQ(p.free_count(), 0u);
  EXPECT_EQ(p.wait_available_for(0.001), 0);
}

// test__pool.py TestJoinEmpty, TestSpawn
TEST_F(Twin, PoolJoinEmptyAndSpawnCounts) {
  fern::Pool p(1);
  p.join();
  EXPECT_TRUE(p.join_for(0.0));
  EXPECT_EQ(p.size(), 0u);
  p.spawn([] { sleep(0.001); });
  EXPECT_EQ(p.size(), 1u);
  p.spawn([] { sleep(0.001); });  // waits for the first to end
  EXPECT_EQ(p.size(), 1u);
  p.join();
  EXPECT_EQ(p.size(), 0u);
}

}  // namespace
