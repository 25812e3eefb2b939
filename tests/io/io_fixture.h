#pragma once
// HubTest plus an OS-level fd leak check: the test ends with exactly the
// fds it started with (the default thread pool's threads own no fds).
#include <dirent.h>

#include <cstddef>

#include "fern/io/socket.h"
#include "fern/io/thread_pool.h"
#include "hub_fixture.h"

namespace fern::testing {

inline std::size_t open_fd_count() {
  std::size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

class IoTest : public HubTest {
 protected:
  // Counted outside the hub's lifetime: its own wake-up fds come and go with it.
  void SetUp() override {
    default_thread_pool().wait_idle();
    fds_ = open_fd_count();
    HubTest::SetUp();
  }
  void TearDown() override {
    HubTest::TearDown();
    // A resolver worker may still hold the old hub's door (its eventfd) for
    // the instant after handing a result back.
    default_thread_pool().wait_idle();
    EXPECT_EQ(open_fd_count(), fds_) << "fds leaked";
  }

 private:
  std::size_t fds_ = 0;
};

// A TCP listener on 127.0.0.1 (or ::1) with an ephemeral port.
inline Socket listen_on(const char* host = "127.0.0.1", int backlog = 16) {
  Address a = Address::ip(host, 0);
  Socket s(a.family(), SOCK_STREAM);
  s.set_reuse_addr();
  s.bind(a);
  s.listen(backlog);
  return s;
}

inline bool has_ipv6_loopback() {
  try {
    Socket s(AF_INET6, SOCK_STREAM);
    s.bind(Address::ip("::1", 0));
    return true;
  } catch (const std::system_error&) {
    return false;
  }
}

}  // namespace fern::testing
