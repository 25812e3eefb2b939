// Hooked poll / select and the sleep family: they park the calling
// greenlet, with libc's results and errno.
#include <poll.h>
#include <sys/select.h>
#include <time.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using fern::testing::seconds_since;
using fern::testing::SocketPair;
using Vec = std::vector<std::string>;
using WaitHooks = fern::testing::HooksTest;

TEST_F(WaitHooks, PollTimesOutWithZeroWhileOthersRun) {
  SocketPair p;
  int others = 0;
  fern::Nanos start = fern::monotonic_now();
  auto poller = spawn([&] {
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    EXPECT_EQ(poll(fds, 1, 50), 0);
    EXPECT_EQ(fds[0].revents, 0);
  });
  auto other = spawn([&] { ++others; });
  fern::joinall(poller, other);
  EXPECT_GE(seconds_since(start), 0.05);
  EXPECT_EQ(others, 1);
}

TEST_F(WaitHooks, PollWakesWhenAnFdBecomesReady) {
  SocketPair a, b;
  auto poller = spawn([&] {
    pollfd fds[3] = {{a.fd[0], POLLIN, 0}, {-1, POLLIN, 0}, {b.fd[0], POLLIN, 0}};
    log.push_back("polling");
    EXPECT_EQ(poll(fds, 3, -1), 1);
    EXPECT_EQ(fds[0].revents, 0);
    EXPECT_EQ(fds[1].revents, 0);
    EXPECT_EQ(fds[2].revents, POLLIN);
    log.push_back("ready");
  });
  auto writer = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(b.fd[1], "x", 1), 1);
  });
  fern::joinall(poller, writer);
  EXPECT_EQ(log, (Vec{"polling", "writing", "ready"}));
}

TEST_F(WaitHooks, PollReportsInvalidFdsAsLibcDoes) {
  auto g = spawn([&] {
    pollfd fds[1] = {{1'000'000 - 1, POLLIN, 0}};
    EXPECT_EQ(poll(fds, 1, 1000), 1);
    EXPECT_EQ(fds[0].revents, POLLNVAL);
  });
  g.join();
}

TEST_F(WaitHooks, PollWithoutFdsSleeps) {
  fern::Nanos start = fern::monotonic_now();
  auto g = spawn([&] { EXPECT_EQ(poll(nullptr, 0, 20), 0); });
  g.join();
  EXPECT_GE(seconds_since(start), 0.02);
}

// A regular file's readiness never changes (epoll refuses it): with an
// event it never has, the poll parks on the socket beside it, and errno is
// the caller's after the timeout, as libc's poll leaves it.
TEST_F(WaitHooks, PollParksBesideARegularFileThatIsNeverReady) {
  SocketPair p;
  FILE* file = tmpfile();
  ASSERT_NE(file, nullptr);
  auto poller = spawn([&] {
    pollfd fds[2] = {{fileno(file), POLLPRI, 0}, {p.fd[0], POLLIN, 0}};
    log.push_back("polling");
    EXPECT_EQ(poll(fds, 2, 5000), 1);
    EXPECT_EQ(fds[1].revents, POLLIN);
    log.push_back("ready");
    char c;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
    errno = 77;
    EXPECT_EQ(poll(fds, 2, 1), 0);
    EXPECT_EQ(errno, 77);
  });
  auto writer = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(p.fd[1], "x", 1), 1);
  });
  fern::joinall(poller, writer);
  fclose(file);
  EXPECT_EQ(log, (Vec{"polling", "writing", "ready"}));
}

TEST_F(WaitHooks, CloseEndsAPollWithPollnval) {
  SocketPair p;
  int fd = p.fd[0];
  auto poller = spawn([&] {
    pollfd fds[1] = {{fd, POLLIN, 0}};
    EXPECT_EQ(poll(fds, 1, -1), 1);
    EXPECT_EQ(fds[0].revents, POLLNVAL);
  });
  auto closer = spawn([&] {
    close(fd);
    p.fd[0] = -1;
  });
  fern::joinall(poller, closer);
}

TEST_F(WaitHooks, PpollParksToo) {
  SocketPair p;
  auto g = spawn([&] {
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    timespec ts{0, 20'000'000};
    EXPECT_EQ(ppoll(fds, 1, &ts, nullptr), 0);
    timespec bad{0, 2'000'000'000};
    errno = 0;
    EXPECT_EQ(ppoll(fds, 1, &bad, nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
  });
  auto other = spawn([&] { log.push_back("other"); });
  fern::joinall(g, other);
  EXPECT_EQ(log, (Vec{"other"}));
}

TEST_F(WaitHooks, SelectTimesOutAndWritesBackTheTimeLeft) {
  SocketPair p;
  auto g = spawn([&] {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p.fd[0], &r);
    timeval tv{0, 30'000};
    fern::Nanos start = fern::monotonic_now();
    EXPECT_EQ(select(p.fd[0] + 1, &r, nullptr, nullptr, &tv), 0);
    EXPECT_GE(seconds_since(start), 0.03);
    EXPECT_FALSE(FD_ISSET(p.fd[0], &r));
    EXPECT_EQ(tv.tv_sec, 0);
    EXPECT_EQ(tv.tv_usec, 0);
  });
  auto other = spawn([&] { log.push_back("other"); });
  fern::joinall(g, other);
  EXPECT_EQ(log, (Vec{"other"}));
}

TEST_F(WaitHooks, SelectReportsReadableAndWritable) {
  SocketPair p;
  auto g = spawn([&] {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p.fd[0], &r);
    FD_SET(p.fd[1], &w);
    EXPECT_EQ(select(p.fd[1] + 1, &r, &w, nullptr, nullptr), 1);  // only the write end
    EXPECT_FALSE(FD_ISSET(p.fd[0], &r));
    EXPECT_TRUE(FD_ISSET(p.fd[1], &w));
    FD_ZERO(&r);
    FD_SET(p.fd[0], &r);
    log.push_back("selecting");
    EXPECT_EQ(select(p.fd[0] + 1, &r, nullptr, nullptr, nullptr), 1);
    EXPECT_TRUE(FD_ISSET(p.fd[0], &r));
    log.push_back("readable");
  });
  auto writer = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(p.fd[1], "x", 1), 1);
  });
  fern::joinall(g, writer);
  EXPECT_EQ(log, (Vec{"selecting", "writing", "readable"}));
}

TEST_F(WaitHooks, SelectErrnoIsLibcs) {
  auto g = spawn([&] {
    fd_set r;
    FD_ZERO(&r);
    timeval tv{1, 0};
    errno = 0;
    EXPECT_EQ(select(-1, &r, nullptr, nullptr, &tv), -1);
    EXPECT_EQ(errno, EINVAL);
    timeval bad{1, -1};
    errno = 0;
    EXPECT_EQ(select(1, &r, nullptr, nullptr, &bad), -1);
    EXPECT_EQ(errno, EINVAL);
    int fd;
    {
      SocketPair p;
      fd = p.fd[0];
    }
    FD_SET(fd, &r);
    errno = 0;
    EXPECT_EQ(select(fd + 1, &r, nullptr, nullptr, &tv), -1);
    EXPECT_EQ(errno, EBADF);
  });
  g.join();
}

TEST_F(WaitHooks, HundredGreenletsUsleepingTwoTenthsFinishTogether) {
  std::vector<fern::Task<void>> sleepers;
  fern::Nanos start = fern::monotonic_now();
  for (int i = 0; i < 100; ++i) sleepers.push_back(spawn([] { EXPECT_EQ(usleep(200'000), 0); }));
  fern::joinall(sleepers);
  double took = seconds_since(start);
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 2.0) << "the sleeps ran one after another";
}

TEST_F(WaitHooks, EverySleepCallParks) {
  auto sleeper = spawn([&] {
    log.push_back("sleep");
    EXPECT_EQ(sleep(0), 0u);
    timespec ts{0, 1'000'000};
    EXPECT_EQ(nanosleep(&ts, nullptr), 0);
    EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, nullptr), 0);
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 1'000'000;
    if (now.tv_nsec >= 1'000'000'000) now.tv_sec += 1, now.tv_nsec -= 1'000'000'000;
    EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, nullptr), 0);
    log.push_back("slept");
  });
  auto other = spawn([&] { log.push_back("other"); });
  fern::joinall(sleeper, other);
  EXPECT_EQ(log, (Vec{"sleep", "other", "slept"}));
}

TEST_F(WaitHooks, SleepErrorsAreLibcs) {
  auto g = spawn([&] {
    timespec bad{0, 1'000'000'000};
    errno = 0;
    EXPECT_EQ(nanosleep(&bad, nullptr), -1);
    EXPECT_EQ(errno, EINVAL);
    errno = 0;
    EXPECT_EQ(clock_nanosleep(CLOCK_MONOTONIC, 0, &bad, nullptr), EINVAL);
    EXPECT_EQ(errno, 0) << "clock_nanosleep returns its error";
    timespec ok{0, 1};
    EXPECT_EQ(clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &ok, nullptr), EINVAL);
  });
  g.join();
}

TEST_F(WaitHooks, SleepInAThreadWithoutHubIsLibcs) {
  fern::Nanos start = 0, end = 0;
  std::thread t([&] {
    start = fern::monotonic_now();
    usleep(20'000);
    end = fern::monotonic_now();
  });
  t.join();
  EXPECT_GE(end - start, 20'000'000);
}

TEST_F(WaitHooks, SleepInTheHubItselfIsLibcs) {
  bool ran = false;
  fern::Hub::current().run_callback([&] {
    EXPECT_EQ(usleep(1000), 0);  // no BlockingSwitchOutError: libc's sleep
    ran = true;
  });
  fern::sleep(0);
  fern::Hub::current().run_until_idle();
  EXPECT_TRUE(ran);
}

}  // namespace
