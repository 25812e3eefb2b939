// Semaphore, BoundedSemaphore, DummySemaphore, Lock, RLock: SEMANTICS
// LK-1 .. LK-4, LK-6, F7, F9, TO-10, probe sequences S9, S10, seed 26.
#include "fern/sync/semaphore.h"

#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/group.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Semaphores = fern::testing::HubTest;
using RLocks = fern::testing::HubTest;

// S9, F7, LK-3
TEST_F(Semaphores, ReleaseDoesNotSwitchAndWaitersAcquireFifo) {
  fern::Semaphore sem(0);
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 4; ++n)
    tasks.push_back(spawn([&, n] {
      log.push_back("try-" + std::to_string(n));
      sem.acquire();
      log.push_back("got-" + std::to_string(n));
    }).core());
  sleep(0);
  sem.release();
  sem.release();
  log.push_back("released x2");
  sleep(0);
  log.push_back("after sleep0");
  sem.release();
  sem.release();
  sleep(0);
  EXPECT_EQ(log, (Vec{"try-0", "try-1", "try-2", "try-3", "released x2", "got-0", "got-1", "after sleep0", "got-2",
                      "got-3"}));
  fern::joinall(tasks);
}

// S10, F9
TEST_F(Semaphores, ReleaserThatAcquiresAgainKeepsThePermit) {
  fern::Semaphore sem(1);
  auto hog = spawn([&] {
    for (int i = 0; i < 3; ++i) {
      sem.acquire();
      log.push_back("hog-" + std::to_string(i));
      sleep(0);
      sem.release();
    }
  });
  auto other = [&](int n) {
    sem.acquire();
    log.push_back("other-" + std::to_string(n));
    sem.release();
  };
  fern::joinall({hog.core(), spawn(other, 1).core(), spawn(other, 2).core()});
  EXPECT_EQ(log, (Vec{"hog-0", "hog-1", "hog-2", "other-1", "other-2"}));
}

// LK-3 (TestSemaphoreFair::test_fair_or_hangs): the early waiter gets the
// permit although two greenlets keep passing it between new greenlets.
TEST_F(Semaphores, WaiterIsNotStarvedByGreenletsThatKeepSpawning) {
  fern::Semaphore sem;
  bool should_quit = false;
  std::function<void()> acquire_then_spawn, release_then_spawn;
  acquire_then_spawn = [&] {
    if (should_quit) return;
    sem.acquire();
    spawn(release_then_spawn).join();
  };
  release_then_spawn = [&] {
    sem.release();
    if (should_quit) return;
    spawn(acquire_then_spawn).join();
  };
  auto keep_going1 = spawn(acquire_then_spawn);
  auto keep_going2 = spawn(acquire_then_spawn);
  auto exiting = spawn([&] {
    sem.acquire();
    should_quit = true;
  });
  EXPECT_THROW(fern::joinall({keep_going1.core(), keep_going2.core(), exiting.core()}), fern::LoopExit);
  EXPECT_TRUE(exiting.dead());
  EXPECT_TRUE(keep_going2.dead());
  EXPECT_FALSE(keep_going1.dead());
  sem.release();
  keep_going1.kill();
  fern::idle();
}

// LK-1 (probe LK1)
TEST_F(Semaphores, ApiFollowsGevent) {
  fern::Semaphore s(1);
  EXPECT_TRUE(s.acquire_until(fern::Deadline::never()));
  EXPECT_EQ(s.counter(), 0);
  EXPECT_FALSE(s.try_acquire());
  EXPECT_FALSE(s.acquire_for(0.01));
  EXPECT_TRUE(s.locked());
  EXPECT_EQ(s.waiter_count(), 0u);
  s.release();
  EXPECT_EQ(s.release(), 2);  // above the initial value is allowed
  EXPECT_EQ(s.counter(), 2);
  EXPECT_THROW(fern::Semaphore(-1), std::invalid_argument);
  EXPECT_THROW(fern::BoundedSemaphore(-1), std::invalid_argument);
}

// LK-2
TEST_F(Semaphores, BoundedSemaphoreRejectsReleasesPastItsInitialValue) {
  fern::BoundedSemaphore b(1);
  EXPECT_THROW(b.release(), fern::SemaphoreReleasedTooManyTimes);
  fern::Lock lock;
  lock.acquire();
  lock.release();
  EXPECT_THROW(lock.release(), fern::SemaphoreReleasedTooManyTimes);
  try {
    b.release();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("released too many times"), std::string::npos);
  }
}

// An unbounded counter at LONG_MAX refuses one more release (no wrap-around).
TEST_F(Semaphores, AReleaseThatWouldOverflowTheCounterThrows) {
  fern::Semaphore s(std::numeric_limits<long>::max());
  EXPECT_THROW(s.release(), std::overflow_error);
  EXPECT_EQ(s.counter(), std::numeric_limits<long>::max());
  EXPECT_TRUE(s.acquire_for(0));
  EXPECT_EQ(s.release(), std::numeric_limits<long>::max());
}

// LK-4, seed 26: std::lock_guard as gevent's `with sem:`.
TEST_F(Semaphores, LockGuardAcquiresAndReleases) {
  fern::BoundedSemaphore sem(2);
  auto worker1 = [&](int n) {
    sem.acquire();
    log.push_back("Worker " + std::to_string(n) + " acquired");
    sleep(0);
    sem.release();
    log.push_back("Worker " + std::to_string(n) + " released");
  };
  auto worker2 = [&](int n) {
    {
      std::lock_guard<fern::BoundedSemaphore> guard(sem);
      log.push_back("Worker " + std::to_string(n) + " acquired");
      sleep(0);
    }
    log.push_back("Worker " + std::to_string(n) + " released");
  };
  fern::Pool pool;
  pool.map([&](int n) { worker1(n); return 0; }, std::vector<int>{0, 1});
  pool.map([&](int n) { worker2(n); return 0; }, std::vector<int>{3, 4, 5});
  EXPECT_EQ(log, (Vec{"Worker 0 acquired", "Worker 1 acquired", "Worker 0 released", "Worker 1 released",
                      "Worker 3 acquired", "Worker 4 acquired", "Worker 3 released", "Worker 4 released",
                      "Worker 5 acquired", "Worker 5 released"}));
  fern::Semaphore single(1);
  std::unique_lock<fern::Semaphore> held(single, std::try_to_lock);
  EXPECT_TRUE(held.owns_lock());
  EXPECT_FALSE(single.try_lock());
}

// TO-10: an acquirer interrupted by a Timeout or killed takes no permit.
TEST_F(Semaphores, InterruptedAcquirersTakeNoPermit) {
  fern::Semaphore sem(0);
  auto interrupted = spawn([&] {
    try {
      fern::TimeoutScope scope(0.01);
      sem.acquire();
    } catch (const fern::Timeout&) {
      return false;
    }
    return true;
  });
  auto killed = spawn([&] { sem.acquire(); });
  auto patient = spawn([&] { return sem.acquire_until(fern::Deadline::never()); });
  sleep(0);
  killed.kill();
  EXPECT_FALSE(interrupted.get());
  sem.release();
  EXPECT_TRUE(patient.get());
  EXPECT_EQ(sem.counter(), 0);
  EXPECT_EQ(sem.waiter_count(), 0u);
}

// LK-5 analogue: wait() waits for a permit without taking it.
TEST_F(Semaphores, WaitReturnsTheCounterWithoutTakingAPermit) {
  fern::Semaphore sem(0);
  EXPECT_EQ(sem.wait_for(0.01), 0);
  auto watcher = spawn([&] { return sem.wait(); });
  auto taker = spawn([&] { return sem.acquire_until(fern::Deadline::never()); });
  sleep(0);
  sem.release();
  EXPECT_EQ(watcher.get(), 1);
  EXPECT_TRUE(taker.get());
  EXPECT_EQ(sem.counter(), 0);
}

// HUB-2 through a semaphore: nobody can release, so LoopExit.
TEST_F(Semaphores, DeadlockEndsInLoopExit) {
  fern::Semaphore sem(0);
  EXPECT_THROW(sem.acquire(), fern::LoopExit);
  EXPECT_EQ(sem.waiter_count(), 0u);
}

// LK-7
TEST_F(Semaphores, DummySemaphoreNeverBlocks) {
  fern::DummySemaphore d;
  EXPECT_TRUE(d.try_acquire());
  EXPECT_TRUE(d.try_acquire());
  EXPECT_FALSE(d.locked());
  std::lock_guard<fern::DummySemaphore> guard(d);
}

// LK-6: the re-entry count cannot wrap (2^32 re-entries would read as a
// free lock that is held).
static_assert(std::numeric_limits<decltype(std::declval<fern::RLock&>().count())>::digits >= 64,
              "RLock's re-entry count has 64 bits");

// LK-6 (probe LK2)
TEST_F(RLocks, OwnerReentersOthersBlockAndOnlyTheOwnerReleases) {
  fern::RLock rl;
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_TRUE(rl.try_acquire());
  EXPECT_EQ(rl.count(), 2u);
  EXPECT_TRUE(rl.is_owned_by_current());
  EXPECT_FALSE(spawn([&] { return rl.acquire_for(0.01); }).get());
  auto bad_release = spawn([&] {
    try {
      rl.release();
    } catch (const fern::NotOwnerError& e) {
      return std::string(e.what());
    }
    return std::string("released");
  });
  EXPECT_NE(bad_release.get().find("cannot release un-acquired lock"), std::string::npos);
  auto waiter = spawn([&] {
    std::lock_guard<fern::RLock> guard(rl);
    return rl.count();
  });
  sleep(0);
  rl.release();
  rl.release();
  EXPECT_EQ(waiter.get(), 1u);
  EXPECT_THROW(rl.release(), fern::NotOwnerError);
  EXPECT_FALSE(rl.locked());
}

// lock_tests.py::LockTests::test_reacquire and test_different_thread
// (test__threading_2::LockTests; gevent's Lock is a BoundedSemaphore(1)): a
// Lock is not re-entrant, so its holder blocks on a second acquire until
// another greenlet releases it; any greenlet may release it.
TEST_F(Semaphores, LockHolderBlocksOnASecondAcquireUntilAnotherGreenletReleases) {
  fern::Lock lock;
  auto holder = spawn([&] {
    lock.acquire();
    log.push_back("phase-1");
    lock.acquire();
    log.push_back("phase-2");
  });
  sleep(0);
  sleep(0);
  EXPECT_EQ(log, Vec{"phase-1"});
  EXPECT_EQ(lock.waiter_count(), 1u);
  lock.release();
  holder.join();
  EXPECT_EQ(log, (Vec{"phase-1", "phase-2"}));
  EXPECT_TRUE(lock.locked());
  spawn([&] { lock.release(); }).join();
  EXPECT_TRUE(lock.try_acquire());
  lock.release();
}

// lock_tests.py::BaseSemaphoreTests::test_acquire_contended: ten greenlets
// acquire twice each from a Semaphore(7) with one permit taken; each batch
// of releases lets exactly that many acquires through, in the phase they
// were released in.
TEST_F(Semaphores, ContendedAcquiresGoThroughOnePerRelease) {
  fern::Semaphore sem(7);
  sem.acquire();
  int phase = 0;
  std::vector<int> results;
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 10; ++n)
    tasks.push_back(spawn([&] {
      sem.acquire();
      results.push_back(phase);
      sem.acquire();
      results.push_back(phase);
    }).core());
  sleep(0);
  EXPECT_EQ(results, std::vector<int>(6, 0));
  phase = 1;
  for (int i = 0; i < 7; ++i) sem.release();
  sleep(0);
  std::vector<int> expected(6, 0);
  expected.insert(expected.end(), 7, 1);
  EXPECT_EQ(results, expected);
  phase = 2;
  for (int i = 0; i < 6; ++i) sem.release();
  sleep(0);
  expected.insert(expected.end(), 6, 2);
  EXPECT_EQ(results, expected);
  EXPECT_FALSE(sem.try_acquire());
  sem.release();
  fern::joinall(tasks);
  EXPECT_EQ(results.size(), 20u);
  EXPECT_EQ(sem.counter(), 0);
}

// lock_tests.py::BaseSemaphoreTests::test_with: nested scoped holds of a
// Semaphore(2), left by an exception, give back both permits.
TEST_F(Semaphores, ScopedHoldsLeftByAnExceptionGiveBackTheirPermits) {
  fern::Semaphore sem(2);
  auto with = [&](bool fail) {
    std::lock_guard<fern::Semaphore> outer(sem);
    EXPECT_TRUE(sem.try_acquire());
    sem.release();
    std::lock_guard<fern::Semaphore> inner(sem);
    EXPECT_FALSE(sem.try_acquire());
    if (fail) throw std::invalid_argument("inside");
  };
  with(false);
  EXPECT_EQ(sem.counter(), 2);
  EXPECT_THROW(with(true), std::invalid_argument);
  EXPECT_EQ(sem.counter(), 2);
}

}  // namespace
