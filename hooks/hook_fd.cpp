// Bookkeeping calls, interposed whether patched or not: the application's
// view of O_NONBLOCK, socket timeouts, and waking greenlets parked on an fd
// that is closed.
#include <cstdarg>
#include <cstdint>
#include <cstring>

#include "fern/hooks/detail.h"
#include "fern/io/wait.h"

using namespace fern;
using namespace fern::hooks::detail;

namespace {

// Greenlets of this thread's hub parked on fd wake with EBADF (fern::close's
// rule, allocating only when some wait); the hub forgets the fd before the
// number can be reused.
void cancel_waiters(int fd) noexcept { fern::detail::cancel_waiters(fd); }

// close_range / closefrom: close's bookkeeping for every fd of [first,
// last] the hooks or this thread's hub know (the table's existing pages).
void forget_range(unsigned first, unsigned last) noexcept {
  for (unsigned fd = first; fd <= last && fd < static_cast<unsigned>(kMaxTrackedFds); ++fd) {
    if (fd_state_if_exists(static_cast<int>(fd)) == nullptr) {
      fd |= kFdPageSize - 1;  // a page never made: no fd of it was seen
      continue;
    }
    cancel_waiters(static_cast<int>(fd));
    forget_fd(static_cast<int>(fd));
  }
}

// dup2 and dup3 close the file `to` named: its waiters wake with EBADF, and
// the hub drops its registration of `to` before the switch, while `to`
// still names that file. epoll keys a registration by file and number:
// dropped after, it would stay on the old file (still open through another
// fd) and report it on every wait, a busy loop. Done only when the call
// will replace `to` (fd open, not `to` itself, dup3's flags valid).
bool will_replace(int fd, int to) noexcept { return fd != to && FERN_REAL(fcntl)(fd, F_GETFD) >= 0; }

// F_SETFL / FIONBIO: the application's wish is recorded; while the hooks
// need the fd non-blocking underneath, O_NONBLOCK stays set there.
bool keep_hook_nonblock(int fd, bool app_nonblock) noexcept {
  FdState* st = fd_state_if_exists(fd);
  if (st == nullptr) return false;
  std::uint32_t f = st->flags.load(std::memory_order_relaxed);
  if (!(f & kKnown)) return false;
  set_file_flags(fd, app_nonblock ? kAppNonblock : 0u, app_nonblock ? 0u : kAppNonblock);
  return (f & kHookNonblock) != 0;
}

// The timeout the kernel took (setsockopt succeeded), as FdState keeps it:
// a negative one is a call that never waits (Linux stores it as 0 jiffies;
// getsockopt shows 0), one past INT64_MAX ns never ends (none).
std::int64_t timeout_ns(std::int64_t sec, std::int64_t usec) noexcept {
  if (sec < 0) return kNoWait;
  if (sec >= INT64_MAX / 1'000'000'000 - 1) return 0;
  return sec * 1'000'000'000 + usec * 1000;
}

// SO_RCVTIMEO / SO_SNDTIMEO in both of the kernel's layouts: the _OLD names
// take a struct of two longs (timeval on 64-bit), the _NEW ones (what
// SO_RCVTIMEO means with 64-bit time_t on a 32-bit target, and usable
// anywhere) two int64s. Returns false for any other option or a short value.
bool socket_timeout_option(int name, const void* value, socklen_t len, bool& write, std::int64_t& ns) noexcept {
  struct Longs {
    long sec, usec;
  };
  struct Int64s {
    std::int64_t sec, usec;
  };
#ifdef SO_RCVTIMEO_NEW
  if (name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW) {
    if (len < static_cast<socklen_t>(sizeof(Int64s))) return false;
    Int64s tv;
    std::memcpy(&tv, value, sizeof tv);
    write = name == SO_SNDTIMEO_NEW;
    ns = timeout_ns(tv.sec, tv.usec);
    return true;
  }
  constexpr int kRecvOld = SO_RCVTIMEO_OLD, kSendOld = SO_SNDTIMEO_OLD;
#else
  constexpr int kRecvOld = SO_RCVTIMEO, kSendOld = SO_SNDTIMEO;
#endif
  if ((name != kRecvOld && name != kSendOld) || len < static_cast<socklen_t>(sizeof(Longs))) return false;
  Longs tv;
  std::memcpy(&tv, value, sizeof tv);
  write = name == kSendOld;
  ns = timeout_ns(tv.sec, tv.usec);
  return true;
}

}  // namespace

extern "C" {

int close(int fd) {
  cancel_waiters(fd);
  forget_fd(fd);
  return FERN_REAL(close)(fd);
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);  // glibc's own reading: every fcntl argument fits a pointer
  va_end(ap);
  switch (cmd) {
    case F_GETFL: {
      int fl = FERN_REAL(fcntl)(fd, cmd);
      if (fl >= 0 && hook_nonblock_only(fd)) fl &= ~O_NONBLOCK;
      return fl;
    }
    case F_SETFL: {
      int fl = static_cast<int>(reinterpret_cast<intptr_t>(arg));
      if (keep_hook_nonblock(fd, (fl & O_NONBLOCK) != 0)) fl |= O_NONBLOCK;
      return FERN_REAL(fcntl)(fd, cmd, fl);
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      int r = FERN_REAL(fcntl)(fd, cmd, arg);
      if (r >= 0) copy_fd(fd, r);
      return r;
    }
    default:
      return FERN_REAL(fcntl)(fd, cmd, arg);
  }
}

int ioctl(int fd, unsigned long request, ...) noexcept {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  int on = 0;
  // Read as the kernel reads it: an unreadable flag is its EFAULT, not a crash here.
  if (request == FIONBIO && arg != nullptr && copy_in(on, static_cast<const int*>(arg))) {
    if (keep_hook_nonblock(fd, on != 0) && !on) {
      // Still valid? ioctl answers EBADF/ENOTTY as it would have.
      int one = 1;
      return FERN_REAL(ioctl)(fd, FIONBIO, &one);
    }
  }
  return FERN_REAL(ioctl)(fd, request, arg);
}

int dup(int fd) noexcept {
  int r = FERN_REAL(dup)(fd);
  if (r >= 0) copy_fd(fd, r);
  return r;
}

int dup2(int fd, int to) noexcept {
  if (will_replace(fd, to)) cancel_waiters(to);
  int r = FERN_REAL(dup2)(fd, to);
  if (r >= 0 && fd != to) copy_fd(fd, to);
  return r;
}

int dup3(int fd, int to, int flags) noexcept {
  if ((flags & ~O_CLOEXEC) == 0 && will_replace(fd, to)) cancel_waiters(to);
  int r = FERN_REAL(dup3)(fd, to, flags);
  if (r >= 0) copy_fd(fd, to);
  return r;
}

#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
// As close for each fd closed: a number reused later (by pipe, open, a
// received fd) is classified anew, and greenlets parked on one wake with
// EBADF. CLOSE_RANGE_CLOEXEC closes nothing; bad flags or range are EINVAL.
int close_range(unsigned first, unsigned last, int flags) noexcept {
  constexpr int kKnownFlags = CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC;
  if (first <= last && (flags & ~kKnownFlags) == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) forget_range(first, last);
  return FERN_REAL(close_range)(first, last, flags);
}

void closefrom(int low) noexcept {
  forget_range(low < 0 ? 0u : static_cast<unsigned>(low), ~0u);  // glibc closes from 0 for a negative one
  FERN_REAL(closefrom)(low);
}
#endif

int setsockopt(int fd, int level, int name, const void* value, socklen_t len) noexcept {
  int r = FERN_REAL(setsockopt)(fd, level, name, value, len);
  // Accepted, so `value` held a whole timeout (the kernel refuses less).
  bool write = false;
  std::int64_t ns = 0;
  if (r == 0 && level == SOL_SOCKET && socket_timeout_option(name, value, len, write, ns) && classified(fd) != nullptr)
    set_file_timeout(fd, write, ns);
  return r;
}

}  // extern "C"
