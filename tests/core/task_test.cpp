// gevent's Greenlet as fern::Task: SEMANTICS GV-1 .. GV-21.
#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Tasks = fern::testing::HubTest;

// GV-1, GV-2, GV-17
TEST_F(Tasks, StateTableFollowsGevent) {
  auto t = fern::Task<int>::create([] { return 42; });
  EXPECT_FALSE(t.started());
  EXPECT_FALSE(t.ready());
  EXPECT_FALSE(t.successful());
  EXPECT_FALSE(t.value());
  t.start();
  EXPECT_TRUE(t.started());
  EXPECT_FALSE(t.ready());
  EXPECT_EQ(t->greenlet().parent(), fern::Hub::current().greenlet());
  EXPECT_EQ(t->name().rfind("Greenlet-", 0), 0u);
  EXPECT_EQ(t.get(), 42);
  EXPECT_FALSE(t.started());  // GV-2: started is False again once dead
  EXPECT_TRUE(t.ready());
  EXPECT_TRUE(t.dead());
  EXPECT_TRUE(t.successful());
  EXPECT_EQ(*t.value(), 42);
  EXPECT_FALSE(t.exception());
}

// GV-3
TEST_F(Tasks, FailureIsReportedAndKeptNotRaisedInJoiners) {
  ::testing::internal::CaptureStderr();
  auto t = spawn([]() -> int { throw std::invalid_argument("bad"); });
  t.join();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("std::invalid_argument: bad"), std::string::npos) << err;
  EXPECT_NE(err.find("failed with std::invalid_argument"), std::string::npos) << err;
  EXPECT_FALSE(t.successful());
  EXPECT_FALSE(t.value());
  ASSERT_TRUE(t.exception());
  EXPECT_THROW(t.get(), std::invalid_argument);
}

// GV-4, GV-5
TEST_F(Tasks, KillingAnUnstartedTaskMeansItNeverRunsAndLinksStillFire) {
  bool ran = false, linked = false;
  auto t = spawn([&] { ran = true; });
  t->link([&](fern::TaskBase&) { linked = true; });
  EXPECT_TRUE(t.kill());
  EXPECT_TRUE(t.dead());
  EXPECT_TRUE(t.successful());
  EXPECT_TRUE(t->killed());
  sleep(0);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(linked);
  EXPECT_THROW(t.get(), fern::GreenletExit);
}

// GV-6
TEST_F(Tasks, KillRaisesAtTheBlockingPointAndBlockingKillWaits) {
  auto t = spawn([&] {
    struct Finally {
      Vec& log;
      ~Finally() { log.push_back("finally"); }
    } f{log};
    try {
      sleep(10);
    } catch (const fern::GreenletExit&) {
      log.push_back("got GreenletExit");
      throw;
    }
  });
  sleep(0);
  t.kill();
  log.push_back("kill returned");
  EXPECT_EQ(log, (Vec{"got GreenletExit", "finally", "kill returned"}));
  EXPECT_TRUE(t.successful());
  EXPECT_TRUE(t.kill());  // killing a dead task again is a no-op
}

// GV-6
TEST_F(Tasks, NonBlockingKillHappensWhenTheHubRuns) {
  auto t = spawn([] { sleep(10); });
  sleep(0);
  EXPECT_FALSE(t.kill_async());
  EXPECT_FALSE(t.dead());
  sleep(0);
  EXPECT_TRUE(t.dead());
}

// GV-6: kill_async of the caller's own task (gevent's kill(block=False) on
// itself) returns, the task goes on and the kill is raised at its next
// block; killall over a list holding the caller still kills every one.
TEST_F(Tasks, ATaskKillingItselfAsynchronouslyGoesOnUntilItBlocks) {
  auto other = spawn([&] {
    try {
      sleep(10);
    } catch (const fern::GreenletExit&) {
      log.push_back("other killed");
      throw;
    }
  });
  fern::Task<void> self;
  self = spawn([&] {
    EXPECT_FALSE(self.kill_async());
    log.push_back("goes on");
    try {
      fern::killall(std::vector<fern::AnyTask>{self, other});
    } catch (const fern::GreenletExit&) {
      log.push_back("self killed");
      throw;
    }
  });
  self.join();
  other.join();
  EXPECT_TRUE(self->killed());
  EXPECT_EQ(log, (Vec{"goes on", "self killed", "other killed"}));  // kills delivered FIFO
}

// GL-27 for tasks: a task's arguments, result and exception are let go
// with the task (its last handle and the hub's reference).
TEST_F(Tasks, ArgumentsResultsAndExceptionsGoWithTheTask) {
  struct Failure {
    std::shared_ptr<int> ref;
  };
  auto ref = std::make_shared<int>(0);
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 100; ++i) {
    auto ok = spawn([](std::shared_ptr<int> r) { return r; }, ref);
    auto failed = spawn([&] { throw Failure{ref}; });
    EXPECT_EQ(ok.get(), ref);
    failed.join();
    EXPECT_THROW(failed.get(), Failure);
  }
  sleep(0);  // the links of the last ones run
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(ref.use_count(), 1);
}

// GV-7
TEST_F(Tasks, KillWithAnotherExceptionFailsTheTask) {
  ::testing::internal::CaptureStderr();
  auto t = spawn([] { sleep(10); });
  sleep(0);
  t.kill(std::make_exception_ptr(std::out_of_range("custom")));
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(t.successful());
  EXPECT_THROW(t.get(), std::out_of_range);
  auto stubborn = fern::spawn([]() -> std::string {
    try {
      sleep(10);
    } catch (const fern::GreenletExit&) {
      return "survived";
    }
    return "slept";
  });
  sleep(0);
  stubborn.kill();
  EXPECT_TRUE(stubborn.successful());
  EXPECT_EQ(stubborn.get(), "survived");
}

// GV-8
TEST_F(Tasks, KillWithTimeoutReturnsWhileAStubbornTaskLives) {
  bool stop = false;
  auto t = spawn([&] {
    while (!stop) {
      try {
        sleep(10);
      } catch (const fern::GreenletExit&) {
      }
    }
  });
  sleep(0);
  EXPECT_FALSE(t.kill_for(0.002));
  EXPECT_FALSE(t.dead());
  stop = true;
  t.kill();
  EXPECT_TRUE(t.dead());
}

// GV-9
TEST_F(Tasks, JoinAndGetTimeouts) {
  auto t = spawn([] { sleep(10); });
  EXPECT_FALSE(t.join_for(0.002));
  EXPECT_THROW(t.get_for(0.002), fern::Timeout);
  EXPECT_THROW(t.get_nowait(), fern::Timeout);
  t.kill();
}

// GV-11, GV-12
TEST_F(Tasks, LinkVariantsRunOnlyForTheirOutcome) {
  ::testing::internal::CaptureStderr();
  auto ok = spawn([] { return 5; });
  auto bad = spawn([]() -> int { throw std::runtime_error("bad"); });
  for (auto* t : {&ok, &bad}) {
    std::string name = t == &ok ? "ok" : "bad";
    (*t)->link([this, name](fern::TaskBase&) { log.push_back(name + ":link"); });
    (*t)->link_value([this, name](fern::TaskBase&) { log.push_back(name + ":link_value"); });
    (*t)->link_exception([this, name](fern::TaskBase&) { log.push_back(name + ":link_exception"); });
  }
  fern::joinall({ok.core(), bad.core()});
  sleep(0);
  ok->link([this](fern::TaskBase&) { log.push_back("ok:late-link"); });
  sleep(0);
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, (Vec{"ok:link", "ok:link_value", "bad:link", "bad:link_exception", "ok:late-link"}));
}

// GV-12
TEST_F(Tasks, FailingLinkIsReportedAndLaterLinksStillRunOrCanBeUnlinked) {
  auto t = spawn([] { return 1; });
  fern::TaskBase::LinkId third = 0;
  t->link([&](fern::TaskBase&) {
    log.push_back("1");
    t->unlink(third);
    throw std::runtime_error("in link");
  });
  t->link([&](fern::TaskBase&) { log.push_back("2"); });
  third = t->link([&](fern::TaskBase&) { log.push_back("3"); });
  EXPECT_TRUE(t->has_links());
  ::testing::internal::CaptureStderr();
  t.join();
  sleep(0);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, (Vec{"1", "2"}));
  EXPECT_NE(err.find("in link"), std::string::npos);
  EXPECT_FALSE(t->has_links());
}

// GV-13
TEST_F(Tasks, JoinallRaisesTheFirstFailureToHappenAndHonoursCount) {
  ::testing::internal::CaptureStderr();
  auto a = spawn([] {
    sleep(0.002);
    throw std::runtime_error("first in list");
  });
  auto b = spawn([] { throw std::logic_error("first to happen"); });
  EXPECT_THROW(fern::joinall({a.core(), b.core()}, fern::JoinAll().raise_error()), std::logic_error);
  fern::joinall({a.core(), b.core()});
  ::testing::internal::GetCapturedStderr();
  auto s = spawn([] { sleep(10); });
  auto f = spawn([] {});
  auto one = fern::joinall({s.core(), f.core(), f.core()}, fern::JoinAll().count(1));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], f.core());
  s.kill();
}

// GV-13: duplicates of ended and of running tasks, nulls among them, are
// joined once each, in completion order; joinall's and join's link nodes
// leave the tasks when they return, also by timeout.
TEST_F(Tasks, JoinallCountsEachTaskOnceAndLeavesNoLinksBehind) {
  auto ended = spawn([] {});
  ended.join();
  auto slow = spawn([] { sleep(0.001); });
  auto quick = spawn([] {});
  auto done = fern::joinall({slow.core(), ended.core(), nullptr, quick.core(), slow.core(), ended.core(),
                             quick.core()});
  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(done[0], ended.core());  // already ended: counted first, in list order
  EXPECT_EQ(done[1], quick.core());
  EXPECT_EQ(done[2], slow.core());
  EXPECT_FALSE(slow->has_links());
  EXPECT_FALSE(ended->has_links());

  auto sleeper = spawn([] { sleep(10); });
  EXPECT_TRUE(fern::joinall({sleeper.core(), sleeper.core()}, fern::JoinAll().within(0.001)).empty());
  EXPECT_FALSE(sleeper->has_links());
  EXPECT_FALSE(sleeper.join_for(0.001));
  EXPECT_FALSE(sleeper->has_links());
  // A user link beside them still fires, and unlink by id still works.
  int fired = 0;
  sleeper->link([&](fern::TaskBase&) { ++fired; });
  auto gone = sleeper->link([&](fern::TaskBase&) { fired += 100; });
  sleeper->unlink(gone);
  sleeper.kill();
  sleep(0);
  EXPECT_EQ(fired, 1);
}

// Task memory: callables of any size and alignment (over-aligned ones
// bypass the pool, big ones go to operator new), each stored aligned.
TEST_F(Tasks, CallablesOfAnySizeAndAlignmentAreStoredAligned) {
  struct alignas(64) Wide {
    char bytes[64];
  };
  struct Big {
    char bytes[2000];
  };
  Wide wide{};
  wide.bytes[0] = 'w';
  Big big{};
  big.bytes[1999] = 'b';
  auto a = spawn([wide] {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&wide) % 64, 0u);
    return wide.bytes[0];
  });
  auto b = spawn([big] { return big.bytes[1999]; });
  EXPECT_EQ(a.get(), 'w');
  EXPECT_EQ(b.get(), 'b');
}

// Two greenlets joining overlapping lists at once: each joinall's nodes are
// its own (de-duplication looks only at its own), both see every task.
TEST_F(Tasks, ConcurrentJoinallsOverOverlappingTasksEachSeeAll) {
  auto x = spawn([] { sleep(0.001); });
  auto y = spawn([] { sleep(0.002); });
  std::size_t first = 0, second = 0;
  auto j1 = spawn([&] { first = fern::joinall({x.core(), y.core(), x.core()}).size(); });
  auto j2 = spawn([&] { second = fern::joinall({y.core(), x.core(), y.core()}).size(); });
  fern::joinall({j1.core(), j2.core()});
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(second, 2u);
  EXPECT_FALSE(x->has_links());
  EXPECT_FALSE(y->has_links());
}

// A task whose links never ran (it never ended in a loop that ran them)
// frees them with itself: ASan's leak check sees any that stay.
TEST_F(Tasks, LinksOfADroppedTaskGoWithIt) {
  int fired = 0;
  {
    auto t = fern::Task<void>::create([] {});
    t->link([&](fern::TaskBase&) { ++fired; });
    t->link_value([&](fern::TaskBase&) { ++fired; });
  }
  sleep(0);
  EXPECT_EQ(fired, 0);
}

// Task memory comes from a per-thread pool: a task made on one thread and
// dropped on another (a handle handed over) is freed there, and both
// threads end cleanly.
TEST(TaskPool, TaskDroppedOnAnotherThreadIsFreedThere) {
  fern::AnyTask handle;
  std::thread maker([&] {
    auto t = spawn([] { return 7; });
    EXPECT_EQ(t.get(), 7);
    handle = t.core();
    fern::Hub::destroy_current();
  });
  maker.join();
  std::thread dropper([&] { handle.reset(); });
  dropper.join();
  EXPECT_FALSE(handle);
}

// GV-8, GV-14
TEST_F(Tasks, KillallKillsUnstartedAtOnceAndTimesOutOnStubbornOnes) {
  bool stop = false;
  auto stubborn = spawn([&] {
    while (!stop) {
      try {
        sleep(10);
      } catch (const fern::GreenletExit&) {
      }
    }
  });
  sleep(0);
  auto unstarted = spawn([] {});
  EXPECT_THROW(fern::killall_for(0.002, {stubborn.core(), unstarted.core()}), fern::Timeout);
  EXPECT_TRUE(unstarted.dead());
  stop = true;
  fern::killall({stubborn.core()});
  EXPECT_TRUE(stubborn.dead());
}

// GV-16
TEST_F(Tasks, StartingTwiceOrAfterTheEndDoesNothing) {
  int runs = 0;
  auto t = fern::Task<void>::create([&] { ++runs; });
  t.start();
  t.start();
  t.join();
  t.start();
  sleep(0);
  EXPECT_EQ(runs, 1);
}

// A callable larger than the task's whole stack still runs: only small
// ones move onto the stack (task.h), a large one is called where it is.
TEST_F(Tasks, ACallableLargerThanTheStackRuns) {
  auto big = std::make_unique<std::array<char, 96 * 1024>>();
  (*big)[0] = 1;
  (*big)[big->size() - 1] = 2;
  auto t = fern::Task<int>::create([copy = *big]() mutable {
    __asm__ volatile("" : : "r"(copy.data()) : "memory");  // the whole copy is used
    return copy.front() + copy.back();
  });
  t.start();
  EXPECT_EQ(t.get(), 3);
}

// GV-18 (seed 07)
class Greeter : public fern::TaskBase {
 public:
  Greeter(Vec& log, std::string message) : log_(log), message_(std::move(message)) {}

 protected:
  void run() override {
    log_.push_back(message_);
    sleep(0.001);
  }

 private:
  Vec& log_;
  std::string message_;
};

TEST_F(Tasks, SubclassOverridesRun) {
  auto t = fern::Task<void>::adopt(std::make_shared<Greeter>(log, "Hi there!"));
  t.start();
  t.join();
  EXPECT_EQ(log, Vec{"Hi there!"});
}

// GV-20
TEST_F(Tasks, DeadReadsFalseWhileTheTaskRuns) {
  fern::Task<bool> t;
  t = fern::spawn([&] { return t.dead(); });
  EXPECT_FALSE(t.get());
}

// GV-21
TEST_F(Tasks, UnexpectedSwitchIntoAWaitingTaskIsAnInvalidSwitch) {
  auto t = spawn([] {
    try {
      sleep(10);
    } catch (const fern::InvalidSwitchError&) {
      return std::string("invalid switch");
    }
    return std::string("slept");
  });
  sleep(0);
  fern::Hub::current().run_callback([&] { fern::Greenlet(t->greenlet()).switch_to(); });  // not its waiter
  EXPECT_EQ(t.get(), "invalid switch");
}

// A task's greenlet switched to directly (here from a hub callback queued
// before the task's start) runs the body; its queued start then never runs
// and its links fire once, from the hub, as for any other end (GV-11).
TEST_F(Tasks, ATaskRunDirectlyBeforeItsStartRunsOnceAndFiresItsLinksOnce) {
  int runs = 0;
  int links = 0;
  fern::Task<void> t;
  fern::Hub::current().run_callback([&] {
    fern::Greenlet(t->greenlet()).switch_to();
    log.push_back(t.dead() ? "switch returned, dead" : "switch returned, alive");
  });
  t = spawn([&] { ++runs; });
  t->link([&](fern::TaskBase&) { ++links; });
  t.join();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(links, 1);
  EXPECT_TRUE(t.successful());
  EXPECT_EQ(log, Vec{"switch returned, dead"});
}

// A dropped handle does not stop a started task (the hub keeps it).
TEST_F(Tasks, StartedTaskRunsToTheEndWithoutHandles) {
  spawn([&] {
    sleep(0.001);
    log.push_back("finished");
  });
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(log, Vec{"finished"});
}

}  // namespace

namespace {

// A task belongs to its hub's thread: joining, getting or killing it from
// another thread is refused with CrossThreadError, before that thread makes
// a hub of its own or touches the task's links.
TEST_F(Tasks, JoiningOrKillingATaskOfAnotherThreadThrowsCrossThreadError) {
  fern::Task<int> t = spawn([] {
    sleep(0);
    return 7;
  });
  int refused = 0;
  std::thread other([&] {
    try {
      t.join();
    } catch (const fern::CrossThreadError&) {
      ++refused;
    }
    try {
      t.get();
    } catch (const fern::CrossThreadError&) {
      ++refused;
    }
    try {
      t.kill_async();
    } catch (const fern::CrossThreadError&) {
      ++refused;
    }
  });
  other.join();
  EXPECT_EQ(refused, 3);
  EXPECT_EQ(t.get(), 7);
}

// Starting or linking a task of another thread would queue its start or
// change its links from the wrong thread (the start would even run it in
// the caller's hub): CrossThreadError, and the task is left as it was.
TEST_F(Tasks, StartingOrLinkingATaskOfAnotherThreadThrowsCrossThreadError) {
  auto t = fern::Task<int>::create([] { return 7; });
  int refused = 0;
  std::thread other([&] {
    for (auto attempt : {+[](fern::Task<int>& t) { t.start(); },
                         +[](fern::Task<int>& t) { t->start_later(0.0); },
                         +[](fern::Task<int>& t) { t->link([](fern::TaskBase&) {}); },
                         +[](fern::Task<int>& t) { t->link_value([](fern::TaskBase&) {}); }}) {
      try {
        attempt(t);
      } catch (const fern::CrossThreadError&) {
        ++refused;
      }
    }
  });
  other.join();
  EXPECT_EQ(refused, 4);
  EXPECT_FALSE(t.started());
  EXPECT_FALSE(t->has_links());
  t.start();
  EXPECT_EQ(t.get(), 7);
}

// GV-15: gevent's `with spawn(...) as g:` joins g when the body ends.
TEST_F(Tasks, WithTaskJoinsTheTaskWhenTheBodyReturns) {
  Vec log;
  auto t = spawn([&] {
    sleep(0.001);
    log.push_back("task");
    return 5;
  });
  int got = fern::with_task(t, [&](fern::Task<int>& g) {
    log.push_back("body");
    EXPECT_TRUE(g == t);
    return 7;
  });
  EXPECT_EQ(got, 7);
  EXPECT_TRUE(t.dead());
  EXPECT_EQ(log, (Vec{"body", "task"}));
  EXPECT_EQ(fern::with_task(spawn([] { return 1; }), [] { return 2; }), 2);  // a body without the task
}

// GV-15: if the body raises, g is killed with that very exception (its
// exception, reported as a failure) before it propagates.
TEST_F(Tasks, WithTaskKillsTheTaskWithTheBodysException) {
  bool finished = false;
  auto t = spawn([&] {
    sleep(1);
    finished = true;
  });
  ::testing::internal::CaptureStderr();
  try {
    fern::with_task(t, [](fern::Task<void>&) { throw std::out_of_range("body"); });
    ADD_FAILURE() << "the body's exception did not propagate";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "body");
    EXPECT_TRUE(t.dead());  // killed before the exception went on
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("failed with std::out_of_range"), std::string::npos) << err;
  EXPECT_FALSE(finished);
  EXPECT_FALSE(t.successful());
  ASSERT_TRUE(t.exception());
  EXPECT_THROW(std::rethrow_exception(t.exception()), std::out_of_range);
}

// GV-15: a join that is interrupted (the body's greenlet killed, or a
// Timeout) kills g, and the interruption goes on.
TEST_F(Tasks, WithTaskKillsTheTaskWhenItsJoinIsInterrupted) {
  fern::Task<void> inner;
  bool after = false;
  auto outer = spawn([&] {
    inner = spawn([] { sleep(10); });
    fern::with_task(inner, [] {});
    after = true;
  });
  sleep(0);  // outer joins inner
  ASSERT_TRUE(inner);
  EXPECT_FALSE(inner.dead());
  EXPECT_TRUE(outer.kill());
  EXPECT_FALSE(after);
  EXPECT_TRUE(outer->killed());
  EXPECT_TRUE(inner.dead());
  EXPECT_TRUE(inner->killed());

  auto slow = spawn([] { sleep(10); });
  fern::Timeout timeout = fern::Timeout::start_new(0.001);
  EXPECT_THROW(fern::with_task(slow, [] {}), fern::Timeout);
  timeout.cancel();
  EXPECT_TRUE(slow.dead());
  EXPECT_TRUE(slow->killed());
}

}  // namespace
