// More of gevent's own tests of the core and sync layers (gevent 04752c4
// src/gevent/tests/): test__issue330.py, test__issue607.py,
// test__issue467.py, test__issue639.py, test__nondefaultloop.py,
// test__core_watcher.py, test___ident.py, test__util.py, test__thread.py,
// test__issue1864.py, test__memleak.py. Each test names its upstream case and
// the SEMANTICS ids it covers. Not ported, being Python's: test__events.py
// (zope.interface declarations), test__issue112.py and test__issue_728.py
// (monkey-patching and imports), test__threading.py (threading._active
// bookkeeping and a monkey-patched threading.Lock), test__util.py's
// GreenletTree and spawn tree (GV-23, not built), assert_switches (a greenlet
// trace function) and clear_stack_frames, test__core_watcher.py's
// non-callable and args checks (the C++ type system), test__core_timer.py's
// TestTimerResolution (an upper time bound), test__GreenletExit.py and
// test__core_timer.py's other cases (gevent_core_upstream_test.cpp).
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/debug.h"
#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/semaphore.h"
#include "fern/sync/wait_any.h"
#include "hub_fixture.h"

namespace {

using fern::Hub;
using fern::sleep;
using fern::spawn;
using GeventCoreMisc = fern::testing::HubTest;

struct MyException : std::runtime_error {
  MyException() : std::runtime_error("MyException") {}
};

// ---------------------------------------------------------------- test__issue330.py

// TestSwitch::test_gevent_kill, test_greenlet_kill, test_throw (GV-4, GV-5):
// a task killed before it started never runs, and ends killed, successful,
// without an exception. g.throw(GreenletExit) is kill(GreenletExit).
TEST_F(GeventCoreMisc, KillingUnstartedTasksNeverRunsThem) {
  for (bool explicit_exit : {false, true}) {
    bool switched_to[2] = {false, false};
    auto g = spawn([&] { switched_to[0] = true; });
    auto g2 = spawn([&] { switched_to[1] = true; });
    if (explicit_exit) {
      g.kill(std::make_exception_ptr(fern::GreenletExit()));
      g2.kill(std::make_exception_ptr(fern::GreenletExit()));
    } else {
      g.kill();
      g2.kill();
    }
    fern::joinall(g, g2);
    EXPECT_FALSE(switched_to[0] || switched_to[1]);
    for (auto* t : {&g, &g2}) {
      EXPECT_TRUE((*t)->killed());
      EXPECT_TRUE(t->successful());
      EXPECT_EQ((*t)->exception(), nullptr);
    }
  }
}

// TestSwitch::test_kill_exception (GV-7): an exception given to kill() that
// the task catches is not its exception: it ends successfully.
TEST_F(GeventCoreMisc, AKillExceptionTheTaskCatchesIsNotItsException) {
  bool caught = false;
  auto g = spawn([&] {
    try {
      for (;;) sleep(0);
    } catch (const MyException&) {
      caught = true;
    }
  });
  sleep(0);
  g.kill(std::make_exception_ptr(MyException()));
  sleep(0);
  EXPECT_TRUE(caught);
  EXPECT_EQ(g->exception(), nullptr);
  EXPECT_TRUE(g.successful());
}

// ---------------------------------------------------------------- test__issue607.py

// TestKillWithException::test_kill_without_exception (GV-4): a plain kill
// is a success. gevent's get() returns the GreenletExit as the value; a
// Task<R> cannot hold one in R, so fern's get() raises it (task.h:
// "killed -> GreenletExit"), while exception() stays empty.
TEST_F(GeventCoreMisc, KillWithoutExceptionIsASuccess) {
  auto g = spawn([] { sleep(999); });
  g.kill();
  EXPECT_TRUE(g.successful());
  EXPECT_TRUE(g->killed());
  EXPECT_EQ(g->exception(), nullptr);
  EXPECT_THROW(g.get(), fern::GreenletExit);
}

// test_kill_with_exception, test_kill_with_exception_after_started (GV-7):
// killed with another exception, before or after it started, the task
// fails with it: get() raises it, value is empty, exception is it.
TEST_F(GeventCoreMisc, KillWithAnExceptionFailsTheTaskWithIt) {
  for (bool started : {false, true}) {
    auto g = spawn([] {
      sleep(999);
      return 1;
    });
    if (started) EXPECT_FALSE(g.join_for(0));
    ::testing::internal::CaptureStderr();  // the failure is reported
    g.kill(std::make_exception_ptr(MyException()));
    sleep(0);
    ::testing::internal::GetCapturedStderr();
    EXPECT_FALSE(g.successful());
    EXPECT_THROW(g.get(), MyException);
    EXPECT_FALSE(g.value().has_value());
    ASSERT_NE(g->exception(), nullptr);
    EXPECT_THROW(std::rethrow_exception(g->exception()), MyException);
  }
}

// ---------------------------------------------------------------- test__issue467.py

// Test::test (HUB-13, GV-3): iwait over tasks, one already dead and one
// failing, yields all four; the failure is not raised in the iterating
// greenlet while it sleeps between results.
TEST_F(GeventCoreMisc, IwaitYieldsEveryTaskAndAFailureDoesNotReachTheWaiter) {
  auto worker = [](int i) {
    if (i == 2) throw std::invalid_argument("2");
    return i;
  };
  auto done_worker = spawn(worker, -1);
  fern::joinall(done_worker);
  std::vector<fern::Task<int>> workers;
  for (int i = 0; i < 3; ++i) workers.push_back(spawn(worker, i));
  workers.push_back(done_worker);
  ::testing::internal::CaptureStderr();
  int finished = 0;
  {
    fern::IWait it({workers[0], workers[1], workers[2], workers[3]});
    while (it.next()) {
      ++finished;
      EXPECT_NO_THROW(sleep(0.01));
    }
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(finished, 4);
  EXPECT_THROW(workers[2].get(), std::invalid_argument);
  EXPECT_NE(err.find("2"), std::string::npos) << err;
}

// ---------------------------------------------------------------- test__issue639.py

// Test::test (HUB-3, HUB-5): sleep(0) then idle() return in an idle hub.
TEST_F(GeventCoreMisc, SleepZeroThenIdleReturn) {
  bool other_ran = false;
  auto t = spawn([&] { other_ran = true; });
  sleep(0);
  fern::idle();
  EXPECT_TRUE(other_ran);
}

// ---------------------------------------------------------------- test__nondefaultloop.py

// (HUB-1, HUB-4): a loop that is not the main thread's default one (fern:
// another thread's hub) runs a callback, and its run() returns once idle.
TEST_F(GeventCoreMisc, ANonDefaultLoopRunsItsCallback) {
  std::vector<int> log_;
  std::thread t([&] {
    Hub& hub = Hub::current();
    hub.run_callback([&] { log_.push_back(1); });
    bool idle = hub.run_until_idle();
    Hub::destroy_current();
    if (!idle) log_.push_back(-1);
  });
  t.join();
  EXPECT_EQ(log_, std::vector<int>{1});
}

// ---------------------------------------------------------------- test__core_watcher.py

// Test::test_run (F5, HUB-6): a started timer fires once in loop.run();
// started again with a callback that stops itself, it fires once more.
TEST_F(GeventCoreMisc, ATimerRunsInTheLoopAndOneThatStopsItselfRunsOnce) {
  Hub& hub = Hub::current();
  struct Logging : fern::Timer {
    std::vector<int> lst;
  } timer;
  timer.fn = [](fern::Timer* t) { static_cast<Logging*>(t)->lst.push_back(0); };
  hub.start_timer(&timer, fern::Deadline::after(0.01));
  EXPECT_TRUE(hub.run_until_idle());
  hub.update_now();
  EXPECT_EQ(timer.lst, std::vector<int>{0});
  timer.fn = [](fern::Timer* t) {
    auto* self = static_cast<Logging*>(t);
    self->fn = [](fern::Timer*) { ADD_FAILURE() << "the replaced callback ran"; };
    self->lst.push_back(25);
    self->unlink();  // watcher.close()
  };
  hub.start_timer(&timer, fern::Deadline::after(0.01));
  EXPECT_TRUE(hub.run_until_idle());
  EXPECT_EQ(timer.lst, (std::vector<int>{0, 25}));
  EXPECT_FALSE(timer.queued());
}

// ---------------------------------------------------------------- test___ident.py

// TestIdent::test_basic (GV-17): a task keeps its ident; a second one gets
// the next; once a task is gone its ident is handed out again, and the
// default name follows it ("Greenlet-N", gevent's N being minimal_ident).
TEST_F(GeventCoreMisc, MinimalIdentsAreStableAndReusedOnceTheTaskIsGone) {
  auto make = [] { return fern::Task<void>::create([] {}); };
  auto target = std::make_optional(make());
  const unsigned long first = (*target)->minimal_ident();
  const std::string first_name = (*target)->name();
  EXPECT_EQ((*target)->minimal_ident(), first);
  auto target2 = make();
  const unsigned long second = target2->minimal_ident();
  EXPECT_NE(second, first);
  EXPECT_EQ((*target)->minimal_ident(), first);
  target.reset();  // the last reference: the task is destroyed
  auto target3 = make();
  EXPECT_EQ(target2->minimal_ident(), second);
  EXPECT_EQ(target3->minimal_ident(), first);
  EXPECT_EQ(target3->name(), first_name);
}

// GV-17, as gevent's Greenlet.minimal_ident: given on first use, not at
// spawn, so the task asked first gets the smallest free one.
TEST_F(GeventCoreMisc, MinimalIdentIsGivenOnFirstUse) {
  auto a = fern::Task<void>::create([] {});
  auto b = fern::Task<void>::create([] {});
  EXPECT_EQ(a->minimal_ident_if_given(), 0u);
  EXPECT_EQ(b->minimal_ident_if_given(), 0u);
  const unsigned long first = b->minimal_ident();
  EXPECT_NE(first, 0u);
  EXPECT_EQ(b->minimal_ident_if_given(), first);
  EXPECT_EQ(b->name(), "Greenlet-" + std::to_string(first - 1));
  EXPECT_GT(a->minimal_ident(), first);
}

// TestIdent::test_circle: with three tasks alive at a time, idents stay
// among the four smallest, over a thousand tasks.
TEST_F(GeventCoreMisc, MinimalIdentsStaySmallWhileFewTasksLive) {
  std::vector<std::optional<fern::Task<void>>> keepalive(3);
  unsigned long base = fern::Task<void>::create([] {})->minimal_ident();
  for (int i = 0; i < 1000; ++i) {
    auto target = fern::Task<void>::create([] {});
    EXPECT_LE(target->minimal_ident(), base + 3) << "task " << i;
    keepalive[i % 3] = std::move(target);
  }
}

// ---------------------------------------------------------------- test__util.py

// TestFormat::test_basic, test_with_Greenlet (GV-17): print_run_info
// (fern::dump_greenlets) lists the thread's greenlets and the loop; called
// from a named task, the listing names it, running, with its parent (the
// hub), and a greenlet parked elsewhere with its park site.
TEST_F(GeventCoreMisc, DumpGreenletsListsNamedTasksAndTheLoop) {
  auto sleeper = spawn([] { sleep(10); });
  sleeper->set_name("Sleeper");
  auto g = spawn([] {
    char* buf = nullptr;
    std::size_t size = 0;
    std::FILE* out = open_memstream(&buf, &size);
    fern::dump_greenlets(out);
    std::fclose(out);
    std::string text(buf, size);
    std::free(buf);
    return text;
  });
  g->set_name("Printer");
  std::string value = g.get();
  EXPECT_NE(value.find("greenlets of this thread"), std::string::npos) << value;
  EXPECT_NE(value.find("loop:"), std::string::npos) << value;
  EXPECT_NE(value.find("running"), std::string::npos) << value;
  EXPECT_NE(value.find("\"Printer\""), std::string::npos) << value;
  EXPECT_NE(value.find("\"Sleeper\""), std::string::npos) << value;
  EXPECT_NE(value.find("sleep"), std::string::npos) << value;
  EXPECT_NE(value.find("hub"), std::string::npos) << value;
  EXPECT_EQ(value.find("{}"), std::string::npos) << value;
  sleeper.kill();
}

// ---------------------------------------------------------------- test__thread.py

// TestLock::test_release_unheld_lock (LK-2): releasing an unheld lock is an
// error (Python's RuntimeError for both locks; fern's Lock is a
// BoundedSemaphore(1): SemaphoreReleasedTooManyTimes, a std::logic_error),
// and the lock stays usable.
TEST_F(GeventCoreMisc, ReleasingAnUnheldLockIsAnError) {
  fern::Lock lock;
  EXPECT_THROW(lock.release(), fern::SemaphoreReleasedTooManyTimes);
  EXPECT_THROW(lock.release(), std::logic_error);
  EXPECT_TRUE(lock.try_acquire());
  EXPECT_TRUE(lock.locked());
  lock.release();
  EXPECT_FALSE(lock.locked());
}

// ---------------------------------------------------------------- test__issue1864.py

// TestSubnormalFloatsAreNotDisabled (GL FP control): running greenlets and
// the hub does not turn on flush-to-zero / denormals-are-zero.
TEST_F(GeventCoreMisc, SubnormalFloatsAreNotFlushedToZero) {
  volatile double min = std::numeric_limits<double>::min();
  auto t = spawn([&] {
    sleep(0);
    return min / 2;
  });
  EXPECT_GT(t.get(), 0.0);
  sleep(0.001);
  EXPECT_GT(min / 2, 0.0);
}

// ---------------------------------------------------------------- test__memleak.py

// TestQueue::test (TO-2, TO-6): Timeout.start_new then a longer sleep, the
// timeout raised, fifteen times: nothing accumulates (no greenlet, stack or
// timer left behind per round; the fixture checks the end state too).
TEST_F(GeventCoreMisc, RepeatedStartNewTimeoutsLeakNothing) {
  std::vector<std::size_t> live, timers;
  for (int i = 0; i < 15; ++i) {
    try {
      fern::Timeout::start_new(0.001);
      sleep(0.1);
      ADD_FAILURE() << "must raise Timeout";
    } catch (const fern::Timeout&) {
    }
    live.push_back(fern::Greenlet::live_count());
    timers.push_back(Hub::current().armed_timers());
  }
  EXPECT_EQ(live.back(), live[live.size() - 2]);
  EXPECT_EQ(live.back(), live.front());
  EXPECT_EQ(timers.back(), 0u);
}

}  // namespace
