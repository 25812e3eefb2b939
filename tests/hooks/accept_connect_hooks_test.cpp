// accept and connect as the kernel answers them on a blocking socket: what
// an accepted socket inherits, a full AF_UNIX backlog, a second connect.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/task.h"
#include "hooks/hooks_fixture.h"

namespace {

using fern::spawn;
using namespace fern::testing;
using AcceptConnectHooks = HooksTest;

timeval get_timeout(int fd, int option) {
  timeval tv{};
  socklen_t len = sizeof tv;
  EXPECT_EQ(getsockopt(fd, SOL_SOCKET, option, &tv, &len), 0);
  return tv;
}

// Linux clones a TCP listener into the accepted socket, SO_RCVTIMEO and
// SO_SNDTIMEO included: a read on it times out as the kernel's would.
TEST_F(AcceptConnectHooks, AnAcceptedTcpSocketKeepsTheListenersTimeouts) {
  LoopbackSocket listener(8);
  timeval tv{0, 20'000};
  ASSERT_EQ(setsockopt(listener.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  int client = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(client, listener.address(), sizeof listener.addr), 0);
  auto server = spawn([&] {
    int s = accept(listener.fd, nullptr, nullptr);
    ASSERT_GE(s, 0);
    timeval kernel = get_timeout(s, SO_RCVTIMEO);
    EXPECT_EQ(kernel.tv_sec, 0);
    EXPECT_EQ(kernel.tv_usec, 20'000) << "the kernel's own copy";
    Rescuer rescue([&] { (void)write(client, "x", 1); });
    char c;
    EXPECT_EQ(outcome([&] { return read(s, &c, 1); }), (Outcome{-1, EAGAIN}));
    close(s);
  });
  server.join();
  close(client);
}

// An AF_UNIX listener on an abstract address (no file) unique to this
// process and `tag`, with backlog 0, and the one connection that fills it.
struct FullUnixListener {
  sockaddr_un addr{};
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  int queued = socket(AF_UNIX, SOCK_STREAM, 0);
  explicit FullUnixListener(const char* tag) {
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "fern-hooks-%d-%s", getpid(), tag);
    if (bind(fd, address(), sizeof addr) < 0 || listen(fd, 0) < 0 || connect(queued, address(), sizeof addr) < 0)
      throw std::system_error(errno, std::generic_category(), "unix listener");
  }
  ~FullUnixListener() {
    close(queued);
    close(fd);
  }
  FullUnixListener(const FullUnixListener&) = delete;
  FullUnixListener& operator=(const FullUnixListener&) = delete;
  sockaddr* address() { return reinterpret_cast<sockaddr*>(&addr); }
};

// A listener with backlog 0 holds one connection: Linux's blocking connect
// to it when full waits until an accept makes room (a non-blocking one is
// EAGAIN).
TEST_F(AcceptConnectHooks, AUnixConnectToAFullBacklogParksUntilAnAccept) {
  FullUnixListener full("backlog");
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  auto connector = spawn([&] {
    log.push_back("connecting");
    EXPECT_EQ(outcome([&] { return connect(s, full.address(), sizeof full.addr); }), (Outcome{0, 0}));
    log.push_back("connected");
  });
  auto acceptor = spawn([&] {
    log.push_back("accepting");
    int accepted = accept(full.fd, nullptr, nullptr);
    EXPECT_GE(accepted, 0);
    close(accepted);
  });
  fern::joinall(connector, acceptor);
  EXPECT_EQ(log, (std::vector<std::string>{"connecting", "accepting", "connected"}));
  close(s);
}

// Past SO_SNDTIMEO that connect is -1/EAGAIN, libc's answer too.
TEST_F(AcceptConnectHooks, AUnixConnectToAFullBacklogTimesOutAsLibcs) {
  FullUnixListener full("timeout");
  auto timed_connect = [&] {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    timeval tv{0, 20'000};
    EXPECT_EQ(setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    Outcome o = outcome([&] { return connect(s, full.address(), sizeof full.addr); });
    close(s);
    return o;
  };
  fern::hooks::unpatch(fern::hooks::kSocket);
  Outcome libc = timed_connect();
  fern::hooks::patch_all();
  EXPECT_EQ(libc, (Outcome{-1, EAGAIN}));
  EXPECT_EQ(spawn(timed_connect).get(), libc);
}

// connect twice on one socket: refused, then refused again (the failed
// attempt left it unconnected); connected, then EISCONN; errno after a
// success is the caller's. The same as libc's blocking connect.
TEST_F(AcceptConnectHooks, ASecondConnectGetsLibcsAnswer) {
  LoopbackSocket refusing(-1);
  LoopbackSocket listener(8);
  auto connect_twice = [&](sockaddr* to, socklen_t len) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    errno = 77;
    std::vector<Outcome> got;
    got.push_back(Outcome{connect(s, to, len), errno});
    got.push_back(outcome([&] { return connect(s, to, len); }));
    close(s);
    return got;
  };
  auto all = [&] {
    std::vector<Outcome> got = connect_twice(refusing.address(), sizeof refusing.addr);
    for (Outcome o : connect_twice(listener.address(), sizeof listener.addr)) got.push_back(o);
    return got;
  };
  refusing.close();  // bound, never listening: nothing is there
  fern::hooks::unpatch(fern::hooks::kSocket);
  std::vector<Outcome> libc = all();
  fern::hooks::patch_all();
  EXPECT_EQ(libc, (std::vector<Outcome>{{-1, ECONNREFUSED}, {-1, ECONNREFUSED}, {0, 77}, {-1, EISCONN}}));
  EXPECT_EQ(spawn(all).get(), libc);
  for (int i = 0; i < 2; ++i) close(accept(listener.fd, nullptr, nullptr));
}

}  // namespace
