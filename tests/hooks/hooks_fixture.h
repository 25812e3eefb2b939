#pragma once
// IoTest with every hook group patched, and helpers for the hooks' tests.
#include <sys/socket.h>
#include <unistd.h>

#include "fern/hooks/hooks.h"
#include "io/io_fixture.h"

namespace fern::testing {

class HooksTest : public IoTest {
 protected:
  void SetUp() override {
    hooks::patch_all();
    IoTest::SetUp();
  }
};

// A blocking AF_UNIX stream pair created through the hooked socketpair;
// both ends closed (through the hooked close) at the end of the scope.
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() {
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fd) < 0) throw std::system_error(errno, std::generic_category());
  }
  ~SocketPair() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
};

inline double seconds_since(Nanos start) { return static_cast<double>(monotonic_now() - start) / 1e9; }

}  // namespace fern::testing
