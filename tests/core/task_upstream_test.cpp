// Ported from gevent's own tests of its Greenlet (fern::Task), the hub and
// Timeout (src/gevent/tests/test__greenlet.py, test__exc_info.py,
// test__hub_join.py, test__timeout.py), plus the hostile uses of the same
// API that those tests imply: each gets a typed error or gevent's
// behaviour, never a crash, a hang or a lost exception.
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using TaskUpstream = fern::testing::HubTest;

// test__greenlet.py::TestKillAfterStartLater (GV-5, GV-6): a task killed
// while its start_later timer is armed never runs, ends killed (successful)
// at once, fires its links once, and disarms its timer; killing it again
// does nothing.
TEST_F(TaskUpstream, KillBeforeAStartLaterTimerFiresMeansItNeverRuns) {
  for (int how = 0; how < 3; ++how) {
    bool ran = false;
    int linked = 0;
    auto t = fern::Task<void>::create([&] { ran = true; });
    t->link([&](fern::TaskBase&) { ++linked; });
    t->start_later(1e6);
    EXPECT_EQ(fern::Hub::current().armed_timers(), 1u);
    if (how == 0) EXPECT_TRUE(t.kill());
    if (how == 1) EXPECT_TRUE(t.kill_async());
    if (how == 2) fern::killall(std::vector<fern::AnyTask>{t});
    EXPECT_TRUE(t.dead());
    EXPECT_FALSE(t.started());
    EXPECT_TRUE(t.successful());
    EXPECT_TRUE(t->killed());
    EXPECT_EQ(fern::Hub::current().armed_timers(), 0u) << "the start timer stays armed";
    EXPECT_TRUE(t.kill());  // kill second time must not hurt
    sleep(0);
    EXPECT_FALSE(ran);
    EXPECT_EQ(linked, 1);
  }
}

// test__greenlet.py::TestKill::test_non_type_exception(_killall)(_non_block)
// (GV-7): killed with another exception before it started, the task fails
// with that exception, is reported, and a second kill changes nothing.
TEST_F(TaskUpstream, KillingAnUnstartedTaskWithAnErrorFailsItWithThatError) {
  ::testing::internal::CaptureStderr();
  for (int how = 0; how < 2; ++how) {
    bool ran = false;
    auto t = spawn([&] { ran = true; });
    auto error = std::make_exception_ptr(std::out_of_range("killed"));
    if (how == 0) t.kill(error);
    if (how == 1) fern::killall(std::vector<fern::AnyTask>{t}, error);
    EXPECT_TRUE(t.dead());
    EXPECT_FALSE(t.successful());
    EXPECT_FALSE(t->killed());
    EXPECT_THROW(t.get(), std::out_of_range);
    t.kill();
    EXPECT_THROW(t.get(), std::out_of_range);
    sleep(0);
    EXPECT_FALSE(ran);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("std::out_of_range: killed"), std::string::npos) << err;
}

// test__greenlet.py::TestReturn_link / TestRaise_link and their
// link_value / link_exception twins (GV-11): links added to a task that
// already ended fire soon (not inline), every time, in link order, and
// only for its outcome.
TEST_F(TaskUpstream, LinksAddedAfterTheEndFireEachTimeForTheirOutcomeOnly) {
  auto ok = spawn([] { return 25; });
  ::testing::internal::CaptureStderr();
  auto bad = spawn([]() -> int { throw std::out_of_range("raise"); });
  fern::joinall(ok, bad);
  (void)::testing::internal::GetCapturedStderr();
  for (int round = 0; round < 3; ++round) {
    Vec ok_fired, bad_fired;
    ok->link([&](fern::TaskBase&) { ok_fired.push_back("link"); });
    ok->link_value([&](fern::TaskBase&) { ok_fired.push_back("link_value"); });
    ok->link_exception([&](fern::TaskBase&) { ok_fired.push_back("link_exception"); });
    bad->link([&](fern::TaskBase&) { bad_fired.push_back("link"); });
    bad->link_value([&](fern::TaskBase&) { bad_fired.push_back("link_value"); });
    bad->link_exception([&](fern::TaskBase&) { bad_fired.push_back("link_exception"); });
    EXPECT_TRUE(ok_fired.empty() && bad_fired.empty()) << "a link ran inline";
    sleep(0);
    EXPECT_EQ(ok_fired, (Vec{"link", "link_value"})) << "round " << round;
    EXPECT_EQ(bad_fired, (Vec{"link", "link_exception"})) << "round " << round;
    EXPECT_FALSE(ok->has_links());
    EXPECT_FALSE(bad->has_links());
  }
}

// test__exc_info.py::Test::test1 (GL-22 through the hub): a task spawned
// from inside a catch handler starts with no current exception; after
// joining it, `throw;` in the handler rethrows the handler's own exception.
TEST_F(TaskUpstream, ATaskStartsWithoutItsSpawnersExceptionAndLeavesItAlone) {
  bool clean_at_start = false;
  std::string rethrown;
  ::testing::internal::CaptureStderr();
  try {
    throw std::runtime_error("hello");
  } catch (const std::runtime_error&) {
    auto t = spawn([&] {
      clean_at_start = std::current_exception() == nullptr;
      throw std::out_of_range("expected exception in hello");
    });
    t.join();
    EXPECT_THROW(t.get(), std::out_of_range);
    try {
      throw;
    } catch (const std::exception& e) {
      rethrown = e.what();
    }
  }
  (void)::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(clean_at_start);
  EXPECT_EQ(rethrown, "hello");
}

// test__exc_info.py::Test::test2 (HUB-8): a hub callback that raises and
// catches its own exception leaves main's exception state clean.
TEST_F(TaskUpstream, ACallbackCatchingItsOwnErrorLeavesMainClean) {
  bool callback_ran = false;
  fern::Hub::current().run_callback([&] {
    try {
      throw std::out_of_range("expected exception in hello");
    } catch (const std::out_of_range&) {
      callback_ran = std::current_exception() != nullptr;
    }
  });
  sleep(0);
  EXPECT_TRUE(callback_ran);
  EXPECT_EQ(std::current_exception(), nullptr);
  EXPECT_EQ(std::uncaught_exceptions(), 0);
}

// test__hub_join.py::TestJoin::test_join_many_times (HUB-6): the loop can
// be run to idle again and again, and used in between.
TEST_F(TaskUpstream, RunningTheLoopToIdleManyTimesKeepsTheHubUsable) {
  fern::Hub& hub = fern::Hub::current();
  EXPECT_TRUE(hub.run_until_idle());
  EXPECT_FALSE(hub.greenlet().dead());
  EXPECT_TRUE(hub.run_until_idle());
  sleep(0.001);
  bool ran = false;
  spawn([&] { ran = true; });
  EXPECT_TRUE(hub.run_until_idle());
  EXPECT_TRUE(ran);
  EXPECT_TRUE(hub.run_until_idle());
}

// Hostile: a body that throws something that is not a std::exception (an
// int, a plain struct) fails the task like any error: reported, kept,
// rethrown as itself by get(), and its links see the failure (GV-3).
TEST_F(TaskUpstream, ABodyThrowingANonStdExceptionFailsTheTaskWithIt) {
  struct Plain {
    int code;
  };
  ::testing::internal::CaptureStderr();
  auto i = spawn([]() -> int { throw 42; });
  auto p = spawn([] { throw Plain{7}; });
  bool failure_linked = false;
  p->link_exception([&](fern::TaskBase&) { failure_linked = true; });
  fern::joinall(i, p);
  sleep(0);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find(i->describe()), std::string::npos) << err;
  EXPECT_NE(err.find(p->describe()), std::string::npos) << err;
  EXPECT_FALSE(i.successful());
  EXPECT_FALSE(p.successful());
  EXPECT_TRUE(failure_linked);
  try {
    i.get();
    ADD_FAILURE() << "get() returned";
  } catch (int code) {
    EXPECT_EQ(code, 42);
  }
  try {
    p.get();
    ADD_FAILURE() << "get() returned";
  } catch (const Plain& e) {
    EXPECT_EQ(e.code, 7);
  }
}

// Hostile (GV-6): kill() of the caller's own task blocks at once and the
// kill is raised out of that call; the task ends killed.
TEST_F(TaskUpstream, ATaskKillingItselfWithABlockingKillDiesInThatCall) {
  fern::Task<void> t;
  t = fern::Task<void>::create([&] {
    log.push_back("before");
    try {
      t.kill();
    } catch (const fern::GreenletExit&) {
      log.push_back("kill raised GreenletExit");
      throw;
    }
    log.push_back("after kill");
  });
  t.start();
  t.join();
  EXPECT_EQ(log, (Vec{"before", "kill raised GreenletExit"}));
  EXPECT_TRUE(t->killed());
  EXPECT_TRUE(t.successful());
  t = {};  // the body's capture of t: no cycle left behind
}

// Hostile (GV-6, GV-11): a link that kills its own (dead) task is a no-op;
// one that kills another, suspended task from the hub delivers the kill
// without blocking the loop (kill_async) -- a blocking kill from the hub is
// the typed BlockingSwitchOutError, reported as the link's error (HUB-9).
TEST_F(TaskUpstream, KillingFromALinkNeverBlocksTheHub) {
  auto victim = spawn([] { sleep(1e6); });
  auto other = spawn([] { sleep(1e6); });
  auto t = spawn([] {});
  bool self_dead = false, async_returned = false;
  t->link([&](fern::TaskBase& self) { self_dead = self.kill(); });
  t->link([&](fern::TaskBase&) {
    victim.kill_async();
    async_returned = true;
  });
  ::testing::internal::CaptureStderr();
  t->link([&](fern::TaskBase&) { other.kill(); });
  t.join();
  victim.join();
  other.join();  // the kill was queued before the blocking part refused
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(self_dead);
  EXPECT_TRUE(async_returned);
  EXPECT_TRUE(victim->killed());
  EXPECT_TRUE(other->killed());
  EXPECT_NE(err.find("impossible to call a blocking function"), std::string::npos) << err;
}

// Hostile (GL-19, GV-6): a destructor that blocks, and that throws and
// catches its own exception across the switch, while a kill unwinds its
// task; another task throws and catches meanwhile. The kill still ends the
// task as killed and nobody sees another's exception.
TEST_F(TaskUpstream, DestructorsThatBlockWhileAKillUnwindsFinishTheKill) {
  struct Cleanup {
    Vec& log;
    ~Cleanup() {
      log.push_back(std::uncaught_exceptions() == 1 ? "unwinding" : "not unwinding");
      try {
        throw std::out_of_range("in destructor");
      } catch (const std::out_of_range& e) {
        sleep(0);  // blocks in the middle of the unwinding
        sleep(0.001);
        log.push_back(std::string("still ") + e.what());
      }
    }
  };
  auto t = spawn([&] {
    Cleanup c{log};
    sleep(1e6);
  });
  auto noisy = spawn([&] {
    for (int i = 0; i < 3; ++i) {
      try {
        throw std::runtime_error("noisy");
      } catch (const std::runtime_error&) {
        sleep(0);
      }
    }
  });
  sleep(0);
  EXPECT_TRUE(t.kill());
  noisy.join();
  EXPECT_EQ(log, (Vec{"unwinding", "still in destructor"}));
  EXPECT_TRUE(t->killed());
  EXPECT_TRUE(t.successful());
}

// Hostile (TO-2, TO-3): a Timeout moved from still names its timer (a
// handle, like a copy): asking it, cancelling it or starting it again is
// defined, never a null dereference.
TEST_F(TaskUpstream, AMovedFromTimeoutIsStillAUsableHandle) {
  fern::Timeout a(1e6);
  a.start();
  fern::Timeout b = std::move(a);
  EXPECT_TRUE(b.pending());
  EXPECT_TRUE(a.pending());  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_EQ(a.str(), b.str());
  a.cancel();
  EXPECT_FALSE(b.pending());
  fern::Timeout c;
  c = std::move(b);
  EXPECT_NO_THROW(b.start());  // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(c.pending());
  EXPECT_THROW(c.start(), fern::TimeoutPendingError);
  c.cancel();
  EXPECT_FALSE(a.pending());
}

// Hostile (TO-2, TO-3): a Timeout reused by another task after it fired in
// the first one fires in the one that started it last; cancelled by a
// third greenlet of the same thread, it never fires.
TEST_F(TaskUpstream, AReusedTimeoutFiresInItsLatestStarterOnly) {
  fern::Timeout timeout(0.05);
  auto starter = [&](std::string name) {
    timeout.start();
    try {
      sleep(1e6);
    } catch (const fern::Timeout& t) {
      log.push_back(name + (t == timeout ? ": mine" : ": other"));
    }
  };
  spawn(starter, "first").join();
  spawn(starter, "second").join();
  auto third = spawn([&] {
    timeout.start();
    sleep(0.1);  // past the Timeout's 0.05 s: it would have fired
    log.push_back("third slept");
  });
  sleep(0);  // third armed it
  timeout.cancel();
  third.join();
  EXPECT_EQ(log, (Vec{"first: mine", "second: mine", "third slept"}));
}

// Hostile (TO-2, HUB-8): a Timeout started in the hub itself (from a
// callback) would throw into the hub when it fires: that is refused with
// the typed InvalidSwitchError, reported, and the loop goes on (gevent
// reports the Timeout raised in its loop the same way).
TEST_F(TaskUpstream, ATimeoutStartedInTheHubIsReportedWhenItFiresAndTheLoopGoesOn) {
  ::testing::internal::CaptureStderr();
  fern::Timeout in_hub;
  fern::Hub::current().run_callback([&] { in_hub = fern::Timeout::start_new(0.001); });
  sleep(0);
  ASSERT_TRUE(in_hub.pending());
  while (in_hub.pending()) sleep(0.001);  // until it fired
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fern::InvalidSwitchError"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot throw into the hub"), std::string::npos) << err;
  bool ran = false;
  spawn([&] { ran = true; }).join();
  EXPECT_TRUE(ran);
}

}  // namespace
