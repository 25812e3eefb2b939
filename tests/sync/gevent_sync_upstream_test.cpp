// Ported from gevent's own tests of the sync layer that the other sync tests
// did not port yet (gevent 04752c4, src/gevent/tests/: test__iwait.py,
// test__local.py, test__event.py). Each test names its upstream case and
// the SEMANTICS ids it covers.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/local.h"
#include "fern/sync/remote.h"
#include "fern/sync/semaphore.h"
#include "fern/sync/wait_any.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using GeventSyncUpstream = fern::testing::HubTest;

// test__iwait.py::Testiwait::test_noiter (HUB-13, LK-5): a free semaphore
// is ready at once, first in list order.
TEST_F(GeventSyncUpstream, IWaitYieldsAFreeSemaphoreAtOnce) {
  fern::Semaphore sem1, sem2;
  auto let = spawn([&] { sem1.release(); });
  fern::IWait it({sem1, sem2});
  EXPECT_EQ(it.next(), 0u);
  let.join();
}

// test__iwait.py::Testiwait::test_iwait_partial, test_iwait_nogarbage
// (HUB-13): an IWait consumed in part and then dropped unlinks from the
// objects it did not yield; releasing them afterwards touches nothing.
TEST_F(GeventSyncUpstream, IWaitConsumedInPartUnlinksWhenItGoes) {
  for (bool timed : {true, false}) {
    fern::Semaphore sem1, sem2;
    sem1.acquire();
    sem2.acquire();
    auto let = spawn([&] { sem1.release(); });
    {
      fern::IWait it({sem1, sem2}, timed ? fern::WaitAny().within(0.01) : fern::WaitAny());
      EXPECT_EQ(it.next(), 0u);
      EXPECT_EQ(sem2.counter(), 0);
    }
    sem2.release();
    sleep(0);
    EXPECT_EQ(sem2.counter(), 1);
    let.get();
  }
}

// test__local.py::TestGeventLocal::test_attribute_error (LOC-1): a value
// another greenlet made is not this greenlet's.
TEST_F(GeventSyncUpstream, LocalSetInAnotherGreenletIsNotSetHere) {
  fern::local<std::string> fizz_buzz;
  EXPECT_FALSE(fizz_buzz.has_value());
  spawn([&] { *fizz_buzz = "1"; }).join();
  EXPECT_FALSE(fizz_buzz.has_value());
}

// test__local.py::TestGeventLocal::test_objects (LOC-1): two locals of one
// type are independent.
TEST_F(GeventSyncUpstream, TwoLocalsAreIndependent) {
  fern::local<std::string> a, b;
  *a = "123";
  *b = "123";
  EXPECT_EQ(*a, *b);
  *b = "321";
  EXPECT_NE(*a, *b);
}

struct Sentinel {
  static inline int created = 0;
  static inline int deleted = 0;
  Sentinel() { ++created; }
  ~Sentinel() { ++deleted; }
};

// test__local.py::test_locals_collected_when_greenlet_dead_but_still_referenced
// (LOC-3, gevent issue 387): values of ended tasks go though the tasks are
// still referenced.
TEST_F(GeventSyncUpstream, LocalValuesGoWhenTheirTaskEndsThoughItIsReferenced) {
  Sentinel::created = Sentinel::deleted = 0;
  fern::local<Sentinel> my_local;
  std::vector<fern::Task<void>> greenlets;
  for (int i = 0; i < 5; ++i) greenlets.push_back(spawn([&] { (void)*my_local; }));
  sleep(0);
  EXPECT_EQ(Sentinel::created, 5);
  for (auto& g : greenlets) EXPECT_TRUE(g.dead());
  sleep(0);
  EXPECT_EQ(Sentinel::deleted, 5);
}

// test__local.py::test_locals_collected_when_unreferenced_even_in_running_greenlet
// (LOC-3, gevent issue 981): a local dropped while its greenlet runs takes
// its value along, and leaves nothing on the task.
TEST_F(GeventSyncUpstream, LocalValuesGoWithTheLocalWhileTheirTaskRuns) {
  Sentinel::created = Sentinel::deleted = 0;
  constexpr int kCount = 1000;
  fern::Task<void> running;
  running = spawn([&] {
    for (int i = 0; i < kCount; ++i) {
      fern::local<Sentinel> x;
      (void)*x;
    }
    EXPECT_EQ(Sentinel::created, kCount);
    EXPECT_EQ(Sentinel::deleted, kCount);
    EXPECT_FALSE(running->has_links());
  });
  sleep(0);
  running.join();
  EXPECT_EQ(Sentinel::deleted, kCount);
}

// test__event.py::TestEvent_SetThenClear, TestEvent_SetThenClear100 (F10,
// EV-2): set then clear before the waiters run still wakes each with true.
TEST_F(GeventSyncUpstream, EventSetThenClearWakesEveryWaiterWithTrue) {
  for (int n : {1, 100}) {
    fern::Event e;
    std::vector<fern::Task<bool>> waiters;
    for (int i = 0; i < n; ++i) waiters.push_back(spawn([&] { return e.wait_until(fern::Deadline::never()); }));
    sleep(0);
    e.set();
    e.clear();
    for (auto& w : waiters) EXPECT_TRUE(w.get());
    EXPECT_FALSE(e.is_set());
  }
}

// test__event.py::TestAsyncResultCrossThread::test_cross_thread_use(_bg,
// _timed, _timed_bg) and TestEventCrossThread (EV-9, gevent issue 1739):
// another thread, whose hub also runs a greenlet that spins on timed waits,
// waits (timed or not, in its main greenlet or in a task) on a primitive
// that this thread sets through its handle; the waiter wakes with the value.
template <class Primitive, class Wait, class Set>
void cross_thread_use(bool timed_wait, bool wait_in_bg, Wait wait, Set set) {
  std::promise<fern::Remote<Primitive>> handle;
  std::string result = "<never set>";
  std::thread thread([&] {
   {
    Primitive primitive;
    fern::Event g_event;
    auto glet = spawn([&] {
      while (!g_event.is_set()) g_event.wait_for(0.2);
    });
    handle.set_value(primitive.remote());
    auto work = [&] { result = wait(primitive, timed_wait); };
    if (wait_in_bg) {
      spawn(work).join();
    } else {
      work();
    }
    g_event.set();
    glet.join();
   }
    fern::Hub::destroy_current();
  });
  fern::Remote<Primitive> remote = handle.get_future().get();
  EXPECT_TRUE(set(remote));
  remote = fern::Remote<Primitive>();
  thread.join();
  EXPECT_EQ(result, "from main");
}

TEST_F(GeventSyncUpstream, CrossThreadSetWakesAWaiterInABusyHub) {
  for (int variant = 0; variant < 4; ++variant) {
    bool timed = variant & 1, bg = variant & 2;
    SCOPED_TRACE(variant);
    cross_thread_use<fern::AsyncResult<std::string>>(
        timed, bg,
        [](fern::AsyncResult<std::string>& r, bool timed_wait) {
          return timed_wait ? r.get_for(60) : r.get();
        },
        [](const fern::Remote<fern::AsyncResult<std::string>>& r) { return r.set(std::string("from main")); });
    cross_thread_use<fern::Event>(
        timed, bg,
        [](fern::Event& e, bool timed_wait) {
          bool woke = true;
          if (timed_wait) {
            woke = e.wait_for(60);
          } else {
            e.wait();
          }
          return std::string(woke ? "from main" : "<timed out>");
        },
        [](const fern::Remote<fern::Event>& e) { return e.set(); });
  }
}

// test__event.py::TestAsyncResultCrossThread::test_cross_thread_use_set_in_bg
// (EV-9): another thread sets a result this thread waits on.
TEST_F(GeventSyncUpstream, AResultSetInAnotherThreadWakesThisOne) {
  fern::AsyncResult<std::string> result;
  std::thread thread([remote = result.remote()] { EXPECT_TRUE(remote.set(std::string("from main"))); });
  EXPECT_EQ(result.get(), "from main");
  thread.join();
}

// test__hub_join_timeout.py::Test::test_event (HUB-6, HUB-13): wait() on
// an event returns when a timer sets it, though another task's start is
// still armed for much later; a wait() with no objects then has work left
// until that task is killed.
TEST_F(GeventSyncUpstream, WaitOnAnEventReturnsWhileOtherWorkRemains) {
  for (int round = 0; round < 2; ++round) {
    auto x = fern::spawn_later(10, [] { return 5; });
    fern::Event event;
    // spawn_later counts from the loop's cached clock (F14): the lower bound
    // is measured from a refreshed one, after `start`.
    auto start = std::chrono::steady_clock::now();
    fern::Hub::current().update_now();
    auto event_set = fern::spawn_later(0.01, [&] { event.set(); });
    EXPECT_EQ(fern::wait({event}), std::vector<std::size_t>{0});
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(10));
    EXPECT_FALSE(x.dead());
    EXPECT_TRUE(event_set.dead());
    EXPECT_TRUE(event.is_set());
    EXPECT_FALSE(fern::Hub::current().run_until_idle_for(0.001));
    x.kill();
    EXPECT_TRUE(fern::Hub::current().run_until_idle());
  }
}

// test__lock.py::TestLockReinitAfterFork::test_it (gevent issue 1895): a
// process forked while a semaphore's wake-up round is pending (from main,
// or from the task that released it) finishes that round in the child as
// in the parent: the waiter gets the permit in both.
TEST_F(GeventSyncUpstream, ForkWhileASemaphoreRoundIsPendingFinishesItInBoth) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer models greenlets as threads and does not follow them into a fork child";
#endif
  for (bool in_task : {false, true}) {
    fern::Semaphore sem;
    sem.acquire();
    bool got = false;
    auto waiter = spawn([&] {
      sem.acquire();
      got = true;
      sem.release();
    });
    sleep(0);
    ASSERT_EQ(sem.waiter_count(), 1u);
    pid_t pid = -1;
    auto fork_now = [&] {
      sem.release();
      pid = fork();
      if (pid == 0) {
        alarm(10);
        waiter.join();
        _exit(got && sem.counter() == 1 ? 0 : 1);
      }
    };
    if (in_task) {
      spawn(fork_now).join();
    } else {
      fork_now();
    }
    ASSERT_GT(pid, 0);
    waiter.join();
    EXPECT_TRUE(got);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
}

}  // namespace
