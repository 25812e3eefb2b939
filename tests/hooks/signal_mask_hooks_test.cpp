// ppoll and pselect with a signal mask park the calling greenlet too: the
// mask's effect is libc's (a pending signal it unblocks runs its handler and
// ends the call with EINTR), the thread's own mask is never changed. IO-5
// and IO-6: select and poll are cooperative (here with ppoll/pselect's mask).
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>

#include <string>
#include <vector>

#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using fern::testing::SocketPair;
using Vec = std::vector<std::string>;

volatile sig_atomic_t g_handled = 0;

// An fd_set holding only fd.
fd_set just(int fd) {
  fd_set set;
  FD_ZERO(&set);
  FD_SET(fd, &set);
  return set;
}
void on_usr1(int) { g_handled = g_handled + 1; }

// SIGUSR1 blocked in this thread and caught by on_usr1 for the test; the
// mask and the handler restored at the end. `unblocked` is this thread's
// mask without SIGUSR1: the pselect/ppoll idiom's argument.
class SignalMaskHooks : public fern::testing::HooksTest {
 protected:
  void SetUp() override {
    HooksTest::SetUp();
    g_handled = 0;
    struct sigaction sa {};
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGUSR1, &sa, &old_action_), 0);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &usr1, &old_mask_), 0);
    ASSERT_EQ(pthread_sigmask(SIG_SETMASK, nullptr, &unblocked), 0);
    sigdelset(&unblocked, SIGUSR1);
  }
  void TearDown() override {
    // Nothing of the test's signal may stay pending past it.
    sigset_t pending;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGUSR1), 0);
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
    sigaction(SIGUSR1, &old_action_, nullptr);
    HooksTest::TearDown();
  }
  static bool usr1_blocked() {
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, nullptr, &now);
    return sigismember(&now, SIGUSR1) == 1;
  }
  sigset_t unblocked;

 private:
  struct sigaction old_action_ {};
  sigset_t old_mask_;
};

TEST_F(SignalMaskHooks, PpollParksUntilASignalItsMaskUnblocksComes) {
  SocketPair p;
  auto poller = spawn([&] {
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    timespec ts{10, 0};
    log.push_back("polling");
    errno = 0;
    EXPECT_EQ(ppoll(fds, 1, &ts, &unblocked), -1);
    EXPECT_EQ(errno, EINTR);
    EXPECT_EQ(g_handled, 1);
    log.push_back("interrupted");
  });
  auto other = spawn([&] {
    log.push_back("other runs");
    EXPECT_TRUE(usr1_blocked()) << "the thread's mask is not the call's";
    EXPECT_EQ(g_handled, 0);
    pthread_kill(pthread_self(), SIGUSR1);  // stays pending: the thread blocks it
  });
  fern::joinall(poller, other);
  EXPECT_EQ(log, (Vec{"polling", "other runs", "interrupted"}));
  EXPECT_TRUE(usr1_blocked());
}

TEST_F(SignalMaskHooks, PpollWithAMaskReturnsReadyFds) {
  SocketPair p;
  auto poller = spawn([&] {
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    EXPECT_EQ(ppoll(fds, 1, nullptr, &unblocked), 1);
    EXPECT_EQ(fds[0].revents, POLLIN);
    log.push_back("ready");
  });
  auto writer = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(p.fd[1], "x", 1), 1);
  });
  fern::joinall(poller, writer);
  EXPECT_EQ(log, (Vec{"writing", "ready"}));
  EXPECT_EQ(g_handled, 0);
}

TEST_F(SignalMaskHooks, PpollWithAMaskTimesOutWhileOthersRun) {
  SocketPair p;
  int others = 0;
  auto poller = spawn([&] {
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    timespec ts{0, 30'000'000};
    EXPECT_EQ(ppoll(fds, 1, &ts, &unblocked), 0);
  });
  auto other = spawn([&] { ++others; });
  fern::joinall(poller, other);
  EXPECT_EQ(others, 1);
}

TEST_F(SignalMaskHooks, ASignalAlreadyPendingEndsTheCallAtOnce) {
  pthread_kill(pthread_self(), SIGUSR1);
  auto poller = spawn([&] {
    errno = 0;
    EXPECT_EQ(ppoll(nullptr, 0, nullptr, &unblocked), -1);
    EXPECT_EQ(errno, EINTR);
  });
  poller.join();
  EXPECT_EQ(g_handled, 1);
}

// A mask that blocks the signal too leaves it pending: the call times out.
TEST_F(SignalMaskHooks, ASignalTheMaskBlocksDoesNotEndTheCall) {
  sigset_t all_blocked;
  pthread_sigmask(SIG_SETMASK, nullptr, &all_blocked);
  auto poller = spawn([&] {
    timespec ts{0, 20'000'000};
    EXPECT_EQ(ppoll(nullptr, 0, &ts, &all_blocked), 0);
    EXPECT_EQ(g_handled, 0);
    EXPECT_EQ(ppoll(nullptr, 0, &ts, &unblocked), -1);  // now it is let in
    EXPECT_EQ(errno, EINTR);
  });
  pthread_kill(pthread_self(), SIGUSR1);
  poller.join();
  EXPECT_EQ(g_handled, 1);
}

TEST_F(SignalMaskHooks, PselectParksUntilASignalItsMaskUnblocksComes) {
  SocketPair p;
  auto selector = spawn([&] {
    fd_set r = just(p.fd[0]);
    timespec ts{10, 0};
    errno = 0;
    EXPECT_EQ(pselect(p.fd[0] + 1, &r, nullptr, nullptr, &ts, &unblocked), -1);
    EXPECT_EQ(errno, EINTR);
    log.push_back("interrupted");
  });
  auto other = spawn([&] {
    log.push_back("other runs");
    pthread_kill(pthread_self(), SIGUSR1);
  });
  fern::joinall(selector, other);
  EXPECT_EQ(log, (Vec{"other runs", "interrupted"}));
  EXPECT_EQ(g_handled, 1);
}

TEST_F(SignalMaskHooks, PselectWithAMaskReportsReadableFds) {
  SocketPair p;
  auto selector = spawn([&] {
    fd_set r = just(p.fd[0]);
    EXPECT_EQ(pselect(p.fd[0] + 1, &r, nullptr, nullptr, nullptr, &unblocked), 1);
    EXPECT_TRUE(FD_ISSET(p.fd[0], &r));
  });
  auto writer = spawn([&] { EXPECT_EQ(write(p.fd[1], "x", 1), 1); });
  fern::joinall(selector, writer);
}

// A mask the kernel cannot read is its EFAULT, not a crash in the hook.
TEST_F(SignalMaskHooks, AnUnreadableMaskIsEfault) {
  SocketPair p;
  const auto* bad = reinterpret_cast<const sigset_t*>(16);
  auto g = spawn([&] {
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    timespec ts{1, 0};
    errno = 0;
    EXPECT_EQ(ppoll(fds, 1, &ts, bad), -1);
    EXPECT_EQ(errno, EFAULT);
    fd_set r = just(p.fd[0]);
    errno = 0;
    EXPECT_EQ(pselect(p.fd[0] + 1, &r, nullptr, nullptr, &ts, bad), -1);
    EXPECT_EQ(errno, EFAULT);
  });
  g.join();
}

}  // namespace
