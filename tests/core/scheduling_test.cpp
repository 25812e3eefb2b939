// Scheduling order on the hub: SEMANTICS F1-F6, F11-F14.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/event.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Scheduling = fern::testing::HubTest;

// F1
TEST_F(Scheduling, SpawnIsLazyAndFifo) {
  auto a = spawn([&] { log.push_back("a"); });
  auto b = spawn([&] { log.push_back("b"); });
  auto c = spawn([&] { log.push_back("c"); });
  log.push_back("main-after-spawn");
  fern::joinall({a.core(), b.core(), c.core()});
  EXPECT_EQ(log, (Vec{"main-after-spawn", "a", "b", "c"}));
}

// F2
TEST_F(Scheduling, TaskSpawnedByARunningTaskQueuesBehindEverythingQueued) {
  fern::Task<void> child;
  auto p = spawn([&] {
    log.push_back("p-start");
    child = spawn([&] { log.push_back("child"); });
    log.push_back("p-end");
  });
  auto sibling = spawn([&] { log.push_back("sibling"); });
  fern::joinall({p.core(), sibling.core()});
  child.join();
  EXPECT_EQ(log, (Vec{"p-start", "p-end", "sibling", "child"}));
}

// F1, F2, F11: a task that ends (or parks) starts the next queued task
// itself when starting it is what the hub would do next (one switch instead
// of two through the hub). The order stays the hub's: a plain callback
// queued between two spawns runs in its turn, links run after the starts
// queued before them, and each body runs once.
TEST_F(Scheduling, EndingTasksStartTheNextQueuedTaskInTheHubsOrder) {
  fern::Hub& hub = fern::Hub::current();
  auto a = spawn([&] { log.push_back("a"); });
  a->link([&](fern::TaskBase&) { log.push_back("a-link"); });
  hub.run_callback([&] { log.push_back("callback"); });
  auto b = spawn([&] {
    log.push_back("b");
    throw fern::GreenletExit();  // killed: ends the same way, not reported
  });
  b->link([&](fern::TaskBase&) { log.push_back("b-link"); });
  auto c = spawn([&] {
    log.push_back("c-parks");
    sleep(0);  // hands off to d's start, which is next
    log.push_back("c-resumed");
  });
  auto d = spawn([&] { log.push_back("d"); });
  fern::joinall(a, b, c, d);
  EXPECT_EQ(log, (Vec{"a", "callback", "b", "c-parks", "d", "a-link", "b-link", "c-resumed"}));
  EXPECT_TRUE(b->killed());
  EXPECT_TRUE(a->successful() && c->successful() && d->successful());
}

// GV-5 with the hand-off: a task killed before it starts, by the task ahead
// of it, is skipped (it never runs; its links run in their turn), and the
// ending task starts the one after it.
TEST_F(Scheduling, ATaskKilledBeforeItsStartIsSkippedByTheHandOff) {
  fern::Task<void> b;
  auto a = spawn([&] {
    log.push_back("a");
    b.kill();  // unstarted: dies at once, without a switch
  });
  b = spawn([&] { log.push_back("b"); });
  b->link([&](fern::TaskBase&) { log.push_back("b-link"); });
  auto c = spawn([&] { log.push_back("c"); });
  fern::joinall(a, b, c);
  EXPECT_EQ(log, (Vec{"a", "c", "b-link"}));
  EXPECT_TRUE(b->killed());
}

// F3, HUB-3
TEST_F(Scheduling, SleepZeroIsARoundRobinYield) {
  std::vector<fern::AnyTask> tasks;
  for (int i = 1; i <= 3; ++i)
    tasks.push_back(spawn([this, i] {
      for (const char* step : {"A", "B", "C"}) {
        log.push_back(std::to_string(i) + step);
        sleep(0);
      }
    }).core());
  fern::joinall(tasks);
  EXPECT_EQ(log, (Vec{"1A", "2A", "3A", "1B", "2B", "3B", "1C", "2C", "3C"}));
}

// F3, GV-3: a task killed while it yields leaves the queue with its frame
// (its node lives there): the others' hand-offs never reach it, and the
// round goes on in order without it. The kill is a callback queued behind
// 2's node, so 2 runs its step B first and dies in the sleep(0) after it,
// its node queued behind 1's.
TEST_F(Scheduling, ATaskKilledInSleepZeroLeavesTheRoundRobin) {
  std::vector<fern::AnyTask> tasks;
  for (int i = 1; i <= 3; ++i)
    tasks.push_back(spawn([this, i, &tasks] {
      for (const char* step : {"A", "B", "C"}) {
        log.push_back(std::to_string(i) + step);
        if (i == 1 && std::string(step) == "B") {
          tasks[1]->kill_async();  // 2 is parked in its sleep(0), its node queued
          log.push_back("kill 2");
        }
        sleep(0);
      }
    }).core());
  fern::joinall(tasks);
  EXPECT_EQ(log, (Vec{"1A", "2A", "3A", "1B", "kill 2", "2B", "3B", "1C", "3C"}));
  EXPECT_TRUE(tasks[1]->killed());
  EXPECT_TRUE(tasks[0]->successful());
  EXPECT_TRUE(tasks[2]->successful());
}

// F4, F14, HUB-4, HUB-5
TEST_F(Scheduling, OneIterationRunsCallbacksThenTimersThenIdle) {
  fern::Hub& hub = fern::Hub::current();
  struct Mark : fern::Timer {
    Vec* log;
  } timer0;
  timer0.log = &log;
  timer0.fn = [](fern::Timer* t) { static_cast<Mark*>(t)->log->push_back("timer(0)"); };
  hub.start_timer(&timer0, fern::Deadline::at(hub.now()));
  auto later = fern::spawn_later(0, [&] { log.push_back("spawn_later(0)"); });
  hub.run_callback([&] { log.push_back("run_callback#1"); });
  auto spawned = spawn([&] { log.push_back("spawn"); });
  hub.run_callback([&] { log.push_back("run_callback#2"); });
  auto idler = spawn([&] {
    fern::idle();
    log.push_back("after idle()");
  });
  auto zero = spawn([&] {
    sleep(0);
    log.push_back("after sleep(0)");
  });
  auto tiny = spawn([&] {
    sleep(1e-6);
    log.push_back("after sleep(1e-6)");
  });
  fern::joinall({later.core(), spawned.core(), idler.core(), zero.core(), tiny.core()});
  EXPECT_EQ(log, (Vec{"run_callback#1", "spawn", "run_callback#2", "after sleep(0)", "timer(0)",
                      "spawn_later(0)", "after sleep(1e-6)", "after idle()"}));
}

// F5
TEST_F(Scheduling, TimersFireByDeadlineThenCreationOrder) {
  std::vector<fern::AnyTask> tasks;
  for (int i = 0; i < 5; ++i)
    tasks.push_back(fern::spawn_later(0.001, [this, i] { log.push_back("later-" + std::to_string(i)); }).core());
  tasks.push_back(fern::spawn_later(0.003, [this] { log.push_back("c"); }).core());
  tasks.push_back(fern::spawn_later(0.002, [this] { log.push_back("b"); }).core());
  fern::joinall(tasks);
  EXPECT_EQ(log, (Vec{"later-0", "later-1", "later-2", "later-3", "later-4", "b", "c"}));
}

// F6
TEST_F(Scheduling, SleepZeroSpinningDoesNotStarveTimers) {
  bool fired = false;
  long spins = 0;
  auto timer = fern::spawn_later(0.01, [&] { fired = true; });
  while (!fired) {
    sleep(0);
    ++spins;
  }
  EXPECT_GT(spins, 0);
  timer.join();
}

// F6 with F7: the batch is cut between callbacks, never inside a
// primitive's wake-up round (gevent wakes an Event's waiters in one
// callback, which its loop does not cut). A timer that comes due while the
// round runs (one waiter runs past the switch interval) runs after the last
// waiter was woken. Without it the cut (checked every 64 steps) left the
// round's rest for after the timers, and a waiter with a deadline then
// timed out although set() came first.
TEST_F(Scheduling, TheBatchCutNeverSplitsAWakeUpRound) {
  constexpr int kWaiters = 250;  // past two of the cut's checks
  fern::Event ev;
  int woken = 0;
  int woken_when_the_timer_ran = -1;
  fern::Task<void> timer;
  std::vector<fern::AnyTask> waiters;
  for (int i = 0; i < kWaiters; ++i)
    waiters.push_back(spawn([&, i] {
      ev.wait();
      ++woken;
      if (i == 0) timer = fern::spawn_later(0, [&] { woken_when_the_timer_ran = woken; });  // due at once
      if (i == 90) {  // between two checks: past the switch interval
        fern::Nanos until = fern::monotonic_now() + 6'000'000;
        while (fern::monotonic_now() < until) {
        }
      }
    }).core());
  sleep(0);  // every waiter parks
  ev.set();
  fern::joinall(waiters);
  timer.join();
  EXPECT_EQ(woken, kWaiters);
  EXPECT_EQ(woken_when_the_timer_ran, kWaiters);
}

// F11, GV-11
TEST_F(Scheduling, LinksRunInLinkOrderBeforeTheJoinerResumes) {
  auto t = spawn([&] { log.push_back("body"); });
  for (int i = 0; i < 3; ++i) t->link([this, i](fern::TaskBase&) { log.push_back("link-" + std::to_string(i)); });
  t.join();
  log.push_back("after join");
  EXPECT_EQ(log, (Vec{"body", "link-0", "link-1", "link-2", "after join"}));
}

// F12, GV-13
TEST_F(Scheduling, JoinallReturnsReadyTasksInCompletionOrder) {
  auto a = spawn([] { sleep(0.002); });
  auto b = spawn([] {});
  auto ready = fern::joinall({a.core(), b.core()});
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0], b.core());
  EXPECT_EQ(ready[1], a.core());
  auto slow = spawn([] { sleep(10); });
  auto quick = spawn([] {});
  auto some = fern::joinall_for(0.005, {slow.core(), quick.core()});
  ASSERT_EQ(some.size(), 1u);
  EXPECT_EQ(some[0], quick.core());
  slow.kill();
}

// F13, TO-9
TEST_F(Scheduling, OverdueTimeoutDoesNotFireAtSleepZero) {
  fern::Timeout t(0.001);
  t.start();
  fern::Nanos until = fern::monotonic_now() + 3'000'000;
  while (fern::monotonic_now() < until) {
  }  // CPU-bound: never preempted
  log.push_back("cpu done");
  sleep(0);
  log.push_back("after sleep(0)");
  try {
    sleep(0.001);
    log.push_back("not raised");
  } catch (const fern::Timeout& fired) {
    log.push_back(fired == t ? "raised at next blocking call" : "wrong timeout");
  }
  EXPECT_EQ(log, (Vec{"cpu done", "after sleep(0)", "raised at next blocking call"}));
}

// F14
TEST_F(Scheduling, SpawnLaterZeroRunsAfterSpawnQueuedLater) {
  auto later = fern::spawn_later(0, [&] { log.push_back("later0"); });
  auto now = spawn([&] { log.push_back("spawn"); });
  fern::joinall({later.core(), now.core()});
  EXPECT_EQ(log, (Vec{"spawn", "later0"}));
}

// F4 (timers before fd events within one iteration)
TEST_F(Scheduling, ExpiredTimerRunsBeforeReadyFdInTheSameIteration) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  fern::Hub& hub = fern::Hub::current();
  struct Watch : fern::Hub::IoWatcher {
    Vec* log;
    fern::Waiter* done;
  } watch;
  fern::Waiter done;
  watch.log = &log;
  watch.done = &done;
  watch.fn = [](fern::Hub::IoWatcher* w, unsigned) {
    auto* self = static_cast<Watch*>(w);
    self->log->push_back("io-ready");
    if (!self->done->ready()) self->done->wake();
  };
  struct Mark : fern::Timer {
    Vec* log;
  } timer;
  timer.log = &log;
  timer.fn = [](fern::Timer* t) { static_cast<Mark*>(t)->log->push_back("timer-expired"); };
  hub.start_timer(&timer, fern::Deadline::at(hub.update_now()));
  hub.run_callback([&] { log.push_back("run_callback"); });
  ASSERT_EQ(hub.watch_fd(fds[0], fern::kReadable, &watch), fern::Hub::Watch::kStarted);
  done.wait();  // woken by the fd event itself: no timing involved
  watch.unlink();
  close(fds[0]);
  close(fds[1]);
  ASSERT_GE(log.size(), 3u);
  EXPECT_EQ(Vec(log.begin(), log.begin() + 3), (Vec{"run_callback", "timer-expired", "io-ready"}));
}

// An fd event calls the watchers that waited when it came: one that starts
// waiting while the event runs (a greenlet that found nothing and waits
// again) waits for the next event. Two of them would otherwise call each
// other for ever on a readiness already used up, and the loop never moves on.
TEST_F(Scheduling, AWatcherThatStartsDuringItsFdsEventWaitsForTheNextOne) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "x", 1), 1);  // never read: readable in every batch
  struct Watch : fern::Hub::IoWatcher {
    int calls = 0;
  } a, b;
  for (Watch* w : {&a, &b}) {
    w->fn = [](fern::Hub::IoWatcher* w, unsigned) {
      auto* self = static_cast<Watch*>(w);
      if (++self->calls >= 1000) return;  // bounds the loop the bug makes
      int fd = w->fd;
      w->unlink();  // waits again: at the end of the fd's list
      fern::Hub::current().watch_fd(fd, fern::kReadable, w);
    };
    ASSERT_EQ(fern::Hub::current().watch_fd(fds[0], fern::kReadable, w), fern::Hub::Watch::kStarted);
  }
  while (a.calls == 0) sleep(0);  // resumed between the hub's iterations (F4)
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  a.unlink();
  b.unlink();
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
