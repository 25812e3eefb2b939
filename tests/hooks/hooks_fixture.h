#pragma once
// IoTest with every hook group patched, and helpers for the hooks' tests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

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

// A TCP socket (hooked socket(), blocking) bound to 127.0.0.1 on an
// ephemeral port, listening with `backlog` unless it is negative; `addr`
// gets its address. Closed by the destructor.
struct LoopbackSocket {
  int fd = -1;
  sockaddr_in addr{};
  explicit LoopbackSocket(int backlog) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, address(), sizeof addr) < 0 || ::getsockname(fd, address(), &len) < 0 ||
        (backlog >= 0 && ::listen(fd, backlog) < 0))
      throw std::system_error(errno, std::generic_category(), "loopback socket");
  }
  ~LoopbackSocket() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  sockaddr* address() { return reinterpret_cast<sockaddr*>(&addr); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
};

// A call's result and the errno it left (cleared before the call), to
// compare with libc's in one EXPECT_EQ.
struct Outcome {
  long r = -2;
  int err = 0;
  bool operator==(const Outcome& o) const { return r == o.r && err == o.err; }
};
inline std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << o.r << " errno " << o.err << " (" << std::strerror(o.err) << ")";
}
template <class Call>
Outcome outcome(Call&& call) {
  errno = 0;
  long r = static_cast<long>(call());
  return Outcome{r, errno};
}

// Keeps a test that a bug would block for good bounded: unless the scope
// ends within `bound`, its thread runs `rescue` (it writes what the blocked
// call waits for, say), so the test fails on a wrong value instead of hanging.
class Rescuer {
 public:
  explicit Rescuer(std::function<void()> rescue, std::chrono::milliseconds bound = std::chrono::seconds(5))
      : thread_([this, rescue = std::move(rescue), bound] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, bound, [this] { return done_; })) rescue();
        }) {}
  ~Rescuer() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Rescuer(const Rescuer&) = delete;
  Rescuer& operator=(const Rescuer&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

inline double seconds_since(Nanos start) { return static_cast<double>(monotonic_now() - start) / 1e9; }

}  // namespace fern::testing
