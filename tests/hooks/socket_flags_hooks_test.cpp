// Per-call flags and per-file state on a socket the hooks made non-blocking
// underneath: each call still gets what libc gives on the blocking socket.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/detail.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using namespace fern::testing;
using SocketFlagsHooks = HooksTest;

bool really_nonblocking(int fd) { return FERN_REAL(fcntl)(fd, F_GETFL) & O_NONBLOCK; }

// One read of fd[0] parks (the hooks set O_NONBLOCK underneath for it).
void park_one_read(SocketPair& p) {
  auto reader = spawn([&] {
    char c;
    EXPECT_EQ(read(p.fd[0], &c, 1), 1);
  });
  fern::sleep(0);
  EXPECT_EQ(write(p.fd[1], "r", 1), 1);
  reader.join();
  ASSERT_TRUE(really_nonblocking(p.fd[0]));
}

// Empties fd's receive queue without the hooks.
void drain(int fd) {
  char buf[1 << 16];
  while (FERN_REAL(recv)(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
}

// MSG_DONTWAIT is -1/EAGAIN at once on an empty socket, as the kernel
// answers it, whoever calls: a greenlet, the hub (a callback) or a thread
// without a hub (libc's side waits for readiness only for blocking calls).
TEST_F(SocketFlagsHooks, MsgDontwaitReceiveNeverWaits) {
  SocketPair p;
  park_one_read(p);
  auto receive = [&] {
    Rescuer rescue([&] { FERN_REAL(write)(p.fd[1], "x", 1); });
    char c;
    return outcome([&] { return recv(p.fd[0], &c, 1, MSG_DONTWAIT); });
  };
  Outcome in_greenlet, in_hub, in_thread;
  spawn([&] { in_greenlet = receive(); }).join();
  drain(p.fd[0]);
  fern::Hub::current().run_callback([&] { in_hub = receive(); });
  fern::sleep(0);
  drain(p.fd[0]);
  std::thread([&] { in_thread = receive(); }).join();
  for (const Outcome& o : {in_greenlet, in_hub, in_thread}) EXPECT_EQ(o, (Outcome{-1, EAGAIN}));
}

TEST_F(SocketFlagsHooks, MsgDontwaitSendOnAFullSocketNeverWaits) {
  SocketPair p;
  park_one_read(p);
  std::vector<char> chunk(1 << 16, 'x');
  while (FERN_REAL(send)(p.fd[0], chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  auto send_one = [&] {
    Rescuer rescue([&] { drain(p.fd[1]); });
    return outcome([&] { return send(p.fd[0], "y", 1, MSG_DONTWAIT); });
  };
  Outcome in_greenlet, in_thread;
  spawn([&] { in_greenlet = send_one(); }).join();
  std::thread([&] { in_thread = send_one(); }).join();
  for (const Outcome& o : {in_greenlet, in_thread}) EXPECT_EQ(o, (Outcome{-1, EAGAIN}));
}

volatile sig_atomic_t g_sigpipes = 0;

// Counts SIGPIPE for the scope (a stray one would otherwise end the test).
class CountSigpipe {
 public:
  CountSigpipe() {
    g_sigpipes = 0;
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_sigpipes = g_sigpipes + 1; };
    sigaction(SIGPIPE, &sa, &old_);
  }
  ~CountSigpipe() { sigaction(SIGPIPE, &old_, nullptr); }
  CountSigpipe(const CountSigpipe&) = delete;
  CountSigpipe& operator=(const CountSigpipe&) = delete;

 private:
  struct sigaction old_ {};
};

// The peer reads 1000 bytes of a large blocking write and closes: the
// kernel's blocking call returns the count sent so far and raises SIGPIPE
// only for a call that sent nothing, so the write (and writev) the hooks
// finish in parts returns its partial count without a signal.
TEST_F(SocketFlagsHooks, APeerClosingMidWriteGivesThePartialCountWithoutSigpipe) {
  CountSigpipe sigpipes;
  std::string big(8 << 20, 'x');
  iovec halves[2] = {{big.data(), big.size() / 2}, {big.data() + big.size() / 2, big.size() / 2}};
  std::vector<std::function<ssize_t(int)>> writes = {
      [&](int fd) { return write(fd, big.data(), big.size()); },
      [&](int fd) { return writev(fd, halves, 2); },
      [&](int fd) { return send(fd, big.data(), big.size(), 0); },
  };
  for (auto& big_write : writes) {
    SocketPair p;
    ssize_t wrote = -2;
    auto writer = spawn([&] { wrote = big_write(p.fd[1]); });
    auto reader = spawn([&] {
      char buf[1000];
      EXPECT_EQ(recv(p.fd[0], buf, sizeof buf, MSG_WAITALL), 1000);
      close(p.fd[0]);
      p.fd[0] = -1;
    });
    fern::joinall(writer, reader);
    EXPECT_GE(wrote, 1000);
    EXPECT_LT(wrote, static_cast<ssize_t>(big.size()));
  }
  EXPECT_EQ(g_sigpipes, 0);
}

// Linux takes a negative SO_RCVTIMEO as a timeout that ends every wait at
// once (getsockopt shows 0): a blocking read is -1/EAGAIN at once, parked
// or not.
TEST_F(SocketFlagsHooks, ANegativeSoRcvtimeoEndsEveryWaitAtOnce) {
  auto read_with_negative_timeout = [](SocketPair& p) {
    Rescuer rescue([&] { FERN_REAL(write)(p.fd[1], "x", 1); });
    timeval negative{-1, 0};
    EXPECT_EQ(setsockopt(p.fd[0], SOL_SOCKET, SO_RCVTIMEO, &negative, sizeof negative), 0);
    char c;
    return outcome([&] { return read(p.fd[0], &c, 1); });
  };
  SocketPair plain;
  fern::hooks::unpatch(fern::hooks::kSocket);
  Outcome libc = read_with_negative_timeout(plain);
  fern::hooks::patch_all();
  EXPECT_EQ(libc, (Outcome{-1, EAGAIN}));
  SocketPair p;
  park_one_read(p);
  EXPECT_EQ(spawn([&] { return read_with_negative_timeout(p); }).get(), libc);
}

// The kernel's other spelling of the timeouts, SO_RCVTIMEO_NEW and
// SO_SNDTIMEO_NEW (two int64s: what SO_RCVTIMEO means with 64-bit time_t
// on a 32-bit target), is honoured as SO_RCVTIMEO is: -1/EAGAIN.
TEST_F(SocketFlagsHooks, TheNewTimeoutOptionsAreHonouredToo) {
  struct Int64Timeval {
    std::int64_t sec, usec;
  };
  auto read_with_new_timeout = [](SocketPair& p) {
    Rescuer rescue([&] { FERN_REAL(write)(p.fd[1], "x", 1); });
    Int64Timeval tv{0, 20'000};
    EXPECT_EQ(setsockopt(p.fd[0], SOL_SOCKET, SO_RCVTIMEO_NEW, &tv, sizeof tv), 0);
    char c;
    return outcome([&] { return read(p.fd[0], &c, 1); });
  };
  {
    // qemu-user and kernels before 5.1 refuse the option itself: nothing to honour.
    SocketPair probe;
    Int64Timeval tv{0, 20'000};
    if (FERN_REAL(setsockopt)(probe.fd[0], SOL_SOCKET, SO_RCVTIMEO_NEW, &tv, sizeof tv) != 0)
      GTEST_SKIP() << "SO_RCVTIMEO_NEW refused here: " << std::strerror(errno);
  }
  SocketPair plain;
  fern::hooks::unpatch(fern::hooks::kSocket);
  Outcome libc = read_with_new_timeout(plain);
  fern::hooks::patch_all();
  EXPECT_EQ(libc, (Outcome{-1, EAGAIN}));
  SocketPair p;
  park_one_read(p);
  EXPECT_EQ(spawn([&] { return read_with_new_timeout(p); }).get(), libc);
  // The send side: a write to a full socket ends at SO_SNDTIMEO_NEW.
  Int64Timeval tv{0, 20'000};
  ASSERT_EQ(setsockopt(p.fd[1], SOL_SOCKET, SO_SNDTIMEO_NEW, &tv, sizeof tv), 0);
  std::vector<char> chunk(1 << 12, 'x');
  while (FERN_REAL(send)(p.fd[1], chunk.data(), chunk.size(), MSG_DONTWAIT) > 0) {
  }
  EXPECT_EQ(spawn([&] {
    Rescuer rescue([&] { drain(p.fd[0]); });
    return outcome([&] { return write(p.fd[1], "y", 1); });
  }).get(), (Outcome{-1, EAGAIN}));
}

// True once thread `tid` sleeps in the kernel (its blocking call), within
// a bound.
bool sleeping_in_kernel(pid_t tid) {
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (int i = 0; i < 500000; ++i) {
    char text[512] = {};
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return false;
    std::size_t n = std::fread(text, 1, sizeof text - 1, f);
    std::fclose(f);
    const char* state = std::strrchr(text, ')');
    if (n > 0 && state != nullptr && state[1] == ' ' && state[2] == 'S') return true;
    std::this_thread::yield();
  }
  return false;
}

// A thread without a hub waits in poll(2) on a socket the hooks made
// non-blocking: once its read succeeds, errno is what it was before the call.
TEST_F(SocketFlagsHooks, ErrnoAfterAWaitInAThreadWithoutHubIsTheCallers) {
  SocketPair p;
  park_one_read(p);
  std::atomic<pid_t> tid{0};
  Outcome got;
  std::thread reader([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    char c;
    errno = 77;
    got.r = read(p.fd[0], &c, 1);
    got.err = errno;
  });
  while (tid == 0) std::this_thread::yield();
  EXPECT_TRUE(sleeping_in_kernel(tid));
  EXPECT_EQ(FERN_REAL(write)(p.fd[1], "x", 1), 1);
  reader.join();
  EXPECT_EQ(got, (Outcome{1, 77}));
}

// O_NONBLOCK is a flag of the open file, which a dup shares: the hooks'
// own non-blocking mode stays hidden behind every fd of it, and the
// application's, set through one fd, is what a call on another gets.
TEST_F(SocketFlagsHooks, ADupSharesONonblockWithItsOriginal) {
  SocketPair p;
  int copy = dup(p.fd[0]);
  park_one_read(p);
  EXPECT_EQ(fcntl(copy, F_GETFL) & O_NONBLOCK, 0) << "the hooks' flag, not the application's";
  int fl = fcntl(copy, F_GETFL);
  ASSERT_EQ(fcntl(copy, F_SETFL, fl | O_NONBLOCK), 0);
  EXPECT_NE(fcntl(p.fd[0], F_GETFL) & O_NONBLOCK, 0);
  Outcome got = spawn([&] {
    Rescuer rescue([&] { FERN_REAL(write)(p.fd[1], "x", 1); });
    char c;
    return outcome([&] { return read(p.fd[0], &c, 1); });
  }).get();
  EXPECT_EQ(got, (Outcome{-1, EAGAIN}));
  close(copy);
}

}  // namespace
