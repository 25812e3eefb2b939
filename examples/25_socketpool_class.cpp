// Twin of gevent's tutorial program 25_socketpool_class.py: the tutorial's
// SocketPool (a Pool of listener tasks, refusing handlers when full, killed
// on shutdown) and the reference's added driver, on socketpairs.
// Deliberate differences:
// * The tutorial's constructor calls pool.start() with no argument, a
//   TypeError in gevent 22.10 (Pool.start needs a greenlet). In C++ that call
//   does not compile, so the twin checks at compile time whether
//   fern::Pool::start() can be called without an argument and, as it cannot,
//   prints the line the Python driver printed for the TypeError.
// * gevent sockets are a socketpair() of non-blocking fds waited on with
//   fern::wait_read; recv(100) is ::recv of up to 100 bytes, printed like
//   Python's repr of bytes (b'...').
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "fern/core/task.h"
#include "fern/io/wait.h"
#include "fern/sync/group.h"

namespace {

template <class P, class = void>
struct StartWithoutArgument : std::false_type {};
template <class P>
struct StartWithoutArgument<P, std::void_t<decltype(std::declval<P&>().start())>> : std::true_type {};

class SocketPool {
 public:
  explicit SocketPool(long size) : pool(size) {}
  virtual ~SocketPool() = default;

  virtual void listen(int sock) = 0;

  void add_handler(int sock) {
    if (pool.full()) {
      throw std::runtime_error("At maximum pool size");
    } else {
      pool.spawn([this, sock] { listen(sock); });
    }
  }

  void shutdown() { pool.kill(); }

  fern::Pool pool;
};

class SocketPool2 : public SocketPool {
 public:
  SocketPool2() : SocketPool(2) {}

  void listen(int sock) override {
    while (true) {
      char buf[100];
      fern::wait_read(sock);
      ssize_t n = ::recv(sock, buf, sizeof buf, 0);
      if (n < 0) n = 0;
      std::printf("got b'%s'\n", std::string(buf, static_cast<std::size_t>(n)).c_str());
      if (n == 0) return;
    }
  }
};

}  // namespace

int main() {
  if constexpr (!StartWithoutArgument<fern::Pool>::value) {
    std::puts("SocketPool() -> TypeError: Pool.start() missing 1 required positional argument: 'greenlet'");
  }

  SocketPool2 sp;
  int pairs[3][2];
  for (auto& pair : pairs) {
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 2;
    for (int fd : pair) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  sp.add_handler(pairs[0][0]);
  sp.add_handler(pairs[1][0]);
  try {
    sp.add_handler(pairs[2][0]);
  } catch (const std::exception& e) {
    std::printf("third add_handler -> %s\n", e.what());
  }
  (void)!::send(pairs[0][1], "hello", 5, 0);
  (void)!::send(pairs[1][1], "world", 5, 0);
  fern::sleep(0.1);
  std::printf("pool size before shutdown: %zu\n", sp.pool.size());
  sp.shutdown();
  std::printf("pool size after shutdown: %zu\n", sp.pool.size());
  for (auto& pair : pairs) {
    ::close(pair[0]);
    ::close(pair[1]);
  }
}
