// What reaches a parked hooked call from fern (a Timeout, a kill), and the
// details libc callers rely on: MSG_WAITALL, errno after a park, connect
// and accept timeouts, the _FORTIFY_SOURCE entry points.
#include <poll.h>

#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/hooks/detail.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using fern::testing::seconds_since;
using fern::testing::SocketPair;
using Vec = std::vector<std::string>;
using InterruptHooks = fern::testing::HooksTest;

TEST_F(InterruptHooks, ATimeoutInterruptsAParkedReadAndItsWatchLeaves) {
  SocketPair p;
  auto reader = spawn([&] {
    char c;
    try {
      fern::TimeoutScope scope(0.02);
      (void)read(p.fd[0], &c, 1);
      log.push_back("read returned");
    } catch (const fern::Timeout&) {
      log.push_back("timeout");
    }
  });
  reader.join();
  EXPECT_EQ(log, (Vec{"timeout"}));
  // The socket still works, from another greenlet (its watch is gone: no IO-2 error).
  EXPECT_EQ(write(p.fd[1], "y", 1), 1);
  auto again = spawn([&] {
    char c;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
  });
  again.join();
}

TEST_F(InterruptHooks, KillingAGreenletParkedInPollUnwindsIt) {
  SocketPair p;
  bool unwound = false;
  auto poller = spawn([&] {
    struct Mark {
      bool& flag;
      ~Mark() { flag = true; }
    } mark{unwound};
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    (void)poll(fds, 1, -1);
  });
  fern::sleep(0);
  poller.kill();
  EXPECT_TRUE(unwound);
}

TEST_F(InterruptHooks, MsgWaitallGathersEveryByte) {
  SocketPair p;
  auto receiver = spawn([&] {
    char buf[6];
    EXPECT_EQ(recv(p.fd[0], buf, sizeof buf, MSG_WAITALL), 6);
    log.push_back(std::string(buf, 6));
  });
  auto sender = spawn([&] {
    for (const char* part : {"ab", "cd", "ef"}) {
      EXPECT_EQ(send(p.fd[1], part, 2, 0), 2);
      fern::sleep(0.001);
    }
  });
  fern::joinall(receiver, sender);
  EXPECT_EQ(log, (Vec{"abcdef"}));
}

TEST_F(InterruptHooks, ErrnoAfterAParkedSuccessIsTheCallers) {
  SocketPair p;
  auto reader = spawn([&] {
    char c;
    errno = 1234;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
    EXPECT_EQ(errno, 1234);
    errno = 4321;
    EXPECT_EQ(usleep(1000), 0);
    EXPECT_EQ(errno, 4321);
  });
  auto writer = spawn([&] { EXPECT_EQ(write(p.fd[1], "e", 1), 1); });
  fern::joinall(reader, writer);
}

TEST_F(InterruptHooks, AcceptHonoursSoRcvtimeo) {
  fern::testing::LoopbackSocket listener(1);
  timeval tv{0, 20'000};
  ASSERT_EQ(setsockopt(listener.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  fern::Nanos start = fern::monotonic_now();
  auto g = spawn([&] {
    errno = 0;
    EXPECT_EQ(accept(listener.fd, nullptr, nullptr), -1);
    EXPECT_EQ(errno, EAGAIN);
  });
  g.join();
  EXPECT_GE(seconds_since(start), 0.02);
}

// A listener whose accept queue is full drops further SYNs: a blocking
// connect then waits, and past SO_SNDTIMEO Linux answers EINPROGRESS.
TEST_F(InterruptHooks, ConnectHonoursSoSndtimeoWithEinprogress) {
  fern::testing::LoopbackSocket listener(0);
  std::vector<int> clients;
  bool timed_out = false;
  auto g = spawn([&] {
    for (int i = 0; i < 8 && !timed_out; ++i) {
      int s = socket(AF_INET, SOCK_STREAM, 0);
      clients.push_back(s);
      timeval tv{0, 30'000};
      ASSERT_EQ(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
      fern::Nanos start = fern::monotonic_now();
      errno = 0;
      if (connect(s, listener.address(), sizeof listener.addr) == -1) {
        EXPECT_EQ(errno, EINPROGRESS);
        EXPECT_GE(seconds_since(start), 0.03);
        timed_out = true;
      }
    }
  });
  g.join();
  for (int s : clients) close(s);
  if (!timed_out) GTEST_SKIP() << "this kernel completed every connection to a full listener";
}

TEST_F(InterruptHooks, FortifiedEntryPointsAreHookedToo) {
  SocketPair p;
  auto reader = spawn([&] {
    char buf[4];
    log.push_back("reading");
    EXPECT_EQ(__read_chk(p.fd[0], buf, 1, sizeof buf), 1);
    EXPECT_EQ(__recv_chk(p.fd[0], buf, 1, sizeof buf, 0), 1);
    EXPECT_EQ(__recvfrom_chk(p.fd[0], buf, 1, sizeof buf, 0, nullptr, nullptr), 1);
    pollfd fds[1] = {{p.fd[0], POLLIN, 0}};
    EXPECT_EQ(__poll_chk(fds, 1, 10, sizeof fds), 0);
    auto late_writer = spawn([&] {
      log.push_back("writing again");
      EXPECT_EQ(write(p.fd[1], "d", 1), 1);
    });
    const timespec bound{5, 0};  // the late writer comes first unless ppoll blocks the thread
    EXPECT_EQ(__ppoll_chk(fds, 1, &bound, nullptr, sizeof fds), 1);
    log.push_back("done");
    late_writer.join();
  });
  auto writer = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(p.fd[1], "abc", 3), 3);
  });
  fern::joinall(reader, writer);
  EXPECT_EQ(log, (Vec{"reading", "writing", "writing again", "done"}));
}

TEST(InterruptHooksDeathTest, AFortifiedReadPastItsBufferAborts) {
#if !defined(FERN_TEST_UNDER_EMULATOR)
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // under an emulator the child cannot exec itself
#endif
  EXPECT_DEATH(
      {
        char buf[2];
        (void)__read_chk(0, buf, 8, sizeof buf);
      },
      "buffer overflow");
}

}  // namespace
