// Nodes the hub queues or arms outlive no owner (issue 7: one node, one
// wait); each test is a case that crashed or misbehaved before the Hook.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "fern/arch/stack.h"
#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hub_fixture.h"

namespace {

using fern::Hub;
using fern::sleep;
using Lifetime = fern::testing::HubTest;
using Vec = std::vector<std::string>;

// A dropped start_new() handle keeps its timer (gevent: the loop holds it):
// it fires into the greenlet that started it, and nothing dangles (TO-2).
TEST_F(Lifetime, DiscardedStartNewTimeoutStillFiresWithoutDangling) {
  auto t = fern::spawn([] {
    fern::Timeout::start_new(0.005);
    sleep(0.5);
  });
  t.join();
  ASSERT_TRUE(t.exception());
  EXPECT_THROW(std::rethrow_exception(t.exception()), fern::Timeout);
}

// A Timeout destroyed by an exception while armed, then a sleep: no
// use-after-free; many of them in a greenlet that ends fire into nothing.
TEST_F(Lifetime, ArmedTimeoutsWhoseHandlesAndGreenletAreGoneFireIntoNothing) {
  auto t = fern::spawn([] {
    for (int i = 0; i < 2000; ++i) {
      try {
        fern::Timeout armed(0.002);
        armed.start();
        throw std::runtime_error("leaves the scope");
      } catch (const std::runtime_error&) {
      }
    }
  });
  t.join();
  EXPECT_TRUE(t.successful());
  sleep(0.01);  // every timer fires into a dead greenlet
  EXPECT_EQ(Hub::current().armed_timers(), 0u);
}

// Hub::schedule of a queued node leaves the queue intact (no self-loop): in
// release builds the second link is refused; debug builds assert.
#ifdef NDEBUG
TEST_F(Lifetime, SchedulingAQueuedCallbackAgainRunsItOnce) {
  struct Count : fern::Callback {
    int runs = 0;
  } cb;
  cb.fn = [](fern::Callback* c) { ++static_cast<Count*>(c)->runs; };
  Hub& hub = Hub::current();
  hub.schedule(&cb);
  hub.schedule(&cb);
  sleep(0);
  EXPECT_EQ(cb.runs, 1);
  EXPECT_EQ(hub.queued_callbacks(), 0u);
}
#endif

// A callback node destroyed while queued leaves the queue by itself.
TEST_F(Lifetime, QueuedCallbackDestroyedByItsOwnerIsNeverRun) {
  Hub& hub = Hub::current();
  bool ran = false;
  {
    struct Flag : fern::Callback {
      bool* ran;
    } cb;
    cb.ran = &ran;
    cb.fn = [](fern::Callback* c) { *static_cast<Flag*>(c)->ran = true; };
    hub.schedule(&cb);
    EXPECT_EQ(hub.queued_callbacks(), 1u);
  }
  EXPECT_EQ(hub.queued_callbacks(), 0u);
  sleep(0);
  EXPECT_FALSE(ran);
}

// An idle waiter that kills another parked idle waiter: the victim's node
// leaves the running idle batch (it crashed the hub before).
TEST_F(Lifetime, IdleWaiterKillingAnotherIdleWaiterIsSafe) {
  fern::Task<void> victim;
  auto killer = fern::spawn([&] {
    fern::idle();
    victim.kill_async();
    fern::idle();
  });
  victim = fern::spawn([] {
    fern::idle();
    fern::idle();
  });
  killer.join();
  victim.join();
  EXPECT_TRUE(victim.dead());
}

// One fd's watchers in one direction: an event calls each, first to last;
// a watcher's fn may destroy a later watcher, or cancel the whole fd, and
// the round goes on with those still there (the hub's cursor moves past a
// watcher that leaves), never through a freed one.
struct CountingWatch : Hub::IoWatcher {
  std::vector<std::string>* log = nullptr;
  std::string name;
  std::function<void()> then;
  CountingWatch() {
    fn = [](Hub::IoWatcher* w, unsigned ready) {
      auto* self = static_cast<CountingWatch*>(w);
      self->log->push_back(self->name + (ready ? " ready" : " cancelled"));
      self->unlink();
      if (self->then) std::exchange(self->then, nullptr)();
    };
  }
};

// n watchers named w0.. on a pipe's read end, started in order.
struct WatchedPipe {
  int fds[2] = {-1, -1};
  std::unique_ptr<CountingWatch[]> w;
  WatchedPipe(int n, std::vector<std::string>& log) : w(new CountingWatch[n]) {
    if (pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    for (int i = 0; i < n; ++i) {
      w[i].log = &log;
      w[i].name = "w" + std::to_string(i);
      Hub::current().watch_fd(fds[0], fern::kReadable, &w[i]);
    }
  }
  ~WatchedPipe() {
    w.reset();
    close(fds[0]);
    close(fds[1]);
  }
  void fire() {
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    Hub::current().run_until_idle();
  }
};

TEST_F(Lifetime, AnFdWatcherThatEndsTheNextOneSkipsItAndTheRoundGoesOn) {
  const std::size_t watched = Hub::current().watched_fds();
  WatchedPipe p(4, log);
  auto* last = new CountingWatch;  // started last, freed by w0
  last->log = &log;
  last->name = "last";
  ASSERT_EQ(Hub::current().watch_fd(p.fds[0], fern::kReadable, last), Hub::Watch::kStarted);
  p.w[0].then = [&] {
    p.w[1].unlink();  // the next one leaves before it is called
    delete last;
  };
  p.fire();
  EXPECT_EQ(log, (Vec{"w0 ready", "w2 ready", "w3 ready"}));
  EXPECT_EQ(Hub::current().watched_fds(), watched);
}

TEST_F(Lifetime, AnFdWatcherThatCancelsItsFdCancelsTheRestOfTheRound) {
  const std::size_t watched = Hub::current().watched_fds();
  WatchedPipe p(3, log);
  p.w[0].then = [&] { Hub::current().cancel_fd(p.fds[0], std::make_exception_ptr(std::runtime_error("closed"))); };
  p.fire();
  EXPECT_EQ(log, (Vec{"w0 ready", "w1 cancelled", "w2 cancelled"}));
  EXPECT_EQ(Hub::current().watched_fds(), watched);
}

// Sticky watchers are an owning object's (a Socket's): one per direction
// (IO-2); plain ones share the fd with it.
TEST_F(Lifetime, ASecondStickyWatcherIsRefusedButPlainOnesShare) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  Hub& hub = Hub::current();
  const std::size_t watched = hub.watched_fds();
  CountingWatch owned, other_owned, plain;
  owned.sticky = other_owned.sticky = true;
  ASSERT_EQ(hub.watch_fd(fds[0], fern::kReadable, &owned), Hub::Watch::kStarted);
  EXPECT_EQ(hub.watch_fd(fds[0], fern::kReadable, &other_owned), Hub::Watch::kBusy);
  EXPECT_FALSE(other_owned.linked());
  EXPECT_EQ(hub.watch_fd(fds[0], fern::kReadable, &plain), Hub::Watch::kStarted);
  owned.unlink();
  EXPECT_EQ(hub.watch_fd(fds[0], fern::kReadable, &other_owned), Hub::Watch::kStarted);
  plain.unlink();
  other_owned.unlink();
  hub.cancel_fd(fds[0], nullptr);  // drops the sticky interest kept (fern::close does)
  EXPECT_EQ(hub.watched_fds(), watched);
  close(fds[1]);
}

// HUB-14: destroying the hub from inside one of its tasks is refused clearly.
TEST_F(Lifetime, DestroyingTheHubFromATaskIsAClearError) {
  auto t = fern::spawn([] { Hub::destroy_current(); });
  t.join();
  ASSERT_TRUE(t.exception());
  EXPECT_THROW(std::rethrow_exception(t.exception()), std::logic_error);
  sleep(0.001);  // the hub still works
}

// A hub that goes away unwinds every task suspended in it, the oldest
// first (their destructors run, they end killed, their links are dropped);
// a task that ended stays as it was and one never started never runs. No
// task keeps a hook of its own: the hub finds them in the greenlet registry.
// (HUB-14: a destroyed hub leaves nothing behind; GL-19: dropped suspended
// greenlets are unwound.)
TEST(HubExit, UnwindsEverySuspendedTaskOldestFirst) {
  (void)fern::Greenlet::current();
  std::size_t greenlets = fern::Greenlet::live_count();
  std::size_t stacks = fern::arch::stack_stats().live;
  std::vector<std::string> log;
  struct Note {
    std::vector<std::string>& log;
    const char* name;
    ~Note() { log.push_back(name); }
  };
  {
    auto a = fern::spawn([&] {
      Note n{log, "a unwound"};
      sleep(1e9);
    });
    auto ended = fern::spawn([&] { log.push_back("ended ran"); });
    auto b = fern::spawn([&] {
      Note n{log, "b unwound"};
      fern::idle();
      sleep(1e9);
    });
    auto c = fern::spawn([&] {
      Note n{log, "c unwound"};
      sleep(1e9);
    });
    auto unstarted = fern::Task<void>::create([&] { log.push_back("unstarted ran"); });
    int links = 0;
    c->link([&](fern::TaskBase&) { ++links; });
    sleep(0);  // a, b and c park; `ended` ends
    fern::idle();  // b parks again, after c: the order is the tasks' age
    Hub::destroy_current();
    EXPECT_EQ(log, (std::vector<std::string>{"ended ran", "a unwound", "b unwound", "c unwound"}));
    for (auto* t : {&a, &b, &c}) {
      EXPECT_TRUE((*t)->dead());
      EXPECT_TRUE((*t)->killed());
    }
    EXPECT_TRUE(ended.successful());
    EXPECT_FALSE(unstarted.started());
    EXPECT_EQ(links, 0);
  }
  EXPECT_EQ(fern::Greenlet::live_count(), greenlets);
  EXPECT_EQ(fern::arch::stack_stats().live, stacks);
}

// HUB-14: a hub destroyed before its loop ever ran still runs what was
// queued on it (as one whose loop ran does), so a callback's captures and a
// spawned task (held by the hub until its links ran) are freed, not leaked.
TEST(HubExit, WorkQueuedBeforeTheLoopEverRanRunsAndLeavesNothing) {
  Hub::destroy_current();
  (void)fern::Greenlet::current();
  std::size_t greenlets = fern::Greenlet::live_count();
  std::size_t stacks = fern::arch::stack_stats().live;
  auto captured = std::make_shared<int>(0);
  std::weak_ptr<int> watch = captured;
  std::vector<std::string> log;
  Hub::current().run_callback([&log, captured] { log.push_back("callback"); });
  captured.reset();
  fern::spawn([&] { log.push_back("task"); });
  Hub::destroy_current();
  EXPECT_EQ(log, (std::vector<std::string>{"callback", "task"}));
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(fern::Greenlet::live_count(), greenlets);
  EXPECT_EQ(fern::arch::stack_stats().live, stacks);
}

// Cross-thread posting after the hub is gone: refused, no write to a closed fd.
TEST(RemoteDoor, PostingAfterTheHubIsGoneIsRefused) {
  std::shared_ptr<fern::RemoteQueue> door = Hub::current().remote();
  Hub::destroy_current();
  std::atomic<bool> posted{true};
  std::thread other([&] { posted = door->post([] {}); });
  other.join();
  EXPECT_FALSE(posted);
}

TEST(RemoteDoor, AnotherThreadWakesTheHub) {
  Hub& hub = Hub::current();
  std::shared_ptr<fern::RemoteQueue> door = hub.remote();
  bool ran = false;
  std::thread other([&] { door->post([&] { ran = true; }); });
  // The door does not keep the loop alive: wait under a real timer.
  for (int i = 0; i < 1000 && !ran; ++i) sleep(0.001);
  other.join();
  EXPECT_TRUE(ran);
  Hub::destroy_current();
}

// In a child: spawns tasks under a small address-space limit until stacks
// run out; exits 0 when some task ended failed with StackError.
[[noreturn]] void spawn_until_stacks_run_out() {
  rlimit limit{};
  getrlimit(RLIMIT_AS, &limit);
  limit.rlim_cur = static_cast<rlim_t>(512) << 20;  // room for what exists, not for 20,000 stacks
  setrlimit(RLIMIT_AS, &limit);
  std::vector<fern::Task<void>> tasks;
  for (int i = 0; i < 20000; ++i) tasks.push_back(fern::spawn([] { fern::sleep(10); }));
  fern::sleep(0);
  int failed = 0;
  for (auto& t : tasks) {
    if (!t.dead()) continue;
    try {
      std::rethrow_exception(t.exception());
    } catch (const fern::arch::StackError&) {
      ++failed;
    } catch (...) {
    }
  }
  std::fprintf(stderr, "failed=%d\n", failed);
  std::_Exit(failed > 0 ? 0 : 1);
}

// A task whose stack cannot be allocated ends failed with StackError,
// reported once, instead of staying "started" forever.
TEST(TaskStacks, StackAllocationFailureFailsTheTask) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(FERN_TEST_UNDER_EMULATOR)
  GTEST_SKIP() << "sanitizers and emulators reserve more address space than the limit this test sets";
#endif
  EXPECT_EXIT(spawn_until_stacks_run_out(), ::testing::ExitedWithCode(0), "StackError[^]*failed=[1-9]");
}

}  // namespace
