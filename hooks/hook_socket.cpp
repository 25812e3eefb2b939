// Socket calls. Every blocking one is the same loop (io/socket.cpp's, with
// errno instead of exceptions): try the non-blocking syscall; on EAGAIN park
// until the fd is ready or the socket's SO_RCVTIMEO / SO_SNDTIMEO deadline,
// taken at the first wait, passes; retry.
#include <vector>

#include "fern/hooks/detail.h"

using namespace fern::hooks::detail;

namespace {

// libc's call, but for an fd the hooks made non-blocking behind its owner's
// back (a greenlet used it before): wait for readiness in poll(2), as the
// blocking call would have, with the socket's own timeout.
template <class Call>
ssize_t libc_io(int fd, bool write, Call& call) {
  for (;;) {
    ssize_t r = call();
    if (r >= 0 || !would_block(errno) || !hook_nonblock_only(fd)) return r;
    int n = wait_blocking(fd, write ? POLLOUT : POLLIN, write);
    if (n == 0) errno = EAGAIN;
    if (n <= 0) return -1;
  }
}

// The socket state for a call that may park, or nullptr (libc's call).
// Inlined into every hooked call: this is the whole fast path.
[[gnu::always_inline]] inline FdState* parkable(int fd) noexcept {
  FdState* st = classified(fd);
  if (st == nullptr) return nullptr;
  std::uint32_t f = st->flags.load(std::memory_order_relaxed);
  if ((f & (kIsSocket | kAppNonblock | kHookNonblock)) == (kIsSocket | kHookNonblock)) return st;  // the fast path
  if ((f & (kIsSocket | kAppNonblock)) != kIsSocket || !make_nonblocking(fd, *st)) return nullptr;
  return st;
}

template <class Call>
[[gnu::always_inline]] inline ssize_t blocking_io(int fd, bool write, int flags, Call&& call) {
  FdState* st = nullptr;
  // MSG_DONTWAIT asks this one call not to block: libc's answer.
  if (!(flags & MSG_DONTWAIT) && cooperative_hub(fern::hooks::kSocket) != nullptr) st = parkable(fd);
  if (st == nullptr) return libc_io(fd, write, call);
  std::int64_t timeout = (write ? st->send_timeout_ns : st->recv_timeout_ns).load(std::memory_order_relaxed);
  int caller_errno = errno;  // a call that succeeds after a park leaves errno as libc's would
  for (;;) {
    ssize_t r = call();
    if (r >= 0) {
      errno = caller_errno;
      return r;
    }
    if (!would_block(errno)) return r;
    // The deadline is one per call: park_on_fd measures from the first wait.
    if (int err = park_on_fd(fd, write, timeout)) {
      errno = err;
      return -1;
    }
  }
}

// MSG_WAITALL on a socket that is non-blocking underneath returns what is
// there: the blocking call it stands for waits for all n bytes (or the end,
// an error, a timeout), so the hook gathers them.
template <class Recv>
ssize_t receive(int fd, void* buf, size_t n, int flags, Recv recv_some) {
  if (!(flags & MSG_WAITALL) || (flags & MSG_DONTWAIT))
    return blocking_io(fd, false, flags, [&] { return recv_some(buf, n, flags); });
  int some = flags & ~MSG_WAITALL;
  size_t got = 0;
  while (got < n) {
    char* at = static_cast<char*>(buf) + got;
    ssize_t r = blocking_io(fd, false, some, [&] { return recv_some(at, n - got, some); });
    if (r < 0) return got > 0 ? static_cast<ssize_t>(got) : -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// A blocking send on a stream socket returns once everything is sent (or a
// timeout or error ends it: then with the count sent so far). Non-blocking
// underneath, the kernel takes what fits: for a caller that expects to
// block, the hook sends the rest. send_at(offset) sends from byte `offset`.
template <class SendAt>
ssize_t send_all(int fd, int flags, size_t n, SendAt send_at) {
  ssize_t r = blocking_io(fd, true, flags, [&] { return send_at(0); });
  if (r < 0 || static_cast<size_t>(r) >= n || (flags & MSG_DONTWAIT) || !hook_nonblock_only(fd)) return r;
  size_t sent = static_cast<size_t>(r);
  while (sent < n) {
    r = blocking_io(fd, true, flags, [&] { return send_at(sent); });
    if (r <= 0) break;
    sent += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(sent);
}

size_t iov_bytes(const iovec* iov, int count) {
  size_t n = 0;
  for (int i = 0; i < count; ++i) n += iov[i].iov_len;
  return n;
}

// The part of iov[0..count) from byte `offset` on (allocates: partial sends only).
std::vector<iovec> iov_from(const iovec* iov, int count, size_t offset) {
  std::vector<iovec> rest;
  for (int i = 0; i < count; ++i) {
    if (offset >= iov[i].iov_len) {
      offset -= iov[i].iov_len;
      continue;
    }
    rest.push_back({static_cast<char*>(iov[i].iov_base) + offset, iov[i].iov_len - offset});
    offset = 0;
  }
  return rest;
}

// connect's completion: SO_ERROR once writable.
int connect_result(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -1;
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

int accept_common(int fd, sockaddr* addr, socklen_t* len, int flags) {
  auto call = [&]() -> ssize_t { return FERN_REAL(accept4)(fd, addr, len, flags); };
  int r = static_cast<int>(blocking_io(fd, false, 0, call));
  if (r >= 0) note_new_socket(r, (flags & SOCK_NONBLOCK) != 0);
  return r;
}

}  // namespace

extern "C" {

int socket(int domain, int type, int protocol) noexcept {
  int fd = FERN_REAL(socket)(domain, type, protocol);
  if (fd >= 0) note_new_socket(fd, (type & SOCK_NONBLOCK) != 0);
  return fd;
}

int socketpair(int domain, int type, int protocol, int sv[2]) noexcept {
  int r = FERN_REAL(socketpair)(domain, type, protocol, sv);
  if (r == 0) {
    note_new_socket(sv[0], (type & SOCK_NONBLOCK) != 0);
    note_new_socket(sv[1], (type & SOCK_NONBLOCK) != 0);
  }
  return r;
}

int connect(int fd, const sockaddr* addr, socklen_t len) {
  FdState* st = cooperative_hub(fern::hooks::kSocket) != nullptr ? parkable(fd) : nullptr;
  int r = FERN_REAL(connect)(fd, addr, len);
  if (r == 0 || errno != EINPROGRESS) return r;
  if (st == nullptr) {
    if (!hook_nonblock_only(fd)) return r;
    // A blocking connect on an fd the hooks made non-blocking: wait here.
    int n = wait_blocking(fd, POLLOUT, true);
    if (n == 0) errno = EINPROGRESS;  // Linux's blocking connect past SO_SNDTIMEO
    return n <= 0 ? -1 : connect_result(fd);
  }
  int caller_errno = errno;
  if (int err = park_on_fd(fd, true, st->send_timeout_ns.load(std::memory_order_relaxed))) {
    errno = err == EAGAIN ? EINPROGRESS : err;
    return -1;
  }
  errno = caller_errno;
  return connect_result(fd);
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept_common(fd, addr, len, 0); }

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) { return accept_common(fd, addr, len, flags); }

ssize_t read(int fd, void* buf, size_t n) {
  return blocking_io(fd, false, 0, [&] { return FERN_REAL(read)(fd, buf, n); });
}

ssize_t readv(int fd, const iovec* iov, int count) {
  return blocking_io(fd, false, 0, [&] { return FERN_REAL(readv)(fd, iov, count); });
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return receive(fd, buf, n, flags, [fd](void* b, size_t len, int f) { return FERN_REAL(recv)(fd, b, len, f); });
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* len) {
  return receive(fd, buf, n, flags,
                 [&](void* b, size_t l, int f) { return FERN_REAL(recvfrom)(fd, b, l, f, from, len); });
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  return blocking_io(fd, false, flags, [&] { return FERN_REAL(recvmsg)(fd, msg, flags); });
}

ssize_t write(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  return send_all(fd, 0, n, [&](size_t at) { return FERN_REAL(write)(fd, p + at, n - at); });
}

ssize_t writev(int fd, const iovec* iov, int count) {
  return send_all(fd, 0, iov_bytes(iov, count), [&](size_t at) {
    if (at == 0) return FERN_REAL(writev)(fd, iov, count);
    std::vector<iovec> rest = iov_from(iov, count, at);
    return FERN_REAL(writev)(fd, rest.data(), static_cast<int>(rest.size()));
  });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  const char* p = static_cast<const char*>(buf);
  return send_all(fd, flags, n, [&](size_t at) { return FERN_REAL(send)(fd, p + at, n - at, flags); });
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len) {
  const char* p = static_cast<const char*>(buf);
  return send_all(fd, flags, n, [&](size_t at) { return FERN_REAL(sendto)(fd, p + at, n - at, flags, to, len); });
}

// The rest of a partial sendmsg goes without its control data (sent with
// the first part, as the kernel does).
ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  size_t n = msg ? iov_bytes(msg->msg_iov, static_cast<int>(msg->msg_iovlen)) : 0;
  return send_all(fd, flags, n, [&](size_t at) {
    if (at == 0) return FERN_REAL(sendmsg)(fd, msg, flags);
    std::vector<iovec> rest = iov_from(msg->msg_iov, static_cast<int>(msg->msg_iovlen), at);
    msghdr more = *msg;
    more.msg_iov = rest.data();
    more.msg_iovlen = rest.size();
    more.msg_control = nullptr;
    more.msg_controllen = 0;
    return FERN_REAL(sendmsg)(fd, &more, flags);
  });
}

// _FORTIFY_SOURCE's entry points (a library built with it calls these
// when the buffer's size is known): glibc's check, then the hooked call.
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* len) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, from, len);
}

}  // extern "C"
