// Cooperative fd waiting, close, select and signals: SEMANTICS IO-1, IO-2,
// IO-3, IO-5, HUB-11, HUB-12, SIG-1, SIG-2, SIG-4.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fern/config.h"
#include "fern/core/task.h"
#include "fern/io/signal.h"
#include "fern/io/wait.h"
#include "fern/sync/event.h"
#include "hub_fixture.h"
#include "io/pipe.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using FdWaiting = fern::testing::HubTest;

using fern::testing::Pipe;

// IO-1
TEST_F(FdWaiting, WaitReadBlocksOnlyTheCallerUntilData) {
  Pipe p;
  auto reader = spawn([&] {
    log.push_back("waiting");
    bool ready = fern::wait_read(p.r);
    char c = 0;
    EXPECT_EQ(read(p.r, &c, 1), 1);
    log.push_back(std::string(ready ? "ready " : "timeout ") + c);
  });
  auto other = spawn([&] { log.push_back("other runs meanwhile"); });
  sleep(0);
  ASSERT_EQ(write(p.w, "x", 1), 1);
  reader.join();
  other.join();
  EXPECT_EQ(log, (Vec{"waiting", "other runs meanwhile", "ready x"}));
}

// IO-1
TEST_F(FdWaiting, TimeoutIsAFalseResultAndNeverEarly) {
  Pipe p;
  fern::Nanos start = fern::monotonic_now();
  EXPECT_FALSE(fern::wait_read_for(p.r, 0.002));
  EXPECT_GE(fern::monotonic_now() - start, 2'000'000);
  EXPECT_TRUE(fern::wait_write_for(p.w, 1));  // an empty pipe is writable
}

// gevent's wait_read makes a watcher per call: any number of greenlets wait
// on one fd and direction, readiness wakes them all, first come first, and
// one leaving (timed out, killed) leaves the others waiting. IO-2's typed
// error is for a Socket's own operations (socket_test).
TEST_F(FdWaiting, ManyGreenletsWaitOnOneFdAndAllWake) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  const std::size_t watched = fern::Hub::current().watched_fds();
  std::vector<int> woke;
  std::vector<fern::Task<void>> readers;
  for (int i = 0; i < 4; ++i) readers.push_back(spawn([&, i] {
    if (fern::wait_read(sv[0])) woke.push_back(i);
  }));
  auto quitter = spawn([&] { EXPECT_FALSE(fern::wait_read_for(sv[0], 0.001)); });
  sleep(0);
  readers[1].kill();  // leaves from the middle of the fd's watchers
  quitter.join();
  EXPECT_TRUE(woke.empty());
  EXPECT_TRUE(fern::wait_write_for(sv[0], 0.001));  // the other direction too
  ASSERT_EQ(write(sv[1], "y", 1), 1);
  for (auto& r : readers) r.join();
  EXPECT_EQ(woke, (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(fern::Hub::current().watched_fds(), watched);
  ::close(sv[0]);
  ::close(sv[1]);
}

// IO-5: concurrent selects on the same fd overlap and both see it ready.
TEST_F(FdWaiting, TwoSelectsOnOneFdBothReturnIt) {
  Pipe p;
  std::vector<std::vector<int>> got(2);
  auto a = spawn([&] { got[0] = fern::select_for({p.r}, {}, {}, 5.0).readable; });
  auto b = spawn([&] { got[1] = fern::select_for({p.r}, {}, {}, 5.0).readable; });
  sleep(0);
  ASSERT_EQ(write(p.w, "y", 1), 1);
  a.join();
  b.join();
  EXPECT_EQ(got[0], std::vector<int>{p.r});
  EXPECT_EQ(got[1], std::vector<int>{p.r});
}

// An fd event's watchers may end one another, or the fd itself, while the
// hub calls them: the first waiter runs from its watcher (the hub switches
// to it there, as gevent's watcher callback does) and its fern::close
// reaches the others, still waiting in the same round, with FdClosedError,
// never through a freed watcher.
TEST_F(FdWaiting, ClosingTheFdFromAWatchersRoundReachesTheOthers) {
  Pipe p;
  const std::size_t watched = fern::Hub::current().watched_fds();
  int fd = dup(p.r);
  int closed_errors = 0;
  auto first = spawn([&] {
    fern::wait_read(fd);
    fern::close(fd);
  });
  std::vector<fern::Task<void>> others;
  for (int i = 0; i < 3; ++i) others.push_back(spawn([&] {
    try {
      fern::wait_read(fd);
    } catch (const fern::FdClosedError&) {
      ++closed_errors;
    }
  }));
  sleep(0);
  ASSERT_EQ(write(p.w, "y", 1), 1);
  first.join();
  for (auto& o : others) o.join();
  EXPECT_EQ(closed_errors, 3);
  EXPECT_EQ(fern::Hub::current().watched_fds(), watched);
}

// IO-3, HUB-12
TEST_F(FdWaiting, ClosingThroughFernWakesWaitersWithATypedError) {
  Pipe p;
  int fd = dup(p.r);
  auto waiter = spawn([&] {
    try {
      fern::wait_read(fd);
      log.push_back("woke normally");
    } catch (const fern::FdClosedError& e) {
      log.push_back(e.code().value() == EBADF ? "EBADF" : "other errno");
    }
  });
  sleep(0);
  EXPECT_EQ(fern::close(fd), 0);
  waiter.join();
  EXPECT_EQ(log, Vec{"EBADF"});
}

// Invalid fds are typed errors, never aborts.
TEST_F(FdWaiting, InvalidFdIsATypedError) {
  try {
    fern::wait_read_for(-1, 0);
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
  int closed = dup(0);
  ::close(closed);
  try {
    fern::wait_read_for(closed, 0);
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

// IO-5, seed 02
TEST_F(FdWaiting, SelectIsCooperativeAndReportsReadyFds) {
  Pipe a, b;
  auto writer = spawn([&] {
    log.push_back("writer runs while select waits");
    ASSERT_EQ(write(b.w, "z", 1), 1);
  });
  fern::SelectResult r = fern::select_for({a.r, b.r}, {}, {}, 5);
  writer.join();
  EXPECT_EQ(r.readable, std::vector<int>{b.r});
  EXPECT_TRUE(r.writable.empty());
  EXPECT_EQ(log, Vec{"writer runs while select waits"});
  fern::SelectResult none = fern::select_for({a.r}, {}, {}, 0.001);
  EXPECT_TRUE(none.readable.empty());
  fern::SelectResult w = fern::select_for({}, {a.w}, {}, 1);
  EXPECT_EQ(w.writable, std::vector<int>{a.w});
  fern::Nanos start = fern::monotonic_now();
  fern::select_for({}, {}, {}, 0.002);  // a sleep
  EXPECT_GE(fern::monotonic_now() - start, 2'000'000);
  int closed = dup(0);
  ::close(closed);
  EXPECT_THROW(fern::select_for({closed}, {}, {}, 0), std::system_error);
}

// SIG-4: gevent's default SIGINT raises KeyboardInterrupt in the main
// greenlet even while it is blocked in the hub (no timer armed: the loop
// sleeps in the poller). In fern that default is a handler that throws:
// SIGINT sent from another OS thread wakes the hub, and main's wait raises.
// Cancelling restores the previous disposition.
TEST_F(FdWaiting, SigintRaisesInMainWhileItIsBlockedInTheHub) {
  struct KeyboardInterrupt : std::runtime_error {
    KeyboardInterrupt() : std::runtime_error("KeyboardInterrupt") {}
  };
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGINT, nullptr, &before), 0);
  fern::SignalHandler h = fern::signal_handler(SIGINT, [] { throw KeyboardInterrupt(); });
  Pipe never_written;
  Pipe done;
  ASSERT_EQ(fcntl(done.r, F_SETFL, 0), 0);  // the sender's read blocks
  ::testing::internal::CaptureStderr();  // the handler's failure is reported too
  // The kernel may hand the signal to the sender: it stays (blocked in a
  // read) until main has raised, so that a signal whose handler is deferred
  // to the thread's next call (ThreadSanitizer's delivery) is not lost with it.
  // Under ThreadSanitizer the signal goes to the sender itself: TSan runs a
  // handler only at its thread's next intercepted call, and main waits in
  // epoll_pwait2, which GCC 12's TSan does not intercept, so a signal the
  // kernel gave main would wait there forever. (Without TSan, the kernel's
  // choice is left to it: either thread must work.)
  std::thread sender([&done] {
#if FERN_TSAN
    ASSERT_EQ(::pthread_kill(::pthread_self(), SIGINT), 0);
#else
    ASSERT_EQ(::kill(getpid(), SIGINT), 0);
#endif
    char c;
    while (::read(done.r, &c, 1) < 0 && errno == EINTR) {
    }
  });
  EXPECT_THROW(fern::wait_read(never_written.r), KeyboardInterrupt);
  ASSERT_EQ(::write(done.w, "x", 1), 1);
  sender.join();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("KeyboardInterrupt"), std::string::npos) << err;
  h.cancel();
  struct sigaction after {};
  ASSERT_EQ(sigaction(SIGINT, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

// IO-5: a list may name an fd twice (Python's select takes any sequence);
// the caller waits once on it, and each entry is reported as Python's.
TEST_F(FdWaiting, SelectTakesAnFdListedTwice) {
  Pipe a;
  auto writer = spawn([&] { ASSERT_EQ(write(a.w, "z", 1), 1); });
  fern::SelectResult r = fern::select_for({a.r, a.r}, {a.w, a.w}, {}, 5);
  EXPECT_EQ(r.writable, (std::vector<int>{a.w, a.w}));  // writable at once
  r = fern::select_for({a.r, a.r}, {}, {}, 5);  // waits for the writer
  writer.join();
  EXPECT_EQ(r.readable, (std::vector<int>{a.r, a.r}));
}

// SIG-1, SIG-2
TEST_F(FdWaiting, SignalRunsTheHandlerInANewGreenletFromTheHub) {
  fern::Greenlet main = fern::Greenlet::current();
  bool in_other_greenlet = false;
  auto sleeper = spawn([] { sleep(10); });
  fern::SignalHandler h = fern::signal_handler(SIGUSR1, [&] {
    in_other_greenlet = !(fern::Greenlet::current() == main);
    sleeper.kill_async();
  });
  sleep(0);
  ASSERT_EQ(raise(SIGUSR1), 0);  // delivered now; handled when the hub runs
  EXPECT_FALSE(in_other_greenlet);
  sleeper.join();
  EXPECT_TRUE(in_other_greenlet);
  h.cancel();
  EXPECT_FALSE(h.active());
  // Unreferenced: an installed handler alone does not keep the loop alive.
  fern::SignalHandler h2 = fern::signal_handler(SIGUSR2, [] {});
  EXPECT_TRUE(fern::Hub::current().run_until_idle());
  h2.cancel();
  EXPECT_THROW(fern::signal_handler(SIGKILL, [] {}), std::invalid_argument);
}

}  // namespace

namespace {

// test__signal.py::TestSignal::test_handler (a non-callable is TypeError):
// no function, a signal number out of range, an uncatchable signal or one
// fern already handles is std::invalid_argument, and leaves the signal's
// disposition as it was (SIG-1).
TEST_F(FdWaiting, ASignalHandlerThatCannotBeInstalledIsInvalidArgument) {
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGUSR2, nullptr, &before), 0);
  EXPECT_THROW(fern::signal_handler(SIGUSR2, std::function<void()>()), std::invalid_argument);
  for (int bad : {0, -1, SIGKILL, SIGSTOP, 65, 1000})
    EXPECT_THROW(fern::signal_handler(bad, [] {}), std::invalid_argument) << bad;
  struct sigaction after {};
  ASSERT_EQ(sigaction(SIGUSR2, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  fern::SignalHandler h = fern::signal_handler(SIGUSR2, [] {});
  EXPECT_THROW(fern::signal_handler(SIGUSR2, [] {}), std::invalid_argument);
  EXPECT_TRUE(h.active());
  EXPECT_EQ(h.signo(), SIGUSR2);
  h.cancel();
  h.cancel();  // again: a no-op
  fern::SignalHandler none;
  none.cancel();
  EXPECT_FALSE(none.active());
  EXPECT_EQ(none.signo(), 0);
}

// A cancelled handler never runs, even for a signal that arrived before the
// cancel and that the hub had not handled yet (libev's stop clears the
// pending event); a handler installed again afterwards gets the next one.
TEST_F(FdWaiting, ACancelledSignalHandlerDoesNotRunForASignalStillPending) {
  Vec log;
  fern::SignalHandler first = fern::signal_handler(SIGUSR2, [&] { log.push_back("first"); });
  ASSERT_EQ(raise(SIGUSR2), 0);  // caught now; handled when the hub runs
  first.cancel();
  EXPECT_TRUE(fern::Hub::current().run_until_idle());
  EXPECT_EQ(log, Vec{});
  fern::Event handled;
  fern::SignalHandler second = fern::signal_handler(SIGUSR2, [&] {
    log.push_back("second");
    handled.set();
  });
  ASSERT_EQ(raise(SIGUSR2), 0);
  // Timed: the handler is unreferenced (SIG-2), so an untimed wait would be LoopExit.
  EXPECT_TRUE(handled.wait_for(60.0));
  EXPECT_EQ(log, Vec{"second"});
  second.cancel();
}

}  // namespace
