// Every blocking call is the same loop: try the syscall; on EAGAIN park on
// the hub until the fd is ready or the call's deadline passes; retry. The
// deadline is taken once per call, so partial progress (sendall) does not
// extend the socket's timeout.
#include "fern/io/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "fern/io/resolver.h"

namespace fern {
namespace {

// MSG_NOSIGNAL where the kernel has it; elsewhere SO_NOSIGPIPE is set on
// every socket at creation (below), so a write to a reset peer is EPIPE.
#ifdef MSG_NOSIGNAL
constexpr int kNoSigPipe = MSG_NOSIGNAL;
#else
constexpr int kNoSigPipe = 0;
#endif

void prepare_fd(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
    throw SocketError(errno, "fcntl(O_NONBLOCK)");
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

}  // namespace

Socket::Socket(int family, int type, int protocol) {
#ifdef SOCK_NONBLOCK
  fd_ = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) throw_socket_error(errno, "socket");
#else
  fd_ = ::socket(family, type, protocol);
  if (fd_ < 0) throw_socket_error(errno, "socket");
  fcntl(fd_, F_SETFD, FD_CLOEXEC);
#endif
  try {
    prepare_fd(fd_);
  } catch (...) {
    close();
    throw;
  }
}

Socket Socket::adopt(int fd) {
  Socket s(fd);
  prepare_fd(fd);
  return s;
}

std::pair<Socket, Socket> Socket::pair(int type) {
  int fds[2];
  if (::socketpair(AF_UNIX, type, 0, fds) < 0) throw_socket_error(errno, "socketpair");
  Socket a(fds[0]), b(fds[1]);
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    prepare_fd(fd);
  }
  return {std::move(a), std::move(b)};
}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), timeout_(other.timeout_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    timeout_ = other.timeout_;
  }
  return *this;
}

std::optional<Duration> Socket::timeout() const noexcept {
  if (timeout_ == Deadline::kNever) return std::nullopt;
  return Duration(std::chrono::nanoseconds(timeout_));
}

Deadline Socket::deadline() const noexcept {
  // No clock read without a timeout: the common case waits on every call.
  if (timeout_ == Deadline::kNever) return Deadline::never();
  return Deadline::at(Deadline::saturating_add(monotonic_now(), timeout_));
}

void Socket::wait(bool write, Deadline d, const char* op) {
  if (fd_ < 0) throw SocketError(EBADF, op);
  bool ready = detail::wait_owned_fd(fd_, write, d);
  if (!ready) throw SocketTimeout(op);
}

int Socket::connect_ex(const Address& addr) {
  if (fd_ < 0) return EBADF;
  Deadline d = deadline();
  for (;;) {
    if (::connect(fd_, addr.data(), addr.size()) == 0) return 0;
    int err = errno;
    if (err == EINTR) continue;
    if (would_block(err) && addr.family() == AF_UNIX) {
      // A full Unix backlog: wait and try again.
      if (!wait_write(fd_, d)) return ETIMEDOUT;
      continue;
    }
    if (err != EINPROGRESS) return err;
    if (!wait_write(fd_, d)) return ETIMEDOUT;
    return get_option(SOL_SOCKET, SO_ERROR);
  }
}

void Socket::connect(const Address& addr) {
  if (int err = connect_ex(addr)) throw_socket_error(err, "connect");
}

void Socket::bind(const Address& addr) {
  if (::bind(fd_, addr.data(), addr.size()) < 0) throw_socket_error(errno, "bind");
}

void Socket::listen(int backlog) {
  if (::listen(fd_, backlog) < 0) throw_socket_error(errno, "listen");
}

Socket::Accepted Socket::accept() {
  Deadline d = deadline();
  Address peer;
  for (;;) {
    *peer.size_ptr() = Address::capacity();
#ifdef SOCK_NONBLOCK
    int fd = ::accept4(fd_, peer.data(), peer.size_ptr(), SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    int fd = ::accept(fd_, peer.data(), peer.size_ptr());
    if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    if (fd >= 0) {
      Socket s(fd);
      prepare_fd(fd);
      return Accepted{std::move(s), peer};
    }
    int err = errno;
    // A connection reset while still in the backlog is not the listener's error.
    if (err == EINTR || err == ECONNABORTED) continue;
    if (!would_block(err)) throw_socket_error(err, "accept");
    wait(false, d, "accept");
  }
}

std::size_t Socket::recv_into(void* buf, std::size_t n, int flags) {
  Deadline d = Deadline::never();
  bool waited = false;
  for (;;) {
    ssize_t r = ::recv(fd_, buf, n, flags);
    if (r >= 0) return static_cast<std::size_t>(r);
    int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_socket_error(err, "recv");
    // The clock is read only when the call has to wait.
    if (!waited) d = deadline(), waited = true;
    wait(false, d, "recv");
  }
}

std::string Socket::recv(std::size_t max, int flags) {
  std::string data(max, '\0');
  data.resize(recv_into(data.data(), max, flags));
  return data;
}

std::size_t Socket::send(const void* buf, std::size_t n, int flags) {
  Deadline d = Deadline::never();
  bool waited = false;
  for (;;) {
    ssize_t r = ::send(fd_, buf, n, flags | kNoSigPipe);
    if (r >= 0) return static_cast<std::size_t>(r);
    int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_socket_error(err, "send");
    if (!waited) d = deadline(), waited = true;
    wait(true, d, "send");
  }
}

void Socket::sendall(const void* buf, std::size_t n, int flags) {
  const char* p = static_cast<const char*>(buf);
  Deadline d = Deadline::never();
  bool waited = false;
  while (n > 0) {
    ssize_t r = ::send(fd_, p, n, flags | kNoSigPipe);
    if (r >= 0) {
      p += r;
      n -= static_cast<std::size_t>(r);
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_socket_error(err, "sendall");
    if (!waited) d = deadline(), waited = true;
    wait(true, d, "sendall");
  }
}

std::size_t Socket::sendto(const void* buf, std::size_t n, const Address& to, int flags) {
  Deadline d = deadline();
  for (;;) {
    ssize_t r = ::sendto(fd_, buf, n, flags | kNoSigPipe, to.data(), to.size());
    if (r >= 0) return static_cast<std::size_t>(r);
    int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_socket_error(err, "sendto");
    wait(true, d, "sendto");
  }
}

Socket::Received Socket::recvfrom(std::size_t max, int flags) {
  Deadline d = deadline();
  Received out{std::string(max, '\0'), Address()};
  for (;;) {
    *out.from.size_ptr() = Address::capacity();
    ssize_t r = ::recvfrom(fd_, out.data.data(), max, flags, out.from.data(), out.from.size_ptr());
    if (r >= 0) {
      out.data.resize(static_cast<std::size_t>(r));
      return out;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (!would_block(err)) throw_socket_error(err, "recvfrom");
    wait(false, d, "recvfrom");
  }
}

void Socket::shutdown(int how) {
  if (::shutdown(fd_, how) < 0) throw_socket_error(errno, "shutdown");
}

void Socket::close() noexcept {
  if (fd_ >= 0) fern::close(std::exchange(fd_, -1));
}

Address Socket::local_address() const {
  Address a;
  *a.size_ptr() = Address::capacity();
  if (::getsockname(fd_, a.data(), a.size_ptr()) < 0) throw_socket_error(errno, "getsockname");
  return a;
}

Address Socket::peer_address() const {
  Address a;
  *a.size_ptr() = Address::capacity();
  if (::getpeername(fd_, a.data(), a.size_ptr()) < 0) throw_socket_error(errno, "getpeername");
  return a;
}

void Socket::set_option(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) < 0) throw_socket_error(errno, "setsockopt");
}

int Socket::get_option(int level, int name) const {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) < 0) throw_socket_error(errno, "getsockopt");
  return value;
}

void Socket::set_nodelay(bool on) { set_option(IPPROTO_TCP, TCP_NODELAY, on); }

Socket create_connection(const std::string& host, std::uint16_t port, std::optional<Duration> timeout) {
  std::vector<AddrInfo> infos = getaddrinfo(host, std::to_string(port), AF_UNSPEC, SOCK_STREAM);
  std::exception_ptr last;
  for (const AddrInfo& info : infos) {
    // The socket of a failed attempt is closed by its destructor, whatever is thrown.
    Socket s(info.family, info.socktype, info.protocol);
    s.set_timeout(timeout);
    try {
      s.connect(info.address);
      return s;
    } catch (const SocketError&) {
      last = std::current_exception();
    }
  }
  if (last) std::rethrow_exception(last);
  throw ResolveError(EAI_NONAME, "fern: getaddrinfo(" + host + ") returned no addresses");
}

}  // namespace fern
