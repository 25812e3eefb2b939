// poll and select: readiness is always read by libc's poll(2) with a zero
// timeout; the hub only does the waiting (one watcher per fd and direction,
// one shared Waiter), so the answer is exactly the kernel's.
#include <memory>
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

// An fd another greenlet already waits on in the same direction cannot get
// a watcher (IO-2); its readiness is then re-read every so often instead.
constexpr Nanos kBusyRecheck = 10'000'000;

// Cooperative poll(2) until `deadline`: the same result and errno as libc's.
int park_poll(Hub& hub, pollfd* fds, nfds_t n, Deadline deadline) {
  int caller_errno = errno;  // parking may leave the hub's errno behind
  for (;;) {
    int ready = FERN_REAL(poll)(fds, n, 0);
    if (ready > 0) errno = caller_errno;
    if (ready != 0 || deadline.expired(monotonic_now())) return ready;
    Waiter waiter;
    std::unique_ptr<PollWatch[]> watches(new PollWatch[2 * n]);
    Deadline until = deadline;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].fd < 0) continue;
      // POLLERR and POLLHUP come whatever is asked: a read watch sees them.
      unsigned dirs = (fds[i].events & kWriteEvents) ? kWritable : 0u;
      if ((fds[i].events & kReadEvents) || dirs == 0) dirs |= kReadable;
      for (unsigned dir : {kReadable, kWritable}) {
        if (!(dirs & dir)) continue;
        PollWatch& w = watches[2 * i + (dir == kWritable)];
        w.waiter = &waiter;
        Hub::Watch got;
        try {
          got = hub.watch_fd(fds[i].fd, dir, &w);
        } catch (const std::system_error&) {
          got = Hub::Watch::kAlwaysReady;  // closed since the poll above: it answers now
        }
        if (got == Hub::Watch::kAlwaysReady) waiter.wake();
        if (got == Hub::Watch::kBusy) until = earlier(until, Deadline::at(monotonic_now() + kBusyRecheck));
      }
    }
    bool woke = hub.park(waiter, until);
    watches.reset();
    if (!woke && until == deadline) {
      int last = FERN_REAL(poll)(fds, n, 0);
      if (last >= 0) errno = caller_errno;
      return last;
    }
  }
}

Deadline deadline_after_ms(int timeout_ms) {
  if (timeout_ms < 0) return Deadline::never();
  return Deadline::at(monotonic_now() + static_cast<Nanos>(timeout_ms) * 1'000'000);
}

Deadline deadline_after(const timespec* ts) {
  if (ts == nullptr) return Deadline::never();
  Nanos ns = static_cast<Nanos>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec;
  if (ts->tv_sec > 1'000'000'000) return Deadline::never();  // past any real wait
  return Deadline::at(Deadline::saturating_add(monotonic_now(), ns));
}

bool valid_timespec(const timespec* ts) {
  return ts == nullptr || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000);
}

// select on top of park_poll: the fd_sets become a pollfd list and back.
int park_select(Hub& hub, int nfds, fd_set* r, fd_set* w, fd_set* e, Deadline deadline) {
  std::vector<pollfd> fds;
  for (int fd = 0; fd < nfds; ++fd) {
    short events = 0;
    if (r && FD_ISSET(fd, r)) events |= POLLIN;
    if (w && FD_ISSET(fd, w)) events |= POLLOUT;
    if (e && FD_ISSET(fd, e)) events |= POLLPRI;
    if (events) fds.push_back(pollfd{fd, events, 0});
  }
  int caller_errno = errno;
  int ready = fds.empty() ? (fern::sleep_until(deadline), errno = caller_errno, 0)
                          : park_poll(hub, fds.data(), fds.size(), deadline);
  if (ready < 0) return -1;
  for (const pollfd& p : fds) {
    if (p.revents & POLLNVAL) {
      errno = EBADF;  // as select(2) for an fd that is not open
      return -1;
    }
  }
  if (r) FD_ZERO(r);
  if (w) FD_ZERO(w);
  if (e) FD_ZERO(e);
  int count = 0;
  for (const pollfd& p : fds) {
    if ((p.events & POLLIN) && (p.revents & (POLLIN | POLLHUP | POLLERR))) FD_SET(p.fd, r), ++count;
    if ((p.events & POLLOUT) && (p.revents & (POLLOUT | POLLERR))) FD_SET(p.fd, w), ++count;
    if ((p.events & POLLPRI) && (p.revents & POLLPRI)) FD_SET(p.fd, e), ++count;
  }
  return count;
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

// With a signal mask the swap of masks cannot be made atomic with a park:
// libc's call (it blocks the thread).
int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* sigmask) {
  bool zero = timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
  Hub* hub = !zero && sigmask == nullptr ? cooperative_hub(fern::hooks::kSelect) : nullptr;
  if (hub == nullptr) return FERN_REAL(ppoll)(fds, n, timeout, sigmask);
  if (!valid_timespec(timeout)) {
    errno = EINVAL;
    return -1;
  }
  return park_poll(*hub, fds, n, deadline_after(timeout));
}

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  bool zero = timeout && timeout->tv_sec == 0 && timeout->tv_usec == 0;
  Hub* hub = zero ? nullptr : cooperative_hub(fern::hooks::kSelect);
  if (hub == nullptr) return FERN_REAL(select)(nfds, r, w, e, timeout);
  if (nfds < 0 || nfds > FD_SETSIZE || (timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0 ||
                                                    timeout->tv_usec >= 1'000'000))) {
    errno = EINVAL;
    return -1;
  }
  timespec ts{};
  if (timeout) ts = {timeout->tv_sec, static_cast<long>(timeout->tv_usec) * 1000};
  Deadline deadline = deadline_after(timeout ? &ts : nullptr);
  int r_count = park_select(*hub, nfds, r, w, e, deadline);
  if (timeout) {
    // Linux writes back the time not slept.
    Nanos left = deadline.remaining(monotonic_now());
    timeout->tv_sec = static_cast<time_t>(left / 1'000'000'000);
    timeout->tv_usec = static_cast<suseconds_t>((left % 1'000'000'000) / 1000);
  }
  return r_count;
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout, const sigset_t* sigmask) {
  bool zero = timeout && timeout->tv_sec == 0 && timeout->tv_nsec == 0;
  Hub* hub = !zero && sigmask == nullptr ? cooperative_hub(fern::hooks::kSelect) : nullptr;
  if (hub == nullptr) return FERN_REAL(pselect)(nfds, r, w, e, timeout, sigmask);
  if (nfds < 0 || nfds > FD_SETSIZE || !valid_timespec(timeout)) {
    errno = EINVAL;
    return -1;
  }
  return park_select(*hub, nfds, r, w, e, deadline_after(timeout));
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout_ms, size_t fdslen) {
  if (fdslen / sizeof *fds < n) __chk_fail();
  return poll(fds, n, timeout_ms);
}

}  // extern "C"
