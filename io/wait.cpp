// fd waiting on the hub's poller: one watcher per waiting greenlet.
#include "fern/io/wait.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "fern/core/hub.h"
#include "fern/core/task.h"

namespace fern {
namespace {

struct FdWait : Hub::IoWatcher {
  Waiter waiter;
  Waiter* waiter_target = nullptr;  // select: the one waiter shared by all its fds
  unsigned ready = 0;
  FdWait() {
    fn = [](Hub::IoWatcher* w, unsigned ready) {
      auto* self = static_cast<FdWait*>(w);
      if (self->waiter.ready()) return;  // level-triggered: already woken this round
      self->ready = ready;
      if (w->error) self->waiter.wake_error(w->error);
      else self->waiter.wake();
    };
  }
};

const char* direction_name(unsigned direction) { return direction == kReadable ? "reader" : "writer"; }

// Registers `w` for each direction; on exit every registration is removed.
struct Registration {
  Hub& hub;
  int fd;
  FdWait& w;
  unsigned directions = 0;
  bool always_ready = false;
  Registration(Hub& h, int f, FdWait& watcher, unsigned wanted) : hub(h), fd(f), w(watcher) {
    for (unsigned d : {unsigned{kReadable}, unsigned{kWritable}}) {
      if (!(wanted & d)) continue;
      switch (hub.watch_fd(fd, d, &w)) {
        case Hub::Watch::kStarted:
          directions |= d;
          break;
        case Hub::Watch::kBusy:
          release();
          throw ConcurrentObjectUseError("fern: fd " + std::to_string(fd) + " already has a " +
                                         direction_name(d) + " waiting in another greenlet");
        case Hub::Watch::kAlwaysReady:
          always_ready = true;
          break;
      }
    }
  }
  void release() noexcept {
    for (unsigned d : {unsigned{kReadable}, unsigned{kWritable}})
      if (directions & d) hub.unwatch_fd(fd, d, &w);
    directions = 0;
  }
  ~Registration() { release(); }
};

bool wait_fd(int fd, unsigned directions, Deadline deadline, bool sticky = false) {
  Hub& hub = Hub::current();
  FdWait w;
  w.sticky = sticky;
  Registration reg(hub, fd, w, directions);
  if (reg.always_ready) return true;
  detail::WakeTimer timer(hub, w.waiter, deadline);
  w.waiter.wait();
  return !timer.expired;
}

}  // namespace

bool wait_read(int fd, Deadline deadline) { return wait_fd(fd, kReadable, deadline); }
bool wait_write(int fd, Deadline deadline) { return wait_fd(fd, kWritable, deadline); }
bool wait_readwrite(int fd, Deadline deadline) { return wait_fd(fd, kReadable | kWritable, deadline); }

bool detail::wait_owned_fd(int fd, bool write, Deadline deadline) {
  return wait_fd(fd, write ? kWritable : kReadable, deadline, true);
}

int close(int fd) noexcept {
  if (Hub* hub = Hub::current_if_exists()) hub->cancel_fd(fd, std::make_exception_ptr(FdClosedError(fd)));
  return ::close(fd);
}

SelectResult select(const std::vector<int>& readable, const std::vector<int>& writable,
                    const std::vector<int>& exceptional, Deadline deadline) {
  (void)exceptional;
  std::vector<pollfd> fds;
  for (int fd : readable) fds.push_back(pollfd{fd, POLLIN, 0});
  for (int fd : writable) fds.push_back(pollfd{fd, POLLOUT, 0});
  if (fds.empty()) {
    fern::sleep(deadline.is_never() ? 1e9 : deadline.remaining(monotonic_now()) / 1e9);
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
  std::vector<std::unique_ptr<FdWait>> watchers;
  std::vector<std::unique_ptr<Registration>> regs;
  Waiter shared;
  for (const pollfd& p : fds) {
    auto w = std::make_unique<FdWait>();
    w->fn = [](Hub::IoWatcher* iw, unsigned) {
      Waiter* s = static_cast<FdWait*>(iw)->waiter_target;
      if (!s->ready()) s->wake();
    };
    w->waiter_target = &shared;
    regs.push_back(std::make_unique<Registration>(hub, p.fd, *w, p.events == POLLIN ? kReadable : kWritable));
    watchers.push_back(std::move(w));
  }
  detail::WakeTimer timer(hub, shared, deadline);
  shared.wait();
  regs.clear();
  return timer.expired ? SelectResult{} : collect();
}

}  // namespace fern
