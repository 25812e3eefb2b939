// Event and AsyncResult: SEMANTICS EV-1 .. EV-7, F7, F8, F10, TO-10, probe
// sequences S6, S7, S8, S13 and seed 44 (deadlock ends in LoopExit).
#include "fern/sync/event.h"

#include <memory>
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
using Events = fern::testing::HubTest;
using AsyncResults = fern::testing::HubTest;

// S6, F7, EV-1, EV-3
TEST_F(Events, SetDoesNotSwitchAndWakesWaitersInWaitOrder) {
  fern::Event ev;
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 4; ++n)
    tasks.push_back(spawn([&, n] {
      log.push_back("wait-" + std::to_string(n));
      bool r = ev.wait_until(fern::Deadline::never());
      log.push_back("woke-" + std::to_string(n) + "=" + (r ? "True" : "False"));
    }).core());
  sleep(0);
  log.push_back("set");
  ev.set();
  log.push_back("after-set (still in setter)");
  sleep(0);
  EXPECT_EQ(log, (Vec{"wait-0", "wait-1", "wait-2", "wait-3", "set", "after-set (still in setter)", "woke-0=True",
                      "woke-1=True", "woke-2=True", "woke-3=True"}));
  fern::joinall(tasks);
}

// S7, F10, EV-2
TEST_F(Events, SetThenClearStillWakesWaiters) {
  fern::Event ev;
  std::vector<bool> results;
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 3; ++n) tasks.push_back(spawn([&] { results.push_back(ev.wait_until(fern::Deadline::never())); }).core());
  sleep(0);
  ev.set();
  ev.clear();
  fern::joinall(tasks);
  EXPECT_EQ(results, (std::vector<bool>{true, true, true}));
  EXPECT_FALSE(ev.is_set());
}

// S8, F8, EV-3
TEST_F(Events, WaitWhileNotificationIsPendingQueuesBehindEarlierWaiters) {
  fern::Event ev;
  std::vector<int> res;
  auto wta = [&](int a) {
    ev.wait();
    res.push_back(a);
  };
  auto t1 = spawn(wta, 1);
  auto t2 = spawn(wta, 2);
  fern::idle();
  ev.set();
  wta(3);
  EXPECT_EQ(res, (std::vector<int>{1, 2, 3}));
  fern::joinall({t1.core(), t2.core()});
}

// EV-1, EV-2 (probe EV1)
TEST_F(Events, StateAndWaitResultsFollowGevent) {
  fern::Event ev;
  EXPECT_FALSE(ev.is_set());
  EXPECT_FALSE(ev.ready());
  EXPECT_FALSE(ev.wait_for(0.01));
  EXPECT_FALSE(ev.wait_for(0));
  ev.set();
  EXPECT_TRUE(ev.is_set());
  EXPECT_TRUE(ev.ready());
  EXPECT_TRUE(ev.wait_until(fern::Deadline::never()));
  EXPECT_TRUE(ev.wait_for(0));
  ev.clear();
  EXPECT_FALSE(ev.is_set());
}

// TO-10: a timed-out waiter and one interrupted by a Timeout leave the list.
TEST_F(Events, TimedOutAndInterruptedWaitersLeaveTheList) {
  fern::Event ev;
  auto timed = spawn([&] { return ev.wait_for(0.01); });
  auto interrupted = spawn([&] {
    try {
      fern::TimeoutScope scope(0.01);
      ev.wait();
    } catch (const fern::Timeout&) {
      return true;
    }
    return false;
  });
  sleep(0);
  EXPECT_EQ(ev.waiter_count(), 2u);
  EXPECT_FALSE(timed.get());
  EXPECT_TRUE(interrupted.get());
  EXPECT_EQ(ev.waiter_count(), 0u);
  ev.set();  // nobody left to wake: nothing dangles
  sleep(0);
}

// TO-10, GV-5: a killed waiter leaves the list; the others still wake.
TEST_F(Events, KilledWaiterLeavesTheListAndOthersStillWake) {
  fern::Event ev;
  auto a = spawn([&] { ev.wait(); });
  auto b = spawn([&] { return ev.wait_until(fern::Deadline::never()); });
  sleep(0);
  a.kill();
  EXPECT_EQ(ev.waiter_count(), 1u);
  ev.set();
  EXPECT_TRUE(b.get());
}

// The first woken greenlet destroys the event while its wake-up round runs.
TEST_F(Events, WokenWaiterMayDestroyTheEvent) {
  auto ev = std::make_unique<fern::Event>();
  auto first = spawn([&] {
    ev->wait();
    ev.reset();
  });
  auto second = spawn([&] { ev->wait(); });
  sleep(0);
  ev->set();
  first.join();
  EXPECT_FALSE(ev);
  EXPECT_FALSE(second.dead());  // never notified: it stays parked until killed
  second.kill();
}

// Seed 44, HUB-2: three greenlets passing a turn through three events end
// in LoopExit in the joiner once the first one finishes its rounds.
TEST_F(Events, RoundRobinThatRunsDryEndsInLoopExit) {
  fern::Event e1, e2, e3;
  auto turn = [&](std::string name, fern::Event& mine, fern::Event& next) {
    for (int i = 0; i < 3; ++i) {
      log.push_back(name);
      next.set();
      mine.clear();
      mine.wait();
    }
  };
  auto g1 = spawn(turn, "1", std::ref(e1), std::ref(e2));
  auto g2 = spawn(turn, "2", std::ref(e2), std::ref(e3));
  auto g3 = spawn(turn, "3", std::ref(e3), std::ref(e1));
  EXPECT_THROW(fern::joinall({g1.core(), g2.core(), g3.core()}), fern::LoopExit);
  EXPECT_EQ(log, (Vec{"1", "2", "3", "1", "2", "3", "1", "2", "3"}));
  EXPECT_TRUE(g1.dead());
  fern::killall({g2.core(), g3.core()});
}

// S13, F7
TEST_F(AsyncResults, AllWaitersGetTheValueInWaitOrder) {
  fern::AsyncResult<std::string> ar;
  std::vector<std::pair<int, std::string>> got;
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 3; ++n) tasks.push_back(spawn([&, n] { got.emplace_back(n, ar.get()); }).core());
  sleep(0);
  ar.set("V");
  sleep(0);
  EXPECT_EQ(got, (std::vector<std::pair<int, std::string>>{{0, "V"}, {1, "V"}, {2, "V"}}));
  fern::joinall(tasks);
}

// EV-4, EV-5 (probe EV2)
TEST_F(AsyncResults, StateBeforeAndAfterSetFollowsGevent) {
  fern::AsyncResult<int> a;
  EXPECT_FALSE(a.ready());
  EXPECT_FALSE(a.successful());
  EXPECT_FALSE(a.value());
  EXPECT_FALSE(a.exception());
  EXPECT_THROW(a.get_nowait(), fern::Timeout);
  EXPECT_THROW(a.get_nowait(), fern::Timeout);
  EXPECT_THROW(a.get_for(0.01), fern::Timeout);
  EXPECT_FALSE(a.wait_for(0.01));
  a.set(5);
  EXPECT_TRUE(a.ready());
  EXPECT_TRUE(a.successful());
  EXPECT_EQ(a.value(), 5);
  EXPECT_EQ(a.get(), 5);
  EXPECT_TRUE(a.wait_until(fern::Deadline::never()));
  a.set(6);
  EXPECT_EQ(a.get(), 6);
}

// EV-4
TEST_F(AsyncResults, SetExceptionIsRethrownByGet) {
  fern::AsyncResult<int> b;
  auto waiter = spawn([&] { return b.get(); });
  sleep(0);
  b.set_exception(std::make_exception_ptr(std::out_of_range("k")));
  EXPECT_THROW(waiter.get(), std::out_of_range);
  EXPECT_THROW(b.get(), std::out_of_range);
  EXPECT_TRUE(b.ready());
  EXPECT_FALSE(b.successful());
  EXPECT_TRUE(b.wait_until(fern::Deadline::never()));
  EXPECT_FALSE(b.value());
  EXPECT_TRUE(b.exception());
}

// EV-6
TEST_F(AsyncResults, IsALinkTargetOfATask) {
  fern::AsyncResult<std::string> c;
  auto t = spawn([] { return std::string("via link"); });
  fern::link_to(t, c);
  EXPECT_EQ(c.get(), "via link");

  fern::AsyncResult<int> failed, value_only;
  ::testing::internal::CaptureStderr();
  auto bad = spawn([]() -> int { throw std::invalid_argument("bad"); });
  bad->link_exception(failed.as_link());
  bad->link_value(value_only.as_link());
  EXPECT_THROW(failed.get(), std::invalid_argument);
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(value_only.ready());  // link_value routes only a success

  fern::AsyncResult<void> killed;
  auto sleeper = spawn([] { sleep(10); });
  fern::link_to(sleeper, killed);
  sleep(0);
  sleeper.kill();
  EXPECT_THROW(killed.get(), fern::GreenletExit);
}

// A result destroyed before its task ends: the link fires into nothing
// (ASan sees any touch of the freed result).
TEST_F(AsyncResults, ALinkToAResultDestroyedFirstDoesNothing) {
  auto gone = std::make_unique<fern::AsyncResult<int>>();
  fern::AsyncResult<int> kept;
  auto t = spawn([] {
    sleep(0);
    return 5;
  });
  fern::link_to(t, *gone);
  fern::link_to(t, kept);
  gone.reset();
  EXPECT_EQ(kept.get(), 5);
  t.join();
}

// EV-7
TEST_F(AsyncResults, TimeoutsAroundGet) {
  fern::AsyncResult<int> a;
  EXPECT_EQ(fern::with_timeout(0.01, [&] { return a.get(); }, -1), -1);
  try {
    fern::TimeoutScope scope(fern::Timeout::start_new(0, std::make_exception_ptr(std::length_error("x"))));
    a.get();
    FAIL() << "not interrupted";
  } catch (const std::length_error&) {
  }
}

// lock_tests.py::EventTests::test_notify (test__threading_2::EventTests):
// every waiter is woken by set() with the flag set, and a second wait on a
// set event returns at once; again after set() and clear().
TEST_F(Events, EveryWaiterSeesTheFlagAndWaitsAgainAtOnce) {
  fern::Event evt;
  auto check_notify = [&] {
    std::vector<bool> first;
    std::vector<bool> second;
    std::vector<fern::AnyTask> tasks;
    for (int n = 0; n < 5; ++n)
      tasks.push_back(spawn([&] {
        evt.wait();
        first.push_back(evt.is_set());
        evt.wait();
        second.push_back(evt.is_set());
      }).core());
    sleep(0);
    EXPECT_TRUE(first.empty());
    EXPECT_EQ(evt.waiter_count(), 5u);
    evt.set();
    fern::joinall(tasks);
    EXPECT_EQ(first, std::vector<bool>(5, true));
    EXPECT_EQ(second, std::vector<bool>(5, true));
  };
  check_notify();
  evt.set();
  evt.clear();
  check_notify();
}

// lock_tests.py::EventTests::test_timeout: on a clear event wait_for(0) is
// false at once and wait_for(0.2) false after at least 0.18 s (a lower bound
// only); once set, both are true.
TEST_F(Events, TimedWaitsOnAClearEventAreFalseAndOnASetOneTrue) {
  fern::Event evt;
  auto run = [&] {
    std::vector<std::pair<bool, bool>> results;  // (wait_for(0), wait_for(0.2))
    std::vector<fern::AnyTask> tasks;
    for (int n = 0; n < 5; ++n)
      tasks.push_back(spawn([&] {
        bool now = evt.wait_for(0.0);
        auto t1 = fern::monotonic_now();
        bool later = evt.wait_for(0.2);
        if (!later) EXPECT_GE(fern::monotonic_now() - t1, 180'000'000);
        results.emplace_back(now, later);
      }).core());
    fern::joinall(tasks);
    return results;
  };
  EXPECT_EQ(run(), (std::vector<std::pair<bool, bool>>(5, {false, false})));
  evt.set();
  EXPECT_EQ(run(), (std::vector<std::pair<bool, bool>>(5, {true, true})));
}

}  // namespace
