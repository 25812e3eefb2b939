// Socket calls. Every blocking one is the same loop (io/socket.cpp's, with
// errno instead of exceptions): try the non-blocking syscall; on EAGAIN park
// until the fd is ready or the socket's SO_RCVTIMEO / SO_SNDTIMEO deadline,
// taken at the call's first wait, passes; retry.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/detail.h"

using fern::Deadline;
using fern::Nanos;
using fern::monotonic_now;
using namespace fern::hooks::detail;

namespace {

// libc's call, but for an fd the hooks made non-blocking behind its owner's
// back (a greenlet used it before): wait for readiness in poll(2), as the
// blocking call would have, with the socket's own timeout.
template <class Call>
ssize_t libc_io(int fd, bool write, Call& call, CallDeadline& until) {
  int caller_errno = errno;  // a success after a wait leaves errno as libc's would
  for (bool waited = false;; waited = true) {
    ssize_t r = call();
    if (r >= 0 && waited) errno = caller_errno;
    if (r >= 0 || !would_block(errno) || !hook_nonblock_only(fd)) return r;
    int n = wait_blocking(fd, write ? POLLOUT : POLLIN, until.get());
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

// `until` is the whole call's deadline (shared by the parts of a call the
// hook splits: a send's rest, a MSG_WAITALL receive's rest).
template <class Call>
[[gnu::always_inline]] inline ssize_t blocking_io(int fd, bool write, int flags, Call&& call, CallDeadline& until) {
  // MSG_DONTWAIT asks this one call not to block: the kernel's answer, from
  // any caller (never libc_io's wait, though the fd is non-blocking underneath).
  if (flags & MSG_DONTWAIT) return call();
  FdState* st = cooperative_hub(fern::hooks::kSocket) != nullptr ? parkable(fd) : nullptr;
  if (st == nullptr) return libc_io(fd, write, call, until);
  int caller_errno = errno;  // a call that succeeds after a park leaves errno as libc's would
  for (;;) {
    ssize_t r = call();
    if (r >= 0) {
      errno = caller_errno;
      return r;
    }
    if (!would_block(errno)) return r;
    if (int err = park_on_fd(fd, write, until.get())) {
      errno = err;
      return -1;
    }
  }
}

// One blocking call with its own deadline.
template <class Call>
[[gnu::always_inline]] inline ssize_t blocking_call(int fd, bool write, int flags, Call&& call) {
  CallDeadline until(fd, write);
  return blocking_io(fd, write, flags, call, until);
}

// MSG_WAITALL gathers on stream sockets only: a datagram or seqpacket
// receive returns one message whatever the flag.
bool is_stream(int fd) noexcept {
  int type = 0;
  socklen_t len = sizeof type;
  return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// MSG_WAITALL on a socket that is non-blocking underneath returns what is
// there: the blocking call it stands for waits for all n bytes (or the end,
// an error, the timeout: then with what came so far), so the hook gathers
// the rest under the call's one deadline. recv_at(offset) receives into the
// buffer from byte `offset` on; its 0 ends the gathering. MSG_PEEK returns
// what is there (a peek at an offset would read the queue's start again),
// as do MSG_OOB and MSG_ERRQUEUE (one urgent byte, one queued error).
// total() gives n, called only once the first call succeeded: the kernel
// has read the caller's msghdr and iovecs then (an unreadable one is its
// EFAULT, never a fault in the hook).
template <class Total, class RecvAt>
ssize_t receive_all(int fd, Total total, int flags, RecvAt recv_at) {
  CallDeadline until(fd, false);
  ssize_t r = blocking_io(fd, false, flags, [&] { return recv_at(0); }, until);
  constexpr int kOneShot = MSG_DONTWAIT | MSG_PEEK | MSG_OOB | MSG_ERRQUEUE;
  if (r <= 0 || (flags & (MSG_WAITALL | kOneShot)) != MSG_WAITALL) return r;
  size_t n = total();
  if (static_cast<size_t>(r) >= n || !hook_nonblock_only(fd) || !is_stream(fd)) return r;
  int caller_errno = errno;
  size_t got = static_cast<size_t>(r);
  while (got < n) {
    r = blocking_io(fd, false, flags, [&] { return recv_at(got); }, until);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  errno = caller_errno;
  return static_cast<ssize_t>(got);
}

// A blocking send on a stream socket returns once everything is sent (or a
// timeout or error ends it: then with the count sent so far). Non-blocking
// underneath, the kernel takes what fits: for a caller that expects to
// block, the hook sends the rest under the call's one deadline.
// send_at(offset, more) sends from byte `offset`, adding the flags `more`:
// MSG_NOSIGNAL for every part after the first, since the kernel raises
// SIGPIPE only for a call that sent nothing (the blocking call returns its
// count and the next one gets the signal). total() gives n, as for receive_all.
template <class Total, class SendAt>
ssize_t send_all(int fd, int flags, Total total, SendAt send_at) {
  CallDeadline until(fd, true);
  ssize_t r = blocking_io(fd, true, flags, [&] { return send_at(0, 0); }, until);
  if (r < 0 || (flags & MSG_DONTWAIT)) return r;
  size_t n = total();
  if (static_cast<size_t>(r) >= n || !hook_nonblock_only(fd)) return r;
  int caller_errno = errno;
  size_t sent = static_cast<size_t>(r);
  while (sent < n) {
    r = blocking_io(fd, true, flags, [&] { return send_at(sent, MSG_NOSIGNAL); }, until);
    if (r <= 0) break;
    sent += static_cast<size_t>(r);
  }
  errno = caller_errno;
  return static_cast<ssize_t>(sent);
}

// The bytes an iovec array holds; 0 for a count the kernel refuses (it then
// answers the call itself, EINVAL or EMSGSIZE). Saturates.
size_t iov_bytes(const iovec* iov, std::size_t count) {
  if (iov == nullptr || count > IOV_MAX) return 0;
  size_t n = 0;
  for (std::size_t i = 0; i < count; ++i) n = __builtin_add_overflow(n, iov[i].iov_len, &n) ? SIZE_MAX : n;
  return n;
}
// The part of iov[0..count) from byte `offset` on (allocates: partial sends only).
std::vector<iovec> iov_from(const iovec* iov, std::size_t count, size_t offset) {
  std::vector<iovec> rest;
  for (std::size_t i = 0; i < count; ++i) {
    if (offset >= iov[i].iov_len) {
      offset -= iov[i].iov_len;
      continue;
    }
    rest.push_back({static_cast<char*>(iov[i].iov_base) + offset, iov[i].iov_len - offset});
    offset = 0;
  }
  return rest;
}

// The rest of a partial sendmsg (or writev: `msg` holds only its iovecs),
// from byte `at` on, without the control data (sent with the first part,
// as the kernel does).
ssize_t sendmsg_from(int fd, const msghdr& msg, size_t at, int flags) {
  std::vector<iovec> rest = iov_from(msg.msg_iov, msg.msg_iovlen, at);
  msghdr more = msg;
  more.msg_iov = rest.data();
  more.msg_iovlen = rest.size();
  more.msg_control = nullptr;
  more.msg_controllen = 0;
  return FERN_REAL(sendmsg)(fd, &more, flags);
}

// A blocking connect's waits: for the attempt in progress to end (pause 0:
// writable), or `pause` long. 0: connect again; EAGAIN: the deadline passed;
// else an errno. A greenlet parks; elsewhere the thread waits, as libc's would.
int connect_wait(int fd, bool parks, Nanos pause, Deadline deadline) {
  if (pause == 0) {
    if (parks) return park_on_fd(fd, true, deadline);
    int n = wait_blocking(fd, POLLOUT, deadline);
    return n > 0 ? 0 : n == 0 ? EAGAIN : errno;
  }
  Nanos now = monotonic_now();
  if (deadline.expired(now)) return EAGAIN;
  Deadline until = earlier(deadline, Deadline::at(Deadline::saturating_add(now, pause)));
  if (parks) {
    fern::sleep_until(until);
  } else {
    Nanos ns = until.remaining(now);
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    while (FERN_REAL(nanosleep)(&ts, &ts) < 0 && errno == EINTR) {
    }
  }
  return 0;
}

// A full AF_UNIX backlog has no readiness to wait for (the kernel's blocking
// connect sleeps on the listener): the connect is tried again after a pause
// that doubles up to kMaxConnectPause.
constexpr Nanos kFirstConnectPause = 1'000'000;
constexpr Nanos kMaxConnectPause = 16'000'000;

// A blocking connect on a socket that is non-blocking underneath: connect
// again until the kernel answers, as its blocking connect does, waiting for
// writability between tries (EINPROGRESS, EALREADY) or pausing while an
// AF_UNIX listener's backlog is full (EAGAIN). Connecting again, not reading
// SO_ERROR, moves the socket on as the blocking call would: connected (a
// later connect is EISCONN) or failed and unconnected (a later connect tries
// anew). Past SO_SNDTIMEO: the first try's errno (EINPROGRESS, EALREADY or
// EAGAIN), as Linux's blocking connect gives.
int connect_until_done(int fd, const sockaddr* addr, socklen_t len, bool parks) {
  int caller_errno = errno;
  CallDeadline until(fd, true);
  int first_err = 0;
  Nanos pause = kFirstConnectPause;
  for (;;) {
    if (FERN_REAL(connect)(fd, addr, len) == 0) {
      errno = caller_errno;
      return 0;
    }
    int err = errno;
    bool in_progress = err == EINPROGRESS || err == EALREADY;
    bool backlog_full = err == EAGAIN && addr != nullptr && addr->sa_family == AF_UNIX;
    if (!in_progress && !backlog_full) return -1;
    if (first_err == 0) first_err = err;
    int waited = connect_wait(fd, parks, in_progress ? 0 : pause, until.get());
    if (backlog_full) pause = std::min(2 * pause, kMaxConnectPause);
    if (waited != 0) {
      errno = waited == EAGAIN ? first_err : waited;
      return -1;
    }
  }
}

int accept_common(int fd, sockaddr* addr, socklen_t* len, int flags) {
  auto call = [&]() -> ssize_t { return FERN_REAL(accept4)(fd, addr, len, flags); };
  int r = static_cast<int>(blocking_call(fd, false, 0, call));
  if (r >= 0) note_accepted_socket(fd, r, (flags & SOCK_NONBLOCK) != 0);
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
  if (st == nullptr && !hook_nonblock_only(fd)) return FERN_REAL(connect)(fd, addr, len);
  return connect_until_done(fd, addr, len, st != nullptr);
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept_common(fd, addr, len, 0); }

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) { return accept_common(fd, addr, len, flags); }

ssize_t read(int fd, void* buf, size_t n) {
  return blocking_call(fd, false, 0, [&] { return FERN_REAL(read)(fd, buf, n); });
}

ssize_t readv(int fd, const iovec* iov, int count) {
  return blocking_call(fd, false, 0, [&] { return FERN_REAL(readv)(fd, iov, count); });
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  char* p = static_cast<char*>(buf);
  return receive_all(fd, [n] { return n; }, flags, [&](size_t at) { return FERN_REAL(recv)(fd, p + at, n - at, flags); });
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* len) {
  char* p = static_cast<char*>(buf);
  return receive_all(fd, [n] { return n; }, flags,
                     [&](size_t at) { return FERN_REAL(recvfrom)(fd, p + at, n - at, flags, from, len); });
}

// MSG_WAITALL's rest goes into the rest of the iovecs, with the caller's
// control buffer; control data ends the gathering (the kernel's Unix stream
// receive stops after passed fds too). The control buffer's size is kept
// before the call (the kernel shrinks it): read as the kernel reads it, an
// unreadable msghdr goes to libc's call (its EFAULT).
ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  msghdr given{};
  if ((flags & MSG_WAITALL) && (msg == nullptr || !copy_in(given, msg))) return FERN_REAL(recvmsg)(fd, msg, flags);
  void* control = given.msg_control;
  size_t control_len = given.msg_controllen;
  auto total = [msg] { return iov_bytes(msg->msg_iov, msg->msg_iovlen); };
  return receive_all(fd, total, flags, [&](size_t at) -> ssize_t {
    if (at == 0) return FERN_REAL(recvmsg)(fd, msg, flags);
    if (msg->msg_controllen != 0) return 0;
    std::vector<iovec> rest = iov_from(msg->msg_iov, msg->msg_iovlen, at);
    msghdr more = *msg;
    more.msg_name = nullptr;
    more.msg_namelen = 0;
    more.msg_iov = rest.data();
    more.msg_iovlen = rest.size();
    more.msg_control = control;
    more.msg_controllen = control_len;
    ssize_t r = FERN_REAL(recvmsg)(fd, &more, flags);
    if (r > 0) {
      msg->msg_flags |= more.msg_flags;
      msg->msg_controllen = more.msg_controllen;
    }
    return r;
  });
}

// The rest of a partial write goes by send(2), for its MSG_NOSIGNAL (only a
// socket's write is ever finished in parts).
ssize_t write(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  return send_all(fd, 0, [n] { return n; }, [&](size_t at, int more) {
    return at == 0 ? FERN_REAL(write)(fd, p, n) : FERN_REAL(send)(fd, p + at, n - at, more);
  });
}

ssize_t writev(int fd, const iovec* iov, int count) {
  auto total = [iov, count] { return iov_bytes(iov, static_cast<std::size_t>(count)); };
  return send_all(fd, 0, total, [&](size_t at, int more) {
    if (at == 0) return FERN_REAL(writev)(fd, iov, count);
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = static_cast<std::size_t>(count);
    return sendmsg_from(fd, msg, at, more);
  });
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  const char* p = static_cast<const char*>(buf);
  return send_all(fd, flags, [n] { return n; },
                  [&](size_t at, int more) { return FERN_REAL(send)(fd, p + at, n - at, flags | more); });
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len) {
  const char* p = static_cast<const char*>(buf);
  return send_all(fd, flags, [n] { return n; },
                  [&](size_t at, int more) { return FERN_REAL(sendto)(fd, p + at, n - at, flags | more, to, len); });
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  auto total = [msg] { return iov_bytes(msg->msg_iov, msg->msg_iovlen); };
  return send_all(fd, flags, total, [&](size_t at, int more) {
    return at == 0 ? FERN_REAL(sendmsg)(fd, msg, flags) : sendmsg_from(fd, *msg, at, flags | more);
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
