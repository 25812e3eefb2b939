// Every blocking call is the same loop: try the syscall; on EAGAIN park on
// the hub until the fd is ready or the call's deadline passes; retry. The
// deadline is taken once per call, so partial progress (sendall) does not
// extend the socket's timeout.
#include "fern/io/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/task.h"
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

// A Unix socket's EAGAIN that no fd wait can see: a listener's full
// backlog (connect) or a full receive queue at the address sendto names.
// The kernel's blocking calls wait on the peer; poll(2) calls the caller's
// own socket writable all the while, so waiting for that would be a busy
// loop. The call is tried again on a back-off instead, 1 ms doubling to
// 50 ms, never past its deadline: back_off sleeps (switches to the hub) for
// `step` and doubles it; false, without a switch, once d has passed.
constexpr Nanos kFirstBackoff = 1'000'000;
bool back_off(Nanos& step, Deadline d) {
  Nanos now = monotonic_now();
  if (d.expired(now)) return false;
  sleep_until(Deadline::at(std::min(Deadline::saturating_add(now, step), d.nanos())));
  step = std::min<Nanos>(step * 2, 50'000'000);
  return true;
}

}  // namespace

Socket::Socket(int family, int type, int protocol) {
#ifdef SOCK_NONBLOCK
  stream_ = (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) == SOCK_STREAM;
  fd_ = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd_ < 0) throw_socket_error(errno, "socket");
#else
  stream_ = type == SOCK_STREAM;
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
  int type = 0;
  socklen_t len = sizeof type;
  s.stream_ = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
  return s;
}

std::pair<Socket, Socket> Socket::pair(int type) {
  int fds[2];
  if (::socketpair(AF_UNIX, type, 0, fds) < 0) throw_socket_error(errno, "socketpair");
  Socket a(fds[0]), b(fds[1]);
  a.stream_ = b.stream_ = type == SOCK_STREAM;
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    prepare_fd(fd);
  }
  return {std::move(a), std::move(b)};
}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      stream_(other.stream_),
      read_partial_(other.read_partial_),
      timeout_(other.timeout_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    stream_ = other.stream_;
    read_partial_ = other.read_partial_;
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

// EINTR (and also_retry, e.g. ECONNABORTED) retries; would-block waits for
// readiness (or, where poll(2) cannot see it, sleeps on the attempt's
// back-off); anything else throws with the operation's name. The clock is
// read only when the call has to wait, once for the whole operation.
template <class Call>
long Socket::retry(Call&& call, bool write, const char* op, Attempt& attempt, int also_retry) {
  for (;;) {
    long r = call();
    if (r >= 0) return r;
    int err = errno;
    if (err == EINTR || (also_retry != 0 && err == also_retry)) continue;
    if (!would_block(err)) throw_socket_error(err, op);
    if (!attempt.waited) {
      attempt.deadline = deadline();
      attempt.waited = true;
    }
    if (attempt.backoff == 0) wait(write, attempt.deadline, op);
    else if (!back_off(attempt.backoff, attempt.deadline)) throw SocketTimeout(op);
  }
}

int Socket::connect_ex(const Address& addr) {
  if (fd_ < 0) return EBADF;
  Deadline d = deadline();
  Nanos backoff = kFirstBackoff;
  for (;;) {
    if (::connect(fd_, addr.data(), addr.size()) == 0) return 0;
    int err = errno;
    if (err == EINTR) continue;
    // Timeout 0 is a non-blocking socket (Python's): the kernel's answer,
    // EINPROGRESS while the connection goes on, never a wait or ETIMEDOUT.
    if (timeout_ == 0) return err;
    if (would_block(err) && addr.family() == AF_UNIX) {
      // A full Unix backlog: try again when the listener may have made room.
      if (!back_off(backoff, d)) return ETIMEDOUT;
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
  Attempt attempt;
  Address peer;
  // A connection reset while still in the backlog is not the listener's error.
  int fd = static_cast<int>(retry(
      [&] {
        *peer.size_ptr() = Address::capacity();
#ifdef SOCK_NONBLOCK
        return ::accept4(fd_, peer.data(), peer.size_ptr(), SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        int r = ::accept(fd_, peer.data(), peer.size_ptr());
        if (r >= 0) fcntl(r, F_SETFD, FD_CLOEXEC);
        return r;
#endif
      },
      false, "accept", attempt, ECONNABORTED));
  Socket s(fd);
  prepare_fd(fd);
  s.stream_ = stream_;
  return Accepted{std::move(s), peer};
}

// libuv's rule for stream reads: after a read that did not fill its buffer,
// the peer has most likely sent nothing more yet, so the next read waits for
// readiness first instead of paying a recv that fails with EAGAIN (a system
// call per request-response round trip). Data that did arrive makes the
// wait end at once; the call's one deadline covers the wait and the reads.
std::size_t Socket::recv_into(void* buf, std::size_t n, int flags) {
  // Python's recv(0): nothing, at once, no system call (a stream socket
  // with no data would say EAGAIN and wait; a datagram would be consumed).
  if (n == 0) {
    if (fd_ < 0) throw SocketError(EBADF, "recv");
    return 0;
  }
  Attempt attempt;
  if (read_partial_ && flags == 0 && fd_ >= 0 && timeout_ != 0) {  // timeout 0: never waits
    read_partial_ = false;
    attempt.deadline = deadline();
    attempt.waited = true;
    // Not ready by the deadline: the recv below answers (data, or a timeout).
    detail::wait_owned_fd(fd_, false, attempt.deadline);
  }
  auto r = static_cast<std::size_t>(retry([&] { return ::recv(fd_, buf, n, flags); }, false, "recv", attempt));
  if (r > n) r = n;  // MSG_TRUNC: a longer datagram's length, not what buf holds
  read_partial_ = stream_ && flags == 0 && r > 0 && r < n;
  return r;
}

std::string Socket::recv(std::size_t max, int flags) {
  std::string data(max, '\0');
  data.resize(recv_into(data.data(), max, flags));
  return data;
}

std::size_t Socket::send(const void* buf, std::size_t n, int flags) {
  Attempt attempt;
  return static_cast<std::size_t>(
      retry([&] { return ::send(fd_, buf, n, flags | kNoSigPipe); }, true, "send", attempt));
}

// Partial writes go on until everything is sent; the timeout is for the
// whole call, not for each part.
void Socket::sendall(const void* buf, std::size_t n, int flags) {
  // Nothing to send still needs a socket (as send's system call does).
  if (fd_ < 0) throw SocketError(EBADF, "sendall");
  const char* p = static_cast<const char*>(buf);
  Attempt attempt;
  while (n > 0) {
    long r = retry([&] { return ::send(fd_, p, n, flags | kNoSigPipe); }, true, "sendall", attempt);
    p += r;
    n -= static_cast<std::size_t>(r);
  }
}

std::size_t Socket::sendto(const void* buf, std::size_t n, const Address& to, int flags) {
  auto call = [&] { return ::sendto(fd_, buf, n, flags | kNoSigPipe, to.data(), to.size()); };
  Attempt attempt;
  // A full queue at a Unix address is a would-block poll(2) does not report.
  if (to.family() == AF_UNIX) attempt.backoff = kFirstBackoff;
  return static_cast<std::size_t>(retry(call, true, "sendto", attempt));
}

Socket::Received Socket::recvfrom(std::size_t max, int flags) {
  Attempt attempt;
  Received out{std::string(max, '\0'), Address()};
  long r = retry(
      [&] {
        *out.from.size_ptr() = Address::capacity();
        return ::recvfrom(fd_, out.data.data(), max, flags, out.from.data(), out.from.size_ptr());
      },
      false, "recvfrom", attempt);
  out.data.resize(std::min(static_cast<std::size_t>(r), max));  // MSG_TRUNC may say more
  return out;
}

Socket::ReceivedInto Socket::recvfrom_into(void* buf, std::size_t n, int flags) {
  Attempt attempt;
  ReceivedInto out{0, Address(), false};
  msghdr msg{};
  iovec iov{buf, n};
  long r = retry(
      [&] {
        msg = msghdr{};
        msg.msg_name = out.from.data();
        msg.msg_namelen = Address::capacity();
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        return ::recvmsg(fd_, &msg, flags);
      },
      false, "recvfrom", attempt);
  *out.from.size_ptr() = msg.msg_namelen;
  out.size = std::min(static_cast<std::size_t>(r), n);
  out.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  return out;
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

Socket create_connection(const std::string& host, int port, std::optional<Duration> timeout) {
  if (port < 0 || port > 65535)
    throw std::invalid_argument("fern: port must be 0-65535, not " + std::to_string(port));
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
