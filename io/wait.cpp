// fd waiting on the hub's poller: one watcher per waiting greenlet.
#include "fern/io/wait.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "fern/core/hub.h"
#include "fern/core/task.h"

namespace fern {
namespace {

// One watcher per (fd, direction), waking a Waiter that may be shared
// (wait_readwrite, select). Its destructor leaves the hub's fd table and
// drops a queued cancel callback: every exit path is clean by itself.
struct FdWatch : Hub::IoWatcher {
  Waiter* waiter = nullptr;
  FdWatch() {
    fn = [](Hub::IoWatcher* w, unsigned) {
      auto* self = static_cast<FdWatch*>(w);
      if (w->error) self->waiter->wake_error(w->error);
      else self->waiter->wake();  // a second wake of the same round is ignored
    };
  }
};

const char* direction_name(unsigned direction) { return direction == kReadable ? "reader" : "writer"; }

// Starts `w` on fd for one direction: false when the fd can never block (a
// regular file). ConcurrentObjectUseError for a second waiter of an owning
// object (a Socket's sticky watcher, IO-2, HUB-11); plain waits share the fd.
bool watch(Hub& hub, int fd, unsigned direction, FdWatch& w, Waiter& waiter) {
  w.waiter = &waiter;
  switch (hub.watch_fd(fd, direction, &w)) {
    case Hub::Watch::kStarted:
      return true;
    case Hub::Watch::kBusy:
      throw ConcurrentObjectUseError("fern: fd " + std::to_string(fd) + " already has a " +
                                     direction_name(direction) + " waiting in another greenlet");
    case Hub::Watch::kAlwaysReady:
      break;
  }
  return false;
}

bool wait_fd(int fd, unsigned directions, Deadline deadline, bool sticky = false) {
  Hub& hub = Hub::current();
  Waiter waiter;
  FdWatch watchers[2];
  watchers[0].sticky = watchers[1].sticky = sticky;
  if ((directions & kReadable) && !watch(hub, fd, kReadable, watchers[0], waiter)) return true;
  if ((directions & kWritable) && !watch(hub, fd, kWritable, watchers[1], waiter)) return true;
  const char* what = directions == kReadable ? "fd read" : directions == kWritable ? "fd write" : "fd read/write";
  return hub.park(waiter, deadline, what, reinterpret_cast<const void*>(static_cast<std::intptr_t>(fd)));
}

}  // namespace

bool wait_read(int fd, Deadline deadline) { return wait_fd(fd, kReadable, deadline); }
bool wait_write(int fd, Deadline deadline) { return wait_fd(fd, kWritable, deadline); }
bool wait_readwrite(int fd, Deadline deadline) { return wait_fd(fd, kReadable | kWritable, deadline); }

bool detail::wait_owned_fd(int fd, bool write, Deadline deadline) {
  return wait_fd(fd, write ? kWritable : kReadable, deadline, true);
}

// The error is made only for a waiter: a close nobody waits on (a Socket's,
// most of the time) allocates nothing and formats no message, so it stays
// async-signal-safe as libc's (a handler, a fork child).
void detail::cancel_waiters(int fd) noexcept {
  Hub* hub = Hub::current_if_exists();
  if (hub == nullptr) return;
  if (!hub->fd_has_watchers(fd)) {
    hub->cancel_fd(fd, nullptr);  // drops a registration kept between waits
    return;
  }
  try {
    hub->cancel_fd(fd, std::make_exception_ptr(FdClosedError(fd)));
  } catch (...) {  // no memory for the error: the hub's revalidation finds the fd closed
  }
}

int close(int fd) noexcept {
  detail::cancel_waiters(fd);
  return ::close(fd);
}

SelectResult select(const std::vector<int>& readable, const std::vector<int>& writable,
                    const std::vector<int>& exceptional, Deadline deadline) {
  (void)exceptional;
  std::vector<pollfd> fds;
  for (int fd : readable) fds.push_back(pollfd{fd, POLLIN, 0});
  for (int fd : writable) fds.push_back(pollfd{fd, POLLOUT, 0});
  // poll(2) skips a negative fd without a word: select([-1], ...) would
  // report nothing instead of the invalid fd (gevent: ValueError).
  for (const pollfd& p : fds)
    if (p.fd < 0)
      throw std::system_error(EBADF, std::generic_category(), "fern: select on invalid fd " + std::to_string(p.fd));
  if (fds.empty()) {
    // A sleep; with no deadline nothing can wake the caller (LoopExit in main).
    Waiter never_woken;
    Hub::current().park(never_woken, deadline, "select");
    return {};
  }
  // Readiness is read with one non-blocking poll(2); the hub only does the waiting.
  auto collect = [&] {
    if (::poll(fds.data(), fds.size(), 0) < 0) throw std::system_error(errno, std::generic_category(), "fern: select");
    SelectResult r;
    for (const pollfd& p : fds) {
      if (p.revents & POLLNVAL)
        throw std::system_error(EBADF, std::generic_category(), "fern: select on invalid fd " + std::to_string(p.fd));
      if (p.revents == 0) continue;
      if (p.events == POLLIN) r.readable.push_back(p.fd);
      else r.writable.push_back(p.fd);
    }
    return r;
  };
  SelectResult ready = collect();
  if (!ready.readable.empty() || !ready.writable.empty() || deadline.expired(monotonic_now())) return ready;

  Hub& hub = Hub::current();
  Waiter shared;
  // One watcher per (fd, direction): a list naming an fd twice (select
  // allows it) must not be this very greenlet's second waiter.
  std::vector<pollfd> distinct = fds;
  std::sort(distinct.begin(), distinct.end(),
            [](const pollfd& a, const pollfd& b) { return a.fd != b.fd ? a.fd < b.fd : a.events < b.events; });
  distinct.erase(std::unique(distinct.begin(), distinct.end(),
                             [](const pollfd& a, const pollfd& b) { return a.fd == b.fd && a.events == b.events; }),
                 distinct.end());
  std::unique_ptr<FdWatch[]> watchers(new FdWatch[distinct.size()]);
  for (std::size_t i = 0; i < distinct.size(); ++i) {
    if (!watch(hub, distinct[i].fd, distinct[i].events == POLLIN ? kReadable : kWritable, watchers[i], shared))
      return collect();  // a regular file: always ready
  }
  if (!hub.park(shared, deadline, "select")) return {};
  watchers.reset();
  return collect();
}

}  // namespace fern
