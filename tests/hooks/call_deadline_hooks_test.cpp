// One SO_RCVTIMEO / SO_SNDTIMEO deadline per call, as the kernel counts it
// (a send the hook finishes in parts, a MSG_WAITALL receive it gathers), and
// what MSG_WAITALL gathers: every iovec of a recvmsg, one datagram only.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using fern::testing::SocketPair;
using CallDeadlineHooks = fern::testing::HooksTest;

void set_timeout(int fd, int option, long usec) {
  timeval tv{0, usec};
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv), 0);
}

// The reader drains the socket every 20 ms, well within the writer's 100 ms
// SO_SNDTIMEO, so every single wait of the write would end in time: a timeout
// restarted per part would send all 8 MiB (1.3 s). One deadline for the call
// ends it after 100 ms with the count sent so far (IO-4: gevent's sendall
// times out t after it starts, however much got through).
TEST_F(CallDeadlineHooks, SoSndtimeoIsOneDeadlineForAWholeWrite) {
  SocketPair p;
  set_timeout(p.fd[1], SO_SNDTIMEO, 100'000);
  std::string big(8 << 20, 'x');
  bool done = false;
  ssize_t wrote = -2;
  auto writer = spawn([&] {
    errno = 77;
    wrote = write(p.fd[1], big.data(), big.size());
    EXPECT_EQ(errno, 77) << "a partial count leaves errno alone";
    done = true;
  });
  auto reader = spawn([&] {
    std::vector<char> buf(128 << 10);
    while (!done) {
      (void)recv(p.fd[0], buf.data(), buf.size(), MSG_DONTWAIT);
      fern::sleep(0.02);
    }
  });
  fern::joinall(writer, reader);
  EXPECT_GT(wrote, 0);
  EXPECT_LT(wrote, static_cast<ssize_t>(big.size()));
}

// The same for a MSG_WAITALL receive the hook gathers: 10 bytes every 20 ms,
// a 100 ms SO_RCVTIMEO, 1000 bytes asked: the call returns what came by its
// deadline, not all of it 2 s later (IO-4).
TEST_F(CallDeadlineHooks, SoRcvtimeoIsOneDeadlineForAWholeWaitallReceive) {
  SocketPair p;
  set_timeout(p.fd[0], SO_RCVTIMEO, 100'000);
  bool done = false;
  ssize_t got = -2;
  auto receiver = spawn([&] {
    char buf[1000];
    got = recv(p.fd[0], buf, sizeof buf, MSG_WAITALL);
    done = true;
  });
  auto sender = spawn([&] {
    for (int i = 0; i < 200 && !done; ++i) {
      EXPECT_EQ(send(p.fd[1], "0123456789", 10, 0), 10);
      fern::sleep(0.02);
    }
  });
  fern::joinall(receiver, sender);
  EXPECT_GT(got, 0);
  EXPECT_LT(got, 1000);
}

// recvmsg(MSG_WAITALL) on a blocking stream fills every iovec (libc's
// blocking call does), though the bytes come in three sends (IO-7: the
// cooperative call mirrors the standard one).
TEST_F(CallDeadlineHooks, RecvmsgWaitallFillsEveryIovec) {
  SocketPair p;
  std::string got;
  auto receiver = spawn([&] {
    char a[4], b[7];
    iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    EXPECT_EQ(recvmsg(p.fd[0], &msg, MSG_WAITALL), 11);
    got = std::string(a, 4) + std::string(b, 7);
  });
  auto sender = spawn([&] {
    for (const char* part : {"hel", "lo wo", "rld"}) {
      EXPECT_EQ(send(p.fd[1], part, std::char_traits<char>::length(part), 0),
                static_cast<ssize_t>(std::char_traits<char>::length(part)));
      fern::sleep(0.001);
    }
  });
  fern::joinall(receiver, sender);
  EXPECT_EQ(got, "hello world");
}

// Passed fds end a gathering receive (the kernel's Unix stream receive stops
// after them): the call returns the first part with its control data.
TEST_F(CallDeadlineHooks, RecvmsgWaitallStopsAtControlData) {
  SocketPair p;
  auto receiver = spawn([&] {
    char buf[8];
    iovec iov{buf, sizeof buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    EXPECT_EQ(recvmsg(p.fd[0], &msg, MSG_WAITALL), 2);
    ASSERT_GT(msg.msg_controllen, 0u);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->cmsg_type, SCM_RIGHTS);
    int passed = -1;
    std::memcpy(&passed, CMSG_DATA(c), sizeof passed);
    EXPECT_GE(passed, 0);
    close(passed);
  });
  auto sender = spawn([&] {
    int fd = 0;  // stdin travels
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof fd)] = {};
    char two[2] = {'f', 'd'};
    iovec iov{two, 2};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fd);
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    EXPECT_EQ(sendmsg(p.fd[1], &msg, 0), 2);
  });
  fern::joinall(receiver, sender);
}

// MSG_WAITALL means nothing to a datagram socket: one datagram comes back,
// however short (a gathering hook would glue the next one on).
TEST_F(CallDeadlineHooks, WaitallOnADatagramSocketReturnsOneDatagram) {
  int fd[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, fd), 0);
  set_timeout(fd[0], SO_RCVTIMEO, 500'000);
  std::string got;
  auto receiver = spawn([&] {
    char buf[10];
    ssize_t n = recv(fd[0], buf, sizeof buf, MSG_WAITALL);
    ASSERT_GT(n, 0);
    got.assign(buf, static_cast<std::size_t>(n));
  });
  auto sender = spawn([&] {
    EXPECT_EQ(send(fd[1], "ab", 2, 0), 2);
    EXPECT_EQ(send(fd[1], "cd", 2, 0), 2);
  });
  fern::joinall(receiver, sender);
  EXPECT_EQ(got, "ab");
  close(fd[0]);
  close(fd[1]);
}

// MSG_PEEK with MSG_WAITALL returns what is there and leaves it queued.
TEST_F(CallDeadlineHooks, WaitallPeekReturnsWhatIsThere) {
  SocketPair p;
  EXPECT_EQ(send(p.fd[1], "abc", 3, 0), 3);
  auto receiver = spawn([&] {
    char buf[8];
    EXPECT_EQ(recv(p.fd[0], buf, sizeof buf, MSG_WAITALL | MSG_PEEK), 3);
    EXPECT_EQ(recv(p.fd[0], buf, 3, 0), 3);
    EXPECT_EQ(std::string(buf, 3), "abc");
  });
  receiver.join();
}

// Bad iovec counts get the kernel's errors, not a read past the array.
TEST_F(CallDeadlineHooks, BadIovecCountsGetTheKernelsErrors) {
  SocketPair p;
  auto g = spawn([&] {
    char c = 'x';
    iovec iov{&c, 1};
    volatile int negative = -1;  // hidden from the compiler's own check
    errno = 0;
    EXPECT_EQ(writev(p.fd[1], &iov, negative), -1);
    EXPECT_EQ(errno, EINVAL);
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1 << 30;
    errno = 0;
    EXPECT_EQ(sendmsg(p.fd[1], &msg, 0), -1);
    EXPECT_EQ(errno, EMSGSIZE);
    errno = 0;
    EXPECT_EQ(recvmsg(p.fd[0], &msg, MSG_WAITALL), -1);
    EXPECT_EQ(errno, EMSGSIZE);
  });
  g.join();
}

}  // namespace
