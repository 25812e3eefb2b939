// Hooked socket calls: the cooperative path, libc's path (a thread without
// a hub, a regular file, the application's own O_NONBLOCK), errno, socket
// timeouts and close under a parked call.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/detail.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using fern::testing::SocketPair;
using Vec = std::vector<std::string>;
using SocketHooks = fern::testing::HooksTest;

// The real O_NONBLOCK, past the hooks' view.
bool really_nonblocking(int fd) { return FERN_REAL(fcntl)(fd, F_GETFL) & O_NONBLOCK; }

TEST_F(SocketHooks, ReadParksOnlyTheCallingGreenlet) {
  SocketPair p;
  auto reader = spawn([&] {
    log.push_back("reading");
    char buf[8];
    ssize_t n = read(p.fd[0], buf, sizeof buf);
    log.push_back("read " + std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0)));
  });
  auto writer = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(p.fd[1], "hi", 2), 2);
  });
  fern::joinall(reader, writer);
  EXPECT_EQ(log, (Vec{"reading", "writing", "read hi"}));
}

// Each receive call parks until its send; an ack back paces the sender.
TEST_F(SocketHooks, EveryReceiveAndSendCallParks) {
  SocketPair p;
  auto receiver = spawn([&] {
    char a[4], b[4];
    auto ack = [&] { EXPECT_EQ(write(p.fd[0], "k", 1), 1); };
    iovec iov[2] = {{a, 2}, {b, 2}};
    EXPECT_EQ(readv(p.fd[0], iov, 2), 4);
    EXPECT_EQ(std::string(a, 2) + std::string(b, 2), "abcd");
    ack();
    EXPECT_EQ(recv(p.fd[0], a, 4, 0), 1);
    ack();
    EXPECT_EQ(recvfrom(p.fd[0], a, 4, 0, nullptr, nullptr), 1);
    ack();
    msghdr msg{};
    iovec one{a, 4};
    msg.msg_iov = &one;
    msg.msg_iovlen = 1;
    EXPECT_EQ(recvmsg(p.fd[0], &msg, 0), 1);
    log.push_back("received all");
  });
  auto sender = spawn([&] {
    char k;
    iovec iov[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
    log.push_back("send");
    EXPECT_EQ(writev(p.fd[1], iov, 2), 4);
    EXPECT_EQ(read(p.fd[1], &k, 1), 1);
    EXPECT_EQ(send(p.fd[1], "e", 1, 0), 1);
    EXPECT_EQ(read(p.fd[1], &k, 1), 1);
    EXPECT_EQ(sendto(p.fd[1], "f", 1, 0, nullptr, 0), 1);
    EXPECT_EQ(read(p.fd[1], &k, 1), 1);
    msghdr msg{};
    iovec one{const_cast<char*>("g"), 1};
    msg.msg_iov = &one;
    msg.msg_iovlen = 1;
    EXPECT_EQ(sendmsg(p.fd[1], &msg, 0), 1);
  });
  fern::joinall(receiver, sender);
  EXPECT_EQ(log, (Vec{"send", "received all"}));
}

// A blocking write returns once all of it is written, as libc's does on a
// blocking socket, though the socket is non-blocking underneath.
TEST_F(SocketHooks, WriteParksWhileTheBufferIsFullAndWritesItAll) {
  SocketPair p;
  std::string big(4 << 20, 'x');  // more than a socket buffer holds
  std::size_t received = 0;
  auto writer = spawn([&] {
    EXPECT_EQ(write(p.fd[1], big.data(), big.size()), static_cast<ssize_t>(big.size()));
    iovec iov[2] = {{big.data(), big.size() / 2}, {big.data() + big.size() / 2, big.size() / 2}};
    EXPECT_EQ(writev(p.fd[1], iov, 2), static_cast<ssize_t>(big.size()));
    EXPECT_EQ(send(p.fd[1], big.data(), big.size(), 0), static_cast<ssize_t>(big.size()));
    log.push_back("wrote all");
  });
  auto reader = spawn([&] {
    std::vector<char> buf(1 << 16);
    while (received < 3 * big.size()) {
      ssize_t n = read(p.fd[0], buf.data(), buf.size());
      ASSERT_GT(n, 0);
      received += static_cast<std::size_t>(n);
    }
    log.push_back("read all");
  });
  fern::joinall(writer, reader);
  EXPECT_EQ(received, 3 * big.size());
}

TEST_F(SocketHooks, ConnectAndAcceptPark) {
  fern::testing::LoopbackSocket listener(8);
  auto server = spawn([&] {
    log.push_back("accepting");
    int c = accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(c, 0);
    char buf[8];
    ssize_t n = recv(c, buf, sizeof buf, 0);
    EXPECT_EQ(send(c, buf, static_cast<std::size_t>(n), 0), n);
    close(c);
  });
  auto client = spawn([&] {
    log.push_back("connecting");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(s, listener.address(), sizeof listener.addr), 0);
    EXPECT_FALSE(fcntl(s, F_GETFL) & O_NONBLOCK) << "the application's view stays blocking";
    EXPECT_EQ(send(s, "ping", 4, 0), 4);
    char buf[8];
    EXPECT_EQ(recv(s, buf, sizeof buf, 0), 4);
    log.push_back(std::string(buf, 4));
    close(s);
  });
  fern::joinall(server, client);
  EXPECT_EQ(log, (Vec{"accepting", "connecting", "ping"}));
}

TEST_F(SocketHooks, ConnectToAClosedPortSetsEconnrefused) {
  fern::testing::LoopbackSocket probe(-1);
  probe.close();  // bound, never listening: nothing is there
  auto g = spawn([&] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    EXPECT_EQ(connect(s, probe.address(), sizeof probe.addr), -1);
    EXPECT_EQ(errno, ECONNREFUSED);
    close(s);
  });
  g.join();
}

TEST_F(SocketHooks, ErrnoIsLibcs) {
  auto g = spawn([&] {
    char c;
    errno = 0;
    EXPECT_EQ(read(-1, &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
    errno = 0;
    EXPECT_EQ(recv(-1, &c, 1, 0), -1);
    EXPECT_EQ(errno, EBADF);
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    errno = 0;
    EXPECT_EQ(recv(pipefd[0], &c, 1, 0), -1);
    EXPECT_EQ(errno, ENOTSOCK);
    close(pipefd[0]);
    close(pipefd[1]);
    SocketPair p;
    shutdown(p.fd[1], SHUT_RDWR);
    EXPECT_EQ(read(p.fd[0], &c, 1), 0) << "end of stream, not a park";
    errno = 0;
    EXPECT_EQ(send(p.fd[1], "x", 1, MSG_NOSIGNAL), -1);
    EXPECT_EQ(errno, EPIPE);
  });
  g.join();
}

TEST_F(SocketHooks, AnFdTheApplicationMadeNonBlockingKeepsGettingEagain) {
  SocketPair p;
  auto g = spawn([&] {
    int fl = fcntl(p.fd[0], F_GETFL);
    ASSERT_EQ(fcntl(p.fd[0], F_SETFL, fl | O_NONBLOCK), 0);
    char c;
    errno = 0;
    EXPECT_EQ(read(p.fd[0], &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_TRUE(fcntl(p.fd[0], F_GETFL) & O_NONBLOCK);
    // Back to blocking: the next read parks again.
    ASSERT_EQ(fcntl(p.fd[0], F_SETFL, fl), 0);
    EXPECT_FALSE(fcntl(p.fd[0], F_GETFL) & O_NONBLOCK);
    log.push_back("reading");
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
    log.push_back("read");
    // Blocking for the application, non-blocking underneath (for the park):
    // setting the application's flags again keeps it so.
    EXPECT_TRUE(really_nonblocking(p.fd[0]));
    ASSERT_EQ(fcntl(p.fd[0], F_SETFL, fl), 0);
    EXPECT_TRUE(really_nonblocking(p.fd[0]));
    EXPECT_FALSE(fcntl(p.fd[0], F_GETFL) & O_NONBLOCK);
  });
  auto w = spawn([&] {
    log.push_back("writing");
    EXPECT_EQ(write(p.fd[1], "x", 1), 1);
  });
  fern::joinall(g, w);
  EXPECT_EQ(log, (Vec{"reading", "writing", "read"}));
}

TEST_F(SocketHooks, FionbioIsTheApplicationsViewToo) {
  SocketPair p;
  auto g = spawn([&] {
    int on = 1;
    ASSERT_EQ(ioctl(p.fd[0], FIONBIO, &on), 0);
    char c;
    errno = 0;
    EXPECT_EQ(recv(p.fd[0], &c, 1, 0), -1);
    EXPECT_EQ(errno, EWOULDBLOCK);
    int off = 0;
    ASSERT_EQ(ioctl(p.fd[0], FIONBIO, &off), 0);
    EXPECT_FALSE(fcntl(p.fd[0], F_GETFL) & O_NONBLOCK);
  });
  g.join();
  errno = 0;
  int on = 1;
  EXPECT_EQ(ioctl(-1, FIONBIO, &on), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(SocketHooks, MsgDontwaitIsLibcsAnswer) {
  SocketPair p;
  auto g = spawn([&] {
    char c;
    errno = 0;
    EXPECT_EQ(recv(p.fd[0], &c, 1, MSG_DONTWAIT), -1);
    EXPECT_EQ(errno, EAGAIN);
  });
  g.join();
}

TEST_F(SocketHooks, SoRcvtimeoEndsAParkedReadWithEagain) {
  SocketPair p;
  timeval tv{0, 50'000};
  ASSERT_EQ(setsockopt(p.fd[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  int others = 0;
  fern::Nanos start = fern::monotonic_now();
  auto reader = spawn([&] {
    char c;
    errno = 0;
    EXPECT_EQ(read(p.fd[0], &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
  });
  auto other = spawn([&] { ++others; });
  fern::joinall(reader, other);
  EXPECT_GE(fern::testing::seconds_since(start), 0.05);
  EXPECT_EQ(others, 1);
}

TEST_F(SocketHooks, SoSndtimeoEndsAParkedWriteWithEagain) {
  SocketPair p;
  timeval tv{0, 30'000};
  ASSERT_EQ(setsockopt(p.fd[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
  auto writer = spawn([&] {
    std::string chunk(1 << 16, 'x');
    for (;;) {
      errno = 0;
      ssize_t n = write(p.fd[1], chunk.data(), chunk.size());
      if (n < 0) break;
    }
    EXPECT_EQ(errno, EAGAIN);
  });
  writer.join();
}

TEST_F(SocketHooks, CloseWakesAParkedReaderWithEbadf) {
  SocketPair p;
  int fd = p.fd[0];
  auto reader = spawn([&] {
    char c;
    errno = 0;
    EXPECT_EQ(read(fd, &c, 1), -1);
    EXPECT_EQ(errno, EBADF);
    log.push_back("woke");
  });
  auto closer = spawn([&] {
    log.push_back("closing");
    EXPECT_EQ(close(fd), 0);
    p.fd[0] = -1;
  });
  fern::joinall(reader, closer);
  EXPECT_EQ(log, (Vec{"closing", "woke"}));
}

// close_range and closefrom close as close does: a greenlet parked on a
// closed fd wakes with EBADF, and a number reused by a call the hooks do not
// see (a raw dup3 here) is classified anew: a non-blocking pipe on the
// number of a socket the hooks made non-blocking gets EAGAIN, it is not
// parked on. The number is above every other fd: closefrom closes it alone.
TEST_F(SocketHooks, CloseRangeAndClosefromCloseAsCloseDoes) {
  for (bool from : {false, true}) {
    SCOPED_TRACE(from ? "closefrom" : "close_range");
    SocketPair p;
    int fd = fcntl(p.fd[0], F_DUPFD, 900);
    ASSERT_GE(fd, 900);
    auto reader = spawn([&] {
      char c;
      return fern::testing::outcome([&] { return read(fd, &c, 1); });
    });
    fern::sleep(0);
    if (from) closefrom(fd);
    else ASSERT_EQ(close_range(static_cast<unsigned>(fd), static_cast<unsigned>(fd), 0), 0);
    EXPECT_EQ(reader.get(), (fern::testing::Outcome{-1, EBADF}));
    int pipe_fds[2];
    ASSERT_EQ(pipe2(pipe_fds, O_NONBLOCK), 0);
    ASSERT_EQ(syscall(SYS_dup3, pipe_fds[0], fd, 0), fd);
    fern::testing::Rescuer rescue([&] { FERN_REAL(write)(pipe_fds[1], "x", 1); });
    auto pipe_read = spawn([&] {
      char c;
      return fern::testing::outcome([&] { return read(fd, &c, 1); });
    });
    EXPECT_EQ(pipe_read.get(), (fern::testing::Outcome{-1, EAGAIN}));
    EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
    for (int f : {fd, pipe_fds[0], pipe_fds[1]}) close(f);
  }
}

// The hub's loop iterations while the calling greenlet sleeps 50 ms: a few,
// unless some fd reports on every wait.
std::uint64_t loops_while_sleeping() {
  std::uint64_t before = fern::Hub::current().stats().iterations;
  fern::sleep(0.05);
  return fern::Hub::current().stats().iterations - before;
}

// dup2 over an fd a greenlet is parked on wakes it with EBADF, and leaves
// no registration of the old file behind: that file, still open through a
// dup and readable, must not wake the hub on every wait.
TEST_F(SocketHooks, Dup2OverAParkedFdWakesItWithEbadfAndLeavesNoWatchBehind) {
  SocketPair old_file, new_file;
  int keep = dup(old_file.fd[0]);
  int fd = old_file.fd[0];
  auto reader = spawn([&] {
    char c;
    return fern::testing::outcome([&] { return read(fd, &c, 1); });
  });
  fern::sleep(0);
  ASSERT_EQ(dup2(new_file.fd[0], fd), fd);
  EXPECT_EQ(reader.get(), (fern::testing::Outcome{-1, EBADF}));
  ASSERT_EQ(write(old_file.fd[1], "x", 1), 1);
  EXPECT_LT(loops_while_sleeping(), 100u);
  close(keep);
}

// The same for dup3 over an fd whose last wait ended (the hub keeps its
// interest between waits).
TEST_F(SocketHooks, Dup3OverAnFdAGreenletReadLeavesNoWatchBehind) {
  SocketPair old_file, new_file;
  int keep = dup(old_file.fd[0]);
  int fd = old_file.fd[0];
  auto reader = spawn([&] {
    char c;
    EXPECT_EQ(read(fd, &c, 1), 1);
  });
  fern::sleep(0);
  ASSERT_EQ(write(old_file.fd[1], "r", 1), 1);
  reader.join();
  ASSERT_EQ(dup3(new_file.fd[0], fd, O_CLOEXEC), fd);
  ASSERT_EQ(write(old_file.fd[1], "x", 1), 1);
  EXPECT_LT(loops_while_sleeping(), 100u);
  close(keep);
}

TEST_F(SocketHooks, DupSharesTheStateOfTheOpenFile) {
  SocketPair p;
  auto g = spawn([&] {
    int fl = fcntl(p.fd[0], F_GETFL);
    ASSERT_EQ(fcntl(p.fd[0], F_SETFL, fl | O_NONBLOCK), 0);
    int copies[3] = {dup(p.fd[0]), fcntl(p.fd[0], F_DUPFD_CLOEXEC, 0), -1};
    int target = socket(AF_UNIX, SOCK_STREAM, 0);
    copies[2] = dup2(p.fd[0], target);
    EXPECT_EQ(copies[2], target);
    for (int c : copies) {
      char ch;
      errno = 0;
      EXPECT_EQ(read(c, &ch, 1), -1);
      EXPECT_EQ(errno, EAGAIN);
      close(c);
    }
  });
  g.join();
}

TEST_F(SocketHooks, RegularFileGoesStraightToLibc) {
  char path[] = "/tmp/fern-hooks-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  auto g = spawn([&] {
    EXPECT_EQ(write(fd, "file", 4), 4);
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[8];
    EXPECT_EQ(read(fd, buf, sizeof buf), 4);
    EXPECT_FALSE(really_nonblocking(fd));
  });
  g.join();
  close(fd);
}

TEST_F(SocketHooks, ThreadWithoutHubBlocksInLibc) {
  SocketPair p;
  std::string got;
  std::thread t([&] {
    EXPECT_EQ(fern::Hub::current_if_exists(), nullptr);
    char buf[8];
    ssize_t n = read(p.fd[0], buf, sizeof buf);
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
  });
  EXPECT_EQ(write(p.fd[1], "thr", 3), 3);
  t.join();
  EXPECT_EQ(got, "thr");
  EXPECT_FALSE(really_nonblocking(p.fd[0]));
}

TEST_F(SocketHooks, FdAGreenletUsedStillBlocksInAThreadWithoutHub) {
  SocketPair p;
  auto g = spawn([&] {
    char c;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);  // parks once: non-blocking underneath now
  });
  fern::sleep(0);
  EXPECT_EQ(write(p.fd[1], "a", 1), 1);
  g.join();
  ASSERT_TRUE(really_nonblocking(p.fd[0]));
  std::string got;
  std::thread t([&] {
    char buf[8];
    ssize_t n = read(p.fd[0], buf, sizeof buf);  // must block, not EAGAIN
    if (n > 0) got.assign(buf, static_cast<std::size_t>(n));
    else got = "errno " + std::to_string(errno);
  });
  EXPECT_EQ(write(p.fd[1], "late", 4), 4);
  t.join();
  EXPECT_EQ(got, "late");
}

TEST_F(SocketHooks, UnpatchedSocketCallsBlockTheThread) {
  fern::hooks::unpatch(fern::hooks::kSocket);
  SocketPair p;
  EXPECT_EQ(write(p.fd[1], "z", 1), 1);
  auto g = spawn([&] {
    char c;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
    EXPECT_FALSE(really_nonblocking(p.fd[0]));
  });
  g.join();
  fern::hooks::patch_all();
}

}  // namespace
