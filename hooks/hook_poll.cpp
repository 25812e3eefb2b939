// poll and select: readiness is always read by libc's poll(2) with a zero
// timeout; the hub only does the waiting (one watcher per fd and direction,
// one shared Waiter), so the answer is exactly the kernel's.
//
// ppoll and pselect with a signal mask: the thread's mask cannot change
// while other greenlets run, so the mask is applied by the kernel's own
// zero-timeout ppoll(2) at every check (it delivers a pending signal the mask
// unblocks: the handler runs, the call fails with EINTR, as libc's would),
// and the park also watches a signalfd of the signals the mask unblocks and
// the thread blocks, so that one becoming pending ends the park. A signal
// the thread does not block runs its handler when it comes, as for any
// greenlet, and does not end the park (gevent's rule for its own waits).
#include <signal.h>
#include <sys/signalfd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "fern/hooks/detail.h"
#include "fern/core/task.h"
#include "fern/io/wait.h"

using namespace fern;
using namespace fern::hooks::detail;

namespace {

struct PollWatch : Hub::IoWatcher {
  Waiter* waiter = nullptr;
  PollWatch() {
    // Readiness or a close: either way the final poll(2) tells which.
    fn = [](Hub::IoWatcher* w, unsigned) { static_cast<PollWatch*>(w)->waiter->wake(); };
  }
};

constexpr short kReadEvents = POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND;
constexpr short kWriteEvents = POLLOUT | POLLWRNORM | POLLWRBAND;

// What cannot be watched (pending signals without a signalfd) is re-read
// every so often instead. An fd others wait on is watched all the same: the
// hub takes any number of plain watchers per fd.
constexpr Nanos kRecheck = 10'000'000;

// libc's answer now: poll(2), or ppoll(2) with the caller's signal mask.
int poll_now(pollfd* fds, nfds_t n, const sigset_t* sigmask) {
  static constexpr timespec kZero{0, 0};
  return sigmask ? FERN_REAL(ppoll)(fds, n, &kZero, sigmask) : FERN_REAL(poll)(fds, n, 0);
}

// A signalfd (non-blocking) that is readable while a signal the caller's
// mask unblocks, and this thread blocks, is pending; -1 when there is none
// (`watchable` false when there are such signals but no fd for them).
class PendingSignals {
 public:
  explicit PendingSignals(const sigset_t* sigmask) noexcept {
    sigset_t blocked, set;
    if (sigmask == nullptr || pthread_sigmask(SIG_SETMASK, nullptr, &blocked) != 0) return;
    sigemptyset(&set);
    bool any = false;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP || sigismember(&blocked, sig) != 1 || sigismember(sigmask, sig) != 0)
        continue;
      sigaddset(&set, sig);
      any = true;
    }
    if (any) fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    watchable_ = !any || fd_ >= 0;
  }
  ~PendingSignals() {
    if (fd_ >= 0) FERN_REAL(close)(fd_);
  }
  PendingSignals(const PendingSignals&) = delete;
  PendingSignals& operator=(const PendingSignals&) = delete;
  int fd() const noexcept { return fd_; }
  bool watchable() const noexcept { return watchable_; }

 private:
  int fd_ = -1;
  bool watchable_ = true;
};

// Cooperative poll(2) until `deadline`: the same result and errno as libc's
// (ppoll's with `sigmask` when it is not null).
int park_poll(Hub& hub, pollfd* fds, nfds_t n, Deadline deadline, const sigset_t* sigmask = nullptr) {
  int caller_errno = errno;  // parking may leave the hub's errno behind
  // Made after the kernel accepted the mask (a bad pointer is its EFAULT);
  // declared before the watches: closed after they leave.
  std::optional<PendingSignals> signals;
  for (;;) {
    int ready = poll_now(fds, n, sigmask);
    if (ready >= 0) errno = caller_errno;
    if (ready != 0 || deadline.expired(monotonic_now())) return ready;
    if (!signals) signals.emplace(sigmask);
    Waiter waiter;
    std::unique_ptr<PollWatch[]> watches(new PollWatch[2 * n + 1]);
    Deadline until = deadline;
    bool signals_watched = signals->watchable();  // else they are re-read every so often
    if (signals->fd() >= 0) {
      PollWatch& w = watches[2 * n];
      w.waiter = &waiter;
      try {
        if (hub.watch_fd(signals->fd(), kReadable, &w) != Hub::Watch::kStarted) waiter.wake();
      } catch (const std::system_error&) {
        signals_watched = false;
      }
    }
    if (!signals_watched) until = earlier(until, Deadline::at(Deadline::saturating_add(monotonic_now(), kRecheck)));
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].fd < 0) continue;
      // POLLERR and POLLHUP come whatever is asked: a read watch sees them.
      unsigned dirs = (fds[i].events & kWriteEvents) ? kWritable : 0u;
      if ((fds[i].events & kReadEvents) || dirs == 0) dirs |= kReadable;
      for (unsigned dir : {kReadable, kWritable}) {
        if (!(dirs & dir)) continue;
        PollWatch& w = watches[2 * i + (dir == kWritable)];
        w.waiter = &waiter;
        // kAlwaysReady leaves a regular file (epoll refuses it) unwatched:
        // its poll answer is constant, the poll above gave it, waking for it
        // would spin.
        try {
          hub.watch_fd(fds[i].fd, dir, &w);
        } catch (const std::system_error&) {
          waiter.wake();  // closed since the poll above: it answers now
        }
      }
    }
    bool woke = hub.park(waiter, until);
    watches.reset();
    if (!woke && until == deadline) {
      int last = poll_now(fds, n, sigmask);
      if (last >= 0) errno = caller_errno;
      return last;
    }
  }
}

Deadline deadline_after_ms(int timeout_ms) {
  if (timeout_ms < 0) return Deadline::never();
  return Deadline::at(Deadline::saturating_add(monotonic_now(), static_cast<Nanos>(timeout_ms) * 1'000'000));
}

Deadline deadline_after(const timespec* ts) {
  if (ts == nullptr || ts->tv_sec > 1'000'000'000) return Deadline::never();  // past any real wait
  Nanos ns = static_cast<Nanos>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec;
  return Deadline::at(Deadline::saturating_add(monotonic_now(), ns));
}

// The caller's timeout copied into `to`; false when it cannot be read.
template <class T>
bool read_timeout(const T* from, T& to) {
  return from == nullptr || copy_in(to, from);
}
bool is_zero(const timespec& ts) { return ts.tv_sec == 0 && ts.tv_nsec == 0; }

bool valid_timespec(const timespec* ts) {
  return ts == nullptr || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000);
}

// fd_set bits past FD_SETSIZE (a caller's larger set), without FD_ISSET's
// fortify check.
using Mask = unsigned long;
static_assert(sizeof(Mask) == sizeof(__fd_mask), "fd_set is an array of longs");
constexpr int kMaskBits = CHAR_BIT * sizeof(Mask);
bool has_fd(const std::vector<Mask>& set, int fd) {
  return !set.empty() && (set[static_cast<std::size_t>(fd / kMaskBits)] >> (fd % kMaskBits)) & 1;
}
void add_fd(std::vector<Mask>& set, int fd) {
  set[static_cast<std::size_t>(fd / kMaskBits)] |= Mask{1} << (fd % kMaskBits);
}

// The kernel reads select's sets only up to the size of the fd table (no fd
// is open past it; /proc's FDSize), however large nfds is. A table is never
// smaller than one word of bits (NR_OPEN_DEFAULT).
int select_limit(int nfds) {
  if (nfds <= kMaskBits) return nfds;
  int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nfds;
  char text[4096];
  ssize_t n = FERN_REAL(read)(fd, text, sizeof text - 1);
  FERN_REAL(close)(fd);
  text[n > 0 ? n : 0] = '\0';
  const char* at = std::strstr(text, "\nFDSize:");
  long size = at ? std::strtol(at + 8, nullptr, 10) : 0;
  return size > 0 && size < nfds ? static_cast<int>(size) : nfds;
}

// select on top of park_poll: the fd_sets become a pollfd list and back.
int park_select(Hub& hub, int nfds, fd_set* r, fd_set* w, fd_set* e, Deadline deadline,
                const sigset_t* sigmask = nullptr) {
  nfds = select_limit(nfds);
  // The sets as the kernel copies them (an unreadable one is EFAULT).
  std::size_t words = static_cast<std::size_t>((nfds + kMaskBits - 1) / kMaskBits);
  std::vector<Mask> in[3];
  fd_set* sets[3] = {r, w, e};
  for (int i = 0; i < 3; ++i) {
    if (sets[i] == nullptr) continue;
    in[i].resize(words);
    if (!copy_in(in[i].data(), sets[i], words * sizeof(Mask))) {
      errno = EFAULT;
      return -1;
    }
  }
  std::vector<pollfd> fds;
  for (int fd = 0; fd < nfds; ++fd) {
    short events = 0;
    if (has_fd(in[0], fd)) events |= POLLIN;
    if (has_fd(in[1], fd)) events |= POLLOUT;
    if (has_fd(in[2], fd)) events |= POLLPRI;
    if (events) fds.push_back(pollfd{fd, events, 0});
  }
  int caller_errno = errno;
  int ready = fds.empty() && sigmask == nullptr ? (fern::sleep_until(deadline), errno = caller_errno, 0)
                                                : park_poll(hub, fds.data(), fds.size(), deadline, sigmask);
  if (ready < 0) return -1;
  for (const pollfd& p : fds) {
    if (p.revents & POLLNVAL) {
      errno = EBADF;  // as select(2) for an fd that is not open
      return -1;
    }
  }
  std::vector<Mask> out[3];
  for (int i = 0; i < 3; ++i)
    if (sets[i]) out[i].assign(words, 0);
  int count = 0;
  for (const pollfd& p : fds) {
    if ((p.events & POLLIN) && (p.revents & (POLLIN | POLLHUP | POLLERR))) add_fd(out[0], p.fd), ++count;
    if ((p.events & POLLOUT) && (p.revents & (POLLOUT | POLLERR))) add_fd(out[1], p.fd), ++count;
    if ((p.events & POLLPRI) && (p.revents & POLLPRI)) add_fd(out[2], p.fd), ++count;
  }
  // Written back whole, one set after the other, as the kernel does: a set
  // passed twice (r == w) ends as the later one's answer.
  for (int i = 0; i < 3; ++i)
    if (sets[i] && words) std::memcpy(sets[i], out[i].data(), words * sizeof(Mask));  // nfds 0: no set to write
  return count;
}

// select's timeval as Linux takes it (glibc's normalisation): microseconds
// past a second carried into the seconds (saturating); a negative part is
// EINVAL (false).
bool select_timeout(const timeval& tv, timespec& ts) {
  if (tv.tv_sec < 0 || tv.tv_usec < 0) return false;
  time_t carry = static_cast<time_t>(tv.tv_usec / 1'000'000);
  if (carry > std::numeric_limits<time_t>::max() - tv.tv_sec) {
    ts = {std::numeric_limits<time_t>::max(), 999'999'999};
  } else {
    ts = {tv.tv_sec + carry, static_cast<long>(tv.tv_usec % 1'000'000) * 1000};
  }
  return true;
}

// What select writes back: its end (the start plus the timeout, saturating
// as the kernel's timespec64_add_safe) less the time now, never negative.
timeval time_left(const timespec& ts, Nanos start) {
  constexpr Nanos kSecond = 1'000'000'000;
  constexpr time_t kMax = std::numeric_limits<time_t>::max();
  time_t end_s = static_cast<time_t>(start / kSecond);
  long end_ns = static_cast<long>(start % kSecond) + ts.tv_nsec;
  if (ts.tv_sec > kMax - end_s - 1) {
    end_s = kMax;
    end_ns = 0;
  } else {
    end_s += ts.tv_sec + end_ns / kSecond;
    end_ns %= kSecond;
  }
  Nanos now = monotonic_now();
  time_t left_s = end_s - static_cast<time_t>(now / kSecond);
  long left_ns = end_ns - static_cast<long>(now % kSecond);
  if (left_ns < 0) --left_s, left_ns += kSecond;
  if (left_s < 0) return timeval{0, 0};
  return timeval{left_s, static_cast<suseconds_t>(left_ns / 1000)};
}

}  // namespace

extern "C" {

int poll(pollfd* fds, nfds_t n, int timeout_ms) {
  Hub* hub = timeout_ms != 0 ? cooperative_hub(fern::hooks::kSelect) : nullptr;
  if (hub == nullptr) return FERN_REAL(poll)(fds, n, timeout_ms);
  if (n > static_cast<nfds_t>(INT32_MAX / 2)) {
    errno = EINVAL;
    return -1;
  }
  return park_poll(*hub, fds, n, deadline_after_ms(timeout_ms));
}

int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask) {
  Hub* hub = cooperative_hub(fern::hooks::kSelect);
  timespec ts{};
  // An unreadable timeout: the kernel's EFAULT, at once.
  if (hub == nullptr || !read_timeout(timeout, ts) || (timeout && is_zero(ts)))
    return FERN_REAL(ppoll)(fds, n, timeout, sigmask);
  if (!valid_timespec(timeout ? &ts : nullptr) || n > static_cast<nfds_t>(INT32_MAX / 2)) {
    errno = EINVAL;
    return -1;
  }
  return park_poll(*hub, fds, n, deadline_after(timeout ? &ts : nullptr), sigmask);
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  Hub* hub = cooperative_hub(fern::hooks::kSelect);
  timeval tv{};
  if (hub == nullptr || !read_timeout(timeout, tv) || (timeout && tv.tv_sec == 0 && tv.tv_usec == 0))
    return FERN_REAL(select)(nfds, r, w, e, timeout);
  timespec ts{};
  if (nfds < 0 || (timeout && !select_timeout(tv, ts))) {
    errno = EINVAL;
    return -1;
  }
  Nanos start = monotonic_now();
  int r_count = park_select(*hub, nfds, r, w, e, deadline_after(timeout ? &ts : nullptr));
  if (timeout) *timeout = time_left(ts, start);  // Linux writes back the time not slept
  return r_count;
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* sigmask) {
  Hub* hub = cooperative_hub(fern::hooks::kSelect);
  timespec ts{};
  if (hub == nullptr || !read_timeout(timeout, ts) || (timeout && is_zero(ts)))
    return FERN_REAL(pselect)(nfds, r, w, e, timeout, sigmask);
  if (nfds < 0 || !valid_timespec(timeout ? &ts : nullptr)) {
    errno = EINVAL;
    return -1;
  }
  return park_select(*hub, nfds, r, w, e, deadline_after(timeout ? &ts : nullptr), sigmask);
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout_ms, size_t fdslen) {
  if (fdslen / sizeof *fds < n) __chk_fail();
  return poll(fds, n, timeout_ms);
}

int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask, size_t fdslen) {
  if (fdslen / sizeof *fds < n) __chk_fail();
  return ppoll(fds, n, timeout, sigmask);
}

}  // extern "C"
