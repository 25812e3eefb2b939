#pragma once
// The hooks' internals: libc's real functions, the patch flags, the
// per-fd state and the "park or go to libc" decision.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "fern/core/hub.h"
#include "fern/hooks/hooks.h"

// glibc's _FORTIFY_SOURCE entry points (declared by its headers only with
// _FORTIFY_SOURCE on) and its failure report.
extern "C" {
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from, socklen_t* len);
int __poll_chk(pollfd* fds, nfds_t n, int timeout_ms, size_t fdslen);
int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask, size_t fdslen);
[[noreturn]] void __chk_fail() noexcept;
}

// close_range and closefrom (glibc 2.34 on) close fds too: interposed
// where libc has them.
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
#  define FERN_HOOKED_RANGE_CLOSE(X) \
    X(close_range, 0)                \
    X(closefrom, 0)
#else
#  define FERN_HOOKED_RANGE_CLOSE(X)
#endif

// X(name, group) for every interposed function; group 0 is bookkeeping.
#define FERN_HOOKED_FUNCTIONS(X) \
  X(socket, kSocket)             \
  X(socketpair, kSocket)         \
  X(connect, kSocket)            \
  X(accept, kSocket)             \
  X(accept4, kSocket)            \
  X(read, kSocket)               \
  X(readv, kSocket)              \
  X(recv, kSocket)               \
  X(recvfrom, kSocket)           \
  X(recvmsg, kSocket)            \
  X(__read_chk, kSocket)         \
  X(__recv_chk, kSocket)         \
  X(__recvfrom_chk, kSocket)     \
  X(write, kSocket)              \
  X(writev, kSocket)             \
  X(send, kSocket)               \
  X(sendto, kSocket)             \
  X(sendmsg, kSocket)            \
  X(poll, kSelect)               \
  X(ppoll, kSelect)              \
  X(select, kSelect)             \
  X(pselect, kSelect)            \
  X(__poll_chk, kSelect)         \
  X(__ppoll_chk, kSelect)        \
  X(sleep, kTime)                \
  X(usleep, kTime)               \
  X(nanosleep, kTime)            \
  X(clock_nanosleep, kTime)      \
  X(getaddrinfo, kDns)           \
  X(gethostbyname, kDns)         \
  X(gethostbyname_r, kDns)       \
  X(close, 0)                    \
  X(fcntl, 0)                    \
  X(ioctl, 0)                    \
  X(dup, 0)                      \
  X(dup2, 0)                     \
  X(dup3, 0)                     \
  X(setsockopt, 0)               \
  FERN_HOOKED_RANGE_CLOSE(X)

namespace fern::hooks::detail {

// dlsym(RTLD_NEXT, name): the definition after this library's (libc's).
// Aborts with a message when there is none (a libc without `name`).
void* find_next(const char* name) noexcept;

// One real function, looked up on first use: constant-initialised, so a
// call before main (or before this library's constructors) finds it too.
// The race of two first uses stores the same pointer twice.
template <class F>
class RealFn {
 public:
  constexpr explicit RealFn(const char* name) noexcept : name_(name) {}
  F get() noexcept {
    F f = fn_.load(std::memory_order_relaxed);
    if (__builtin_expect(f == nullptr, 0)) {
      f = reinterpret_cast<F>(find_next(name_));
      fn_.store(f, std::memory_order_relaxed);
    }
    return f;
  }

 private:
  const char* name_;
  std::atomic<F> fn_{nullptr};
};

// libc's declarations carry attributes (nonnull, access) that a function
// pointer type drops: nothing is lost, the calls pass the caller's arguments.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"
#define FERN_REAL_FN(name, group) inline RealFn<decltype(&::name)> real_##name{#name};
FERN_HOOKED_FUNCTIONS(FERN_REAL_FN)
#undef FERN_REAL_FN
#pragma GCC diagnostic pop
#define FERN_REAL(name) (::fern::hooks::detail::real_##name.get())

inline std::atomic<unsigned> g_patched{0};

// The hub to park on for a call of `group`, or nullptr: go to libc (not
// patched, no hub on this thread, or running in the hub itself).
inline Hub* cooperative_hub(unsigned group) noexcept {
  if (__builtin_expect((g_patched.load(std::memory_order_relaxed) & group) == 0, 0)) return nullptr;
  Hub* hub = Hub::current_if_exists();
  if (hub == nullptr || hub->in_hub()) return nullptr;
  return hub;
}

inline bool would_block(int err) noexcept { return err == EAGAIN || err == EWOULDBLOCK; }

// ---- Per-fd state ----
// What the hooks know of an fd: process-wide (fds are), indexed by fd,
// relaxed atomics (an fd used from two threads at once is the
// application's race, as with libc). Reset by close; copied by dup.
enum FdFlag : std::uint32_t {
  kKnown = 1,         // classified (socket or not)
  kIsSocket = 2,      // a socket: its blocking calls may park
  kAppNonblock = 4,   // the application's view: O_NONBLOCK set (it gets EAGAIN)
  kHookNonblock = 8,  // the hooks set O_NONBLOCK for a parked call
};
struct FdState {
  std::atomic<std::uint32_t> flags{0};
  // Nonzero when a dup gave this open file a second fd number: every fd
  // with the same id shares O_NONBLOCK and the socket's options.
  std::atomic<std::uint32_t> file_id{0};
  std::atomic<std::int64_t> recv_timeout_ns{0};  // SO_RCVTIMEO; 0: none, kNoWait
  std::atomic<std::int64_t> send_timeout_ns{0};  // SO_SNDTIMEO; 0: none, kNoWait
};
// A timeout that ends every wait at once (a negative SO_RCVTIMEO/SO_SNDTIMEO).
constexpr std::int64_t kNoWait = -1;
constexpr int kMaxTrackedFds = 1 << 20;  // higher fds always go to libc

constexpr int kFdPageBits = 12;
constexpr int kFdPageSize = 1 << kFdPageBits;
// Pages of kFdPageSize states, allocated on first use, never freed.
inline std::atomic<FdState*> g_fd_pages[kMaxTrackedFds / kFdPageSize];

// The fd's state, allocating its table page; nullptr out of range.
FdState* fd_state(int fd) noexcept;
// The fd's state if its table page exists; nullptr otherwise.
inline FdState* fd_state_if_exists(int fd) noexcept {
  if (static_cast<unsigned>(fd) >= static_cast<unsigned>(kMaxTrackedFds)) return nullptr;
  FdState* page = g_fd_pages[fd >> kFdPageBits].load(std::memory_order_acquire);
  return page ? &page[fd & (kFdPageSize - 1)] : nullptr;
}
FdState* classify(int fd) noexcept;
// Classifies fd once (fstat, F_GETFL, SO_*TIMEO): its state, or nullptr.
inline FdState* classified(int fd) noexcept {
  FdState* st = fd_state_if_exists(fd);
  if (__builtin_expect(st != nullptr && (st->flags.load(std::memory_order_relaxed) & kKnown), 1)) return st;
  return classify(fd);
}
// A socket the hooks saw created (socket, accept, socketpair).
void note_new_socket(int fd, bool app_nonblock) noexcept;
// accept: a TCP socket inherits its listener's SO_RCVTIMEO / SO_SNDTIMEO (the
// kernel clones the listener), an AF_UNIX one does not: when the listener
// has a timeout (or is unknown) the new socket's are read from the kernel.
void note_accepted_socket(int listener, int fd, bool app_nonblock) noexcept;
// close: the number may be reused for anything.
void forget_fd(int fd) noexcept;
// dup: `to` is the same open file as `from`.
void copy_fd(int from, int to) noexcept;
// The file status flag O_NONBLOCK and socket options belong to the open
// file, not the fd number: these change fd's state and that of every dup.
void set_file_flags(int fd, std::uint32_t set, std::uint32_t clear) noexcept;
void set_file_timeout(int fd, bool write, std::int64_t ns) noexcept;
// Sets O_NONBLOCK underneath (once) so a parked call can retry; false when
// fcntl fails (then the call goes to libc).
bool make_nonblocking(int fd, FdState& st) noexcept;
// The hooks made fd non-blocking but its owner expects blocking calls: a
// call from libc's side must wait for readiness itself.
bool hook_nonblock_only(int fd) noexcept;

// Copies n bytes of the caller's memory as the kernel's copy_from_user
// does: false (the call's EFAULT) when they cannot be read, without
// touching them (process_vm_readv on this process; where that is refused,
// through a pipe, or a plain copy past PIPE_BUF). errno is left alone.
bool copy_in(void* to, const void* from, std::size_t n) noexcept;
template <class T>
bool copy_in(T& to, const T* from) noexcept {
  return copy_in(&to, from, sizeof to);
}

// A blocking call's SO_RCVTIMEO / SO_SNDTIMEO deadline: one per call, as
// the kernel counts its timeout down over a whole call (a send that goes
// out in parts, a MSG_WAITALL receive, a wake-up that found nothing), taken
// from the fd's timeout at the call's first wait.
Deadline timeout_deadline(int fd, bool write) noexcept;  // now + the fd's timeout, or never
class CallDeadline {
 public:
  CallDeadline(int fd, bool write) noexcept : fd_(fd), write_(write) {}
  Deadline get() noexcept {
    if (!started_) {
      started_ = true;
      at_ = timeout_deadline(fd_, write_);
    }
    return at_;
  }

 private:
  int fd_;
  bool write_;
  bool started_ = false;
  Deadline at_ = Deadline::never();
};

// Blocks this thread in libc's poll until fd is ready (events) or
// `deadline`: 1 ready, 0 timeout, -1 error (errno).
int wait_blocking(int fd, short events, Deadline deadline) noexcept;
// Parks the greenlet until fd is ready for `write` or `deadline`: 0 ready,
// EAGAIN on timeout, EBADF when closed meanwhile, else the errno. Throws
// what the hub throws in (Timeout, GreenletExit) and ConcurrentObjectUseError.
int park_on_fd(int fd, bool write, Deadline deadline);

}  // namespace fern::hooks::detail
