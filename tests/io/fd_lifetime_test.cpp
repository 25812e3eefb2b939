// fd waits whose owners go, fds closed under waiters, signals after the hub
// and fork without reinit (issue 7 cases; IO-3, HUB-11, HUB-12, SIG-3).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/io/fd_stream.h"
#include "fern/io/signal.h"
#include "fern/io/socket.h"
#include "fern/io/wait.h"
#include "hub_fixture.h"
#include "io/pipe.h"

namespace {

using fern::sleep;
using fern::spawn;
using FdLifetime = fern::testing::HubTest;

using fern::testing::Pipe;

// One watcher per direction: closing the fd wakes the waiter once.
TEST_F(FdLifetime, WaitReadwriteThenCloseWakesTheWaiterOnce) {
  int sv[2];
  ASSERT_EQ(pipe2(sv, O_NONBLOCK | O_CLOEXEC), 0);
  // A full pipe is neither readable (on the write end) nor writable.
  char buf[4096] = {};
  while (write(sv[1], buf, sizeof buf) > 0) {
  }
  int errors = 0;
  auto waiter = spawn([&] {
    try {
      fern::wait_readwrite(sv[1]);
    } catch (const fern::FdClosedError&) {
      ++errors;
    }
  });
  sleep(0);
  fern::close(sv[1]);
  waiter.join();
  EXPECT_EQ(errors, 1);
  ::close(sv[0]);
}

// Waiters that left by timeout, Timeout or kill: a later close through fern
// finds no node of theirs (their stack frames are gone).
TEST_F(FdLifetime, WaitersThatLeftAreNotWokenByALaterClose) {
  Pipe p;
  EXPECT_FALSE(fern::wait_read_for(p.r, 0.001));
  EXPECT_FALSE(fern::Timeout::silently(0.001, [&] { fern::wait_read(p.r); }));
  auto killed = spawn([&] { fern::wait_read(p.r); });
  sleep(0);
  killed.kill();
  // A waiter whose fd is closed, killed by an earlier callback before the
  // cancel callback runs: its queued cancel node goes with its frame.
  auto cancelled = spawn([&] { fern::wait_read(p.r); });
  sleep(0);
  fern::Hub::current().run_callback([&] { fern::Greenlet g = cancelled->greenlet(); g.throw_in(); });
  int fd = dup(p.r);
  fern::close(p.r);  // queues the cancel node behind the kill
  p.r = fd;
  sleep(0);
  EXPECT_TRUE(cancelled.dead());
  EXPECT_TRUE(cancelled.successful());  // killed, not woken with FdClosedError
}

TEST_F(FdLifetime, SelectWaiterWokenByCloseGetsAClearError) {
  Pipe p;
  auto selecting = spawn([&] { fern::select({p.r}, {}, {}); });
  sleep(0);
  int fd = dup(p.r);
  fern::close(p.r);
  p.r = fd;
  selecting.join();
  ASSERT_TRUE(selecting.exception());
  EXPECT_THROW(std::rethrow_exception(selecting.exception()), fern::FdClosedError);
}

// IO-5: select with no fds and no deadline can never return: LoopExit.
TEST_F(FdLifetime, SelectOnNothingForeverRaisesLoopExit) {
  EXPECT_THROW(fern::select({}, {}, {}), fern::LoopExit);
}

// Answer EBADF without growing any table to the fd's size.
TEST_F(FdLifetime, HugeFdNumbersAreEbadfWithoutAllocating) {
  for (int fd : {50'000'000, INT_MAX}) {
    try {
      fern::wait_read_for(fd, 0);
      ADD_FAILURE() << "no error for fd " << fd;
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
    }
  }
}

// A plain ::close under a waiter, and the number reused by a new file: the
// old waiter gets a clear error and the new file can be waited on.
TEST_F(FdLifetime, PlainCloseUnderAWaiterIsDetectedWhenTheNumberIsReused) {
  Pipe p;
  const int number = p.r;
  auto stale = spawn([&] { fern::wait_read(number); });
  sleep(0);
  ::close(p.r);
  Pipe q;  // lowest free numbers: q.r takes the old number
  ASSERT_EQ(q.r, number);
  p.r = -1;
  ASSERT_EQ(write(q.w, "x", 1), 1);
  EXPECT_TRUE(fern::wait_read_for(q.r, 1.0));
  stale.join();
  ASSERT_TRUE(stale.exception());
  try {
    std::rethrow_exception(stale.exception());
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
    EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos) << e.what();
  }
}

// A plain ::close under a waiter with the number left unused: the idle
// loop's revalidation ends the wait with a clear error (about a second).
TEST_F(FdLifetime, PlainCloseUnderAWaiterEndsTheWaitWithAnError) {
  Pipe p;
  const int number = p.r;
  auto stale = spawn([&] { fern::wait_read(number); });
  sleep(0);
  ::close(p.r);
  p.r = -1;
  EXPECT_TRUE(stale.join_for(5.0));
  ASSERT_TRUE(stale.exception());
  try {
    std::rethrow_exception(stale.exception());
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
  }
}

// A pipe's read end waited on with a sticky interest, then closed with a
// plain ::close: the hub's table still has the interest. Returns its number.
int stale_sticky_interest() {
  Pipe p;
  const int number = p.r;
  EXPECT_EQ(write(p.w, "x", 1), 1);
  EXPECT_TRUE(fern::detail::wait_owned_fd(number, false, fern::Deadline::never()));  // the interest stays
  ::close(std::exchange(p.r, -1));
  return number;
}

// A sticky interest (a Socket's, a hooked fd's) outlives its wait; closed
// with a plain ::close and the number reused by a new file, the kernel forgot
// the registration while the hub's table still has it. A wait begun after the
// reuse is on the new file: the idle loop's revalidation registers it again
// (about a second), instead of the wait never ending.
TEST_F(FdLifetime, AStickyInterestForgottenByAPlainCloseIsMadeAgainForTheNextFile) {
  const int number = stale_sticky_interest();
  Pipe q;
  ASSERT_EQ(q.r, number);
  bool woke = false;
  auto reader = spawn([&] { woke = fern::detail::wait_owned_fd(q.r, false, fern::Deadline::after(5.0)); });
  sleep(0);
  ASSERT_EQ(write(q.w, "y", 1), 1);
  EXPECT_TRUE(reader.join_for(5.0));
  EXPECT_TRUE(woke);
  fern::close(std::exchange(q.r, -1));  // a sticky interest goes with fern::close
}

// A fork child whose hub had an fd closed behind its back: the child's new
// poller cannot register it again, and the child goes on (the fd's slot is
// free, a waiter on it gets the error) instead of fork() failing in it.
TEST_F(FdLifetime, ForkAfterAPlainCloseOfAWatchedFdLeavesAWorkingChild) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer models greenlets as threads and does not follow them into a fork child";
#endif
  const int number = stale_sticky_interest();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Pipe r;
    bool ok = write(r.w, "z", 1) == 1 && fern::wait_read_for(r.r, 5.0);
    fern::Hub::destroy_current();
    std::_Exit(ok ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  fern::close(number);  // the parent's stale interest: forgotten (EBADF from close(2))
}

// A handler left installed while its hub goes: the signal is dropped, and
// errno is what the interrupted code had.
TEST(SignalAfterHub, HandlerOutlivingItsHubIsHarmlessAndKeepsErrno) {
  bool ran = false;
  fern::SignalHandler h = fern::signal_handler(SIGUSR2, [&] { ran = true; });
  fern::Hub::destroy_current();
  errno = EDOM;
  ASSERT_EQ(raise(SIGUSR2), 0);
  EXPECT_EQ(errno, EDOM);
  sleep(0.001);  // a new hub: the old handler does not run here
  EXPECT_FALSE(ran);
  h.cancel();
  fern::Hub::destroy_current();
}

// SIG-3: a handler's exception is reported and raised in main, interrupting
// what main is blocked on; it works repeatedly.
TEST_F(FdLifetime, HandlerExceptionIsRaisedInMain) {
  fern::SignalHandler h = fern::signal_handler(SIGUSR1, [] { throw std::runtime_error("from the handler"); });
  for (int round = 0; round < 2; ++round) {
    ::testing::internal::CaptureStderr();
    ASSERT_EQ(raise(SIGUSR1), 0);
    EXPECT_THROW(sleep(2), std::runtime_error);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("from the handler"), std::string::npos) << err;
  }
  h.cancel();
}

// A child of fork() that uses the hub without reinit must not edit the
// parent's poller set: the parent's waiter still wakes.
TEST_F(FdLifetime, ForkChildUsingTheHubLeavesTheParentsWaitsAlone) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer models greenlets as threads and does not follow them into a fork child";
#endif
  Pipe p;
  bool woke = false;
  auto reader = spawn([&] { woke = fern::wait_read_for(p.r, 5.0); });
  sleep(0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child unwinds its copy of the reader (unwatching p.r) and waits on
    // the fd itself, then leaves.
    reader.kill();
    bool again = fern::wait_read_for(p.r, 0.001);
    fern::Hub::destroy_current();
    std::_Exit(again ? 2 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_EQ(write(p.w, "x", 1), 1);
  reader.join();
  EXPECT_TRUE(woke);
}

// An object destroyed, or moved onto, by a greenlet woken by the very event
// that makes a reader inside one of its calls ready: the hub resumes each
// watcher's greenlet as it calls it, so the reader is still parked when
// the object goes, and its call throws FdClosedError without touching the
// object again (it never reads the gone object's fd, nor the new
// connection moved in). The killer waits on the same fd first, so it is
// called first.
TEST_F(FdLifetime, SocketGoneInTheEventThatWakesItsReader) {
  auto [a, b] = fern::Socket::pair();
  auto sock = std::make_unique<fern::Socket>(std::move(a));
  int fd = sock->fd();
  bool closed = false, returned = false;
  auto killer = spawn([&] {
    fern::wait_read(fd);
    sock.reset();
  });
  auto reader = spawn([&] {
    try {
      sock->recv(16);
      returned = true;
    } catch (const fern::FdClosedError&) {
      closed = true;
    }
  });
  sleep(0);  // both park, the killer's watcher first
  b.sendall("x");
  fern::joinall(killer, reader);
  EXPECT_TRUE(closed);
  EXPECT_FALSE(returned);
}

TEST_F(FdLifetime, SocketMovedOntoInTheEventThatWakesItsReader) {
  auto [a, b] = fern::Socket::pair();
  auto [c, d] = fern::Socket::pair();
  int fd = a.fd();
  bool closed = false;
  auto killer = spawn([&, &a = a, &c = c] {
    fern::wait_read(fd);
    a = std::move(c);  // a now holds another connection: the reader must not read it
  });
  auto reader = spawn([&, &a = a] {
    try {
      a.recv(16);
    } catch (const fern::FdClosedError&) {
      closed = true;
    }
  });
  sleep(0);
  b.sendall("x");
  d.sendall("not yours");
  fern::joinall(killer, reader);
  EXPECT_TRUE(closed);
  EXPECT_EQ(a.recv(16), "not yours");
}

TEST_F(FdLifetime, FdStreamGoneInTheEventThatWakesItsReader) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  auto stream = std::make_unique<fern::FdStream>(fds[0]);
  bool closed = false;
  auto killer = spawn([&] {
    fern::wait_read(fds[0]);
    stream.reset();
  });
  auto reader = spawn([&] {
    try {
      stream->read(16);
    } catch (const fern::FdClosedError&) {
      closed = true;
    }
  });
  sleep(0);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  fern::joinall(killer, reader);
  EXPECT_TRUE(closed);
  ::close(fds[1]);
}

}  // namespace
