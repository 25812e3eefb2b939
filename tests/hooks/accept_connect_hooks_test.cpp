// accept and connect as the kernel answers them on a blocking socket: what
// an accepted socket inherits, a full AF_UNIX backlog, a second connect.
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <string>

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

}  // namespace
