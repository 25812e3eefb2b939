// The hub: SEMANTICS HUB-1 .. HUB-12 (ordering facts in scheduling_test).
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hub_fixture.h"

namespace {

using fern::Hub;
using fern::sleep;
using Vec = std::vector<std::string>;
using HubLoop = fern::testing::HubTest;

// HUB-1
TEST_F(HubLoop, HubIsAGreenletWhoseParentIsTheMainGreenlet) {
  fern::Greenlet hub = Hub::current().greenlet();
  EXPECT_EQ(hub.parent(), fern::Greenlet::current());
  EXPECT_TRUE(fern::Greenlet::current().is_main());
  EXPECT_EQ(&Hub::current(), &Hub::current());
}

// HUB-2, seed 44
// An exception out of the hub's loop would end it, and every later blocking
// call with it: throw_in aimed at the hub is refused, from main or a task,
// and the loop goes on (its own teardown still unwinds it).
TEST_F(HubLoop, ThrowingIntoTheHubIsRefusedAndTheLoopGoesOn) {
  fern::Greenlet hub = Hub::current().greenlet();
  EXPECT_THROW(hub.throw_in(std::make_exception_ptr(std::runtime_error("x"))), fern::InvalidSwitchError);
  EXPECT_THROW(hub.throw_in(), fern::InvalidSwitchError);
  auto t = fern::spawn([hub]() mutable { EXPECT_THROW(hub.throw_in(), fern::InvalidSwitchError); });
  sleep(0.001);
  t.join();
  EXPECT_TRUE(hub.active());
}

TEST_F(HubLoop, BlockingWithNothingThatCanWakeRaisesLoopExit) {
  fern::Waiter forever;
  EXPECT_THROW(forever.wait(), fern::LoopExit);
  // The loop carries on afterwards.
  sleep(0.001);
}

// HUB-2: a task blocked forever does not hang main's join either.
TEST_F(HubLoop, JoiningATaskThatCanNeverWakeRaisesLoopExit) {
  auto stuck = fern::spawn([] {
    fern::Waiter never;
    never.wait();
  });
  EXPECT_THROW(stuck.join(), fern::LoopExit);
  stuck.kill_async();
  sleep(0);
  EXPECT_TRUE(stuck.dead());
}

// HUB-4, HUB-8
TEST_F(HubLoop, CallbackErrorsAreReportedAndTheLoopGoesOn) {
  Hub& hub = Hub::current();
  ::testing::internal::CaptureStderr();
  hub.run_callback([] { throw std::runtime_error("callback failed"); });
  hub.run_callback([&] { log.push_back("next callback ran"); });
  sleep(0);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("callback failed"), std::string::npos) << err;
  EXPECT_EQ(log, Vec{"next callback ran"});
  EXPECT_FALSE(std::current_exception());
}

// HUB-15, GV-19 (test__systemerror::TestCallback): a callback raising
// SystemExit is not reported; it stops main's wait at once, before the
// callbacks queued behind it, and the loop goes on afterwards.
TEST_F(HubLoop, CallbackRaisingSystemExitInterruptsMainAtOnce) {
  Hub& hub = Hub::current();
  ::testing::internal::CaptureStderr();
  hub.run_callback([] { throw fern::SystemExit(3); });
  hub.run_callback([&] { log.push_back("later callback"); });
  try {
    sleep(10);
    ADD_FAILURE() << "sleep returned";
  } catch (const fern::SystemExit& e) {
    EXPECT_EQ(e.code(), 3);
    log.push_back("main got SystemExit");
  }
  sleep(0);
  EXPECT_EQ(log, (Vec{"main got SystemExit", "later callback"}));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// HUB-6, HUB-7
TEST_F(HubLoop, RunUntilIdleReturnsWhenWorkEndsAndHonoursTimeout) {
  Hub& hub = Hub::current();
  auto t = fern::spawn([&] {
    sleep(0.001);
    log.push_back("done");
  });
  EXPECT_TRUE(hub.run_until_idle());
  EXPECT_EQ(log, Vec{"done"});
  EXPECT_TRUE(hub.run_until_idle());  // again: nothing to do, still true
  auto slow = fern::spawn([] { sleep(10); });
  EXPECT_FALSE(hub.run_until_idle_for(0.002));
  slow.kill();
  // An unreferenced timer does not keep the loop alive.
  struct Never : fern::Timer {
  } unref;
  unref.set_ref(false);
  unref.fn = [](fern::Timer*) {};
  hub.start_timer(&unref, fern::Deadline::after(10.0));
  EXPECT_TRUE(hub.run_until_idle());
  unref.unlink();
}

// HUB-9
TEST_F(HubLoop, BlockingInsideTheHubIsATypedError) {
  Hub& hub = Hub::current();
  bool refused = false;
  hub.run_callback([&] {
    try {
      sleep(0);
    } catch (const fern::BlockingSwitchOutError&) {
      refused = true;
    }
  });
  sleep(0);
  EXPECT_TRUE(refused);
}

// HUB-10
TEST_F(HubLoop, WaiterWokenBeforeWaitReturnsAtOnce) {
  fern::Waiter w;
  Hub::current().run_callback([&] { w.wake(); });
  sleep(0);
  EXPECT_TRUE(w.ready());
  w.wait();  // no switch needed
  fern::Waiter e;
  Hub::current().run_callback([&] { e.wake_error(std::make_exception_ptr(std::logic_error("woken with error"))); });
  EXPECT_THROW(e.wait(), std::logic_error);
}

// HUB-10: gevent's Waiter.switch from a greenlet other than the hub raises
// AssertionError ("Can only use Waiter.switch method from the Hub greenlet").
// A wake from a task (or main) would switch into the parked greenlet and
// strand the caller, which nothing switches back to: InvalidSwitchError,
// the waiter untouched. Waking it from a hub callback still works.
TEST_F(HubLoop, WakingAParkedGreenletFromOutsideTheHubIsRefused) {
  fern::Waiter w;
  bool resumed = false;
  auto parked = fern::spawn([&] {
    w.wait();
    resumed = true;
  });
  sleep(0);  // it parks
  ASSERT_TRUE(w.waiting());
  EXPECT_THROW(w.wake(), fern::InvalidSwitchError);
  EXPECT_THROW(w.wake_error(std::make_exception_ptr(std::runtime_error("x"))), fern::InvalidSwitchError);
  auto other = fern::spawn([&] { EXPECT_THROW(w.wake(), fern::InvalidSwitchError); });
  other.join();
  EXPECT_TRUE(w.waiting());
  EXPECT_FALSE(w.ready());
  EXPECT_FALSE(resumed);
  Hub::current().run_callback([&] { w.wake(); });
  parked.join();
  EXPECT_TRUE(resumed);
  // Not parked: a wake from anywhere is kept for the next wait.
  fern::Waiter early;
  early.wake();
  early.wait();
}

// GL-24 with a hub: the tasks' starts and ends and the hub's own switches
// are traced, in order: each switch starts where the one before it landed.
TEST_F(HubLoop, TheHubsSwitchesAreTracedInOrder) {
  std::vector<std::pair<fern::Greenlet, fern::Greenlet>> switches;
  int ran = 0;
  fern::Greenlet::Trace before = fern::Greenlet::set_trace(
      [&](fern::TraceEvent e, const fern::Greenlet& origin, const fern::Greenlet& target) {
        EXPECT_EQ(e, fern::TraceEvent::kSwitch);
        switches.emplace_back(origin, target);
      });
  auto a = fern::spawn([&ran] {
    ++ran;
    sleep(0);
    ++ran;
  });
  auto b = fern::spawn([&ran] { ++ran; });
  fern::joinall(a, b);
  fern::Greenlet::set_trace(std::move(before));
  EXPECT_EQ(ran, 3);
  ASSERT_GE(switches.size(), 4u);
  fern::Greenlet main = fern::Greenlet::current();
  EXPECT_EQ(switches.front().first, main);
  EXPECT_EQ(switches.back().second, main);
  bool saw_a = false, saw_b = false, saw_hub = false;
  for (std::size_t i = 0; i < switches.size(); ++i) {
    if (i > 0) EXPECT_EQ(switches[i].first, switches[i - 1].second) << "switch " << i;
    saw_a |= switches[i].second == a->greenlet();
    saw_b |= switches[i].second == b->greenlet();
    saw_hub |= switches[i].second == Hub::current().greenlet();
  }
  EXPECT_TRUE(saw_a && saw_b && saw_hub);
}

// Cross-thread callbacks (run_callback_threadsafe) wake a blocked hub.
TEST_F(HubLoop, ThreadsafeCallbackFromAnotherThreadWakesTheHub) {
  Hub& hub = Hub::current();
  fern::Waiter w;
  fern::Timeout guard(30);  // referenced: keeps the loop waiting for the thread
  guard.start();
  std::thread other([&] { hub.run_callback_threadsafe([&] { w.wake(); }); });
  w.wait();
  guard.cancel();
  other.join();
}

// After fork, the child rebuilds its poller and wake-up fd (reinit).
TEST_F(HubLoop, ChildAfterForkReinitialisesItsLoop) {
  Hub& hub = Hub::current();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    hub.reinit_after_fork();
    std::atomic<bool> called{false};
    std::thread t([&] { hub.run_callback_threadsafe([&] { called = true; }); });
    fern::Timeout guard(5);
    guard.start();
    bool ok = true;
    try {
      while (!called) sleep(0.001);
    } catch (...) {
      ok = false;
    }
    t.join();
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  close(fds[0]);
  close(fds[1]);
  sleep(0.001);  // the parent's loop still works
}

}  // namespace
