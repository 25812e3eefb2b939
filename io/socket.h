#pragma once
// A cooperative socket (gevent.socket.socket): owns its fd (RAII,
// move-only), non-blocking underneath; a call that would block parks only
// the calling greenlet on the hub until the fd is ready or the socket's
// timeout passes.
//
// Mapping from gevent:
//   socket(family, type)            Socket(family, type)
//   s.settimeout(t) / None          s.set_timeout(t) / s.set_timeout(std::nullopt)
//   connect / connect_ex            connect(addr) / connect_ex(addr) -> errno
//   bind, listen, accept            same; accept() -> Accepted{socket, address}
//   recv(n), recv_into(buf)         recv(n) -> std::string, recv_into(buf, n) -> bytes
//   send, sendall, sendto, recvfrom same
//   shutdown, close, fileno         same; close() wakes blocked greenlets (IO-3)
//   create_connection((h, p), t)    create_connection(host, port, t)
// Errors (IO-4, IO-7): SocketTimeout after the timeout, ConnectionRefusedError,
// ConnectionResetError, BrokenPipeError, FdClosedError (closed under the
// call, IO-3), else SocketError; all are SocketErrors and carry errno and
// the operation. EAGAIN never escapes: it means wait. SIGPIPE is never raised.
// A second greenlet blocking in the same direction gets ConcurrentObjectUseError
// (IO-2). One thread: the hub's that the calling greenlet runs in.
// Unlike gevent, a stream recv that follows a read which did not fill its
// buffer waits for readiness before reading (libuv's rule): the EAGAIN recv
// of each request-response round trip is not paid. What a caller sees is the
// same (data already there ends the wait at once).
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "fern/core/deadline.h"
#include "fern/io/address.h"
#include "fern/io/socket_error.h"
#include "fern/io/wait.h"

namespace fern {

class Socket {
 public:
  struct Accepted;
  struct Received;

  Socket() noexcept = default;  // no fd
  // A new non-blocking, close-on-exec socket; SocketError on failure.
  Socket(int family, int type, int protocol = 0);
  // Takes ownership of fd and makes it non-blocking.
  static Socket adopt(int fd);
  // A connected pair (socketpair(2), AF_UNIX stream by default).
  static std::pair<Socket, Socket> pair(int type = SOCK_STREAM);

  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { close(); }

  int fd() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives up ownership: the caller closes the fd, with fern::close (the
  // hub may still watch it).
  int release() noexcept { return std::exchange(fd_, -1); }

  // gevent's settimeout: every later blocking call raises SocketTimeout
  // after `t` (0: never block); nullopt: block without limit (the default).
  void set_timeout(std::optional<Duration> t) noexcept {
    timeout_ = t ? t->nanos() : Deadline::kNever;
  }
  std::optional<Duration> timeout() const noexcept;

  // Blocks (switches to the hub) until connected. Throws the typed error
  // (ConnectionRefusedError, SocketTimeout, ...).
  void connect(const Address& addr);
  // As connect, but returns errno instead of throwing (0 on success;
  // ETIMEDOUT on timeout). With timeout 0 neither waits: connect_ex gives
  // EINPROGRESS (connect throws SocketError with it) while the connection
  // goes on, as Python's non-blocking socket; wait_write, then SO_ERROR.
  // A Unix listener's full backlog is tried again on a back-off (as
  // sendto's), not waited for on the fd: poll(2) cannot report its room.
  int connect_ex(const Address& addr);
  void bind(const Address& addr);
  void listen(int backlog = SOMAXCONN);
  // Blocks until a connection arrives; the new socket inherits no timeout.
  Accepted accept();

  // Blocks until some data arrives; returns 0 at end of stream. n == 0
  // returns 0 at once without reading (Python's recv(0)).
  std::size_t recv_into(void* buf, std::size_t n, int flags = 0);
  // Up to max bytes; empty at end of stream.
  std::string recv(std::size_t max, int flags = 0);
  // Blocks until some bytes are written; returns how many.
  std::size_t send(const void* buf, std::size_t n, int flags = 0);
  std::size_t send(std::string_view data, int flags = 0) { return send(data.data(), data.size(), flags); }
  // Writes everything, across partial writes, within one timeout for the
  // whole call. On an error or timeout, the bytes already sent are lost to
  // the caller (as in gevent); sendall of nothing returns at once (on a
  // closed socket: SocketError EBADF, as every call).
  void sendall(const void* buf, std::size_t n, int flags = 0);
  void sendall(std::string_view data, int flags = 0) { sendall(data.data(), data.size(), flags); }
  // Blocks until the datagram is sent. To a Unix address whose receive
  // queue is full (which poll(2) cannot report) it tries again on a
  // back-off, 1 ms doubling to 50 ms, until the timeout.
  std::size_t sendto(const void* buf, std::size_t n, const Address& to, int flags = 0);
  std::size_t sendto(std::string_view data, const Address& to) { return sendto(data.data(), data.size(), to); }
  Received recvfrom(std::size_t max, int flags = 0);
  // Python's recvfrom_into: one datagram into buf (at most n bytes) and its
  // sender; `truncated` when it was longer (the rest is lost). Never stores
  // or reports more than n bytes, MSG_TRUNC or not (recv, recv_into and
  // recvfrom neither: MSG_TRUNC's longer length would count bytes not there).
  struct ReceivedInto {
    std::size_t size;
    Address from;
    bool truncated;
  };
  ReceivedInto recvfrom_into(void* buf, std::size_t n, int flags = 0);

  // SHUT_RD, SHUT_WR or SHUT_RDWR; never blocks.
  void shutdown(int how);
  // Closes the fd (no-op without one); greenlets blocked on it wake with
  // FdClosedError (EBADF, IO-3). Never throws.
  void close() noexcept;

  Address local_address() const;
  Address peer_address() const;
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;
  void set_reuse_addr(bool on = true) { set_option(SOL_SOCKET, SO_REUSEADDR, on); }
  void set_nodelay(bool on = true);

 private:
  explicit Socket(int fd) noexcept : fd_(fd) {}
  Deadline deadline() const noexcept;  // now + the timeout, saturating
  void wait(bool write, Deadline d, const char* op);
  // One blocking operation: its deadline, taken at its first wait.
  struct Attempt {
    Deadline deadline;
    bool waited = false;
    Nanos backoff = 0;  // nonzero: a would-block poll(2) cannot see, retried after this long (socket.cpp)
  };
  // Runs call() (a non-blocking syscall) until it succeeds; see socket.cpp.
  template <class Call>
  long retry(Call&& call, bool write, const char* op, Attempt& attempt, int also_retry = 0);

  int fd_ = -1;
  bool stream_ = false;        // SOCK_STREAM: recv_into may wait first (below)
  bool read_partial_ = false;  // the last recv_into did not fill its buffer
  Nanos timeout_ = Deadline::kNever;
};

struct Socket::Accepted {
  Socket socket;
  Address address;
};
struct Socket::Received {
  std::string data;
  Address from;
};

// Resolves host (a name or a literal) and tries each address in order until
// one connects (IO-7); `timeout` applies to each attempt and stays set on
// the returned socket. Throws the last attempt's error, or ResolveError.
// Blocks: switches to the hub (resolution runs in the thread pool).
// A port outside 0..65535 is std::invalid_argument.
Socket create_connection(const std::string& host, int port,
                         std::optional<Duration> timeout = std::nullopt);

}  // namespace fern
