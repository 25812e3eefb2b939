// The hub's fd side: fd watchers on the poller, and the wake-up fd through
// which other threads (run_callback_threadsafe) and signals reach the loop.
#include "fern/core/hub.h"

#include <fcntl.h>
#include <unistd.h>
#if defined(__linux__)
#  include <sys/eventfd.h>
#endif

#include <cerrno>
#include <system_error>

namespace fern {
namespace {
std::atomic<void (*)(Hub&)> g_wakeup_hook{nullptr};
}  // namespace

void Hub::init_wakeup() {
#if defined(__linux__)
  wake_read_fd_ = wake_write_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_read_fd_ < 0) throw std::system_error(errno, std::generic_category(), "fern: eventfd");
#else
  int fds[2];
  if (pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "fern: pipe");
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  wake_read_fd_ = fds[0];
  wake_write_fd_ = fds[1];
#endif
  wake_watcher_.ref = false;  // cross-thread wake-ups do not keep the loop alive
  wake_watcher_.fn = [](IoWatcher*, unsigned) { Hub::current().drain_threadsafe(); };
  watch_fd(wake_read_fd_, kReadable, &wake_watcher_);
}

Hub::Watch Hub::watch_fd(int fd, unsigned direction, IoWatcher* w) {
  if (fd < 0) throw std::system_error(EBADF, std::generic_category(), "fern: invalid fd " + std::to_string(fd));
  if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 1);
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  IoWatcher*& mine = direction == kReadable ? slot.reader : slot.writer;
  if (mine) return Watch::kBusy;
  unsigned want = slot.registered | direction;
  try {
    if (slot.registered == kNone) poller_->add(fd, want);
    else if (want != slot.registered) poller_->modify(fd, want);  // else: kept by a sticky watcher
  } catch (const std::system_error& e) {
    if (e.code().value() == EPERM) return Watch::kAlwaysReady;  // regular files never block
    throw;
  }
  if (slot.registered == kNone) ++watched_fds_;
  slot.registered = want;
  mine = w;
  if (w->ref) ++ref_fds_;
  return Watch::kStarted;
}

void Hub::unwatch_fd(int fd, unsigned direction, IoWatcher* w) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  IoWatcher*& mine = direction == kReadable ? slot.reader : slot.writer;
  if (mine != w) return;
  mine = nullptr;
  if (w->ref) --ref_fds_;
  if (w->sticky) return;  // the interest stays until an unwatched event or fern::close
  drop_unwatched(fd, direction);
}

void Hub::drop_unwatched(int fd, unsigned direction) noexcept {
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  if (!(slot.registered & direction)) return;
  unsigned want = slot.registered & ~direction;
  if (want == kNone) {
    poller_->remove(fd);
    --watched_fds_;
  } else {
    try {
      poller_->modify(fd, want);
    } catch (...) {
      poller_->remove(fd);  // the fd is gone under us: forget it
    }
  }
  slot.registered = want;
}

void Hub::cancel_fd(int fd, std::exception_ptr error) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  for (IoWatcher* w : {slot.reader, slot.writer}) {
    if (!w) continue;
    w->error = error;
    w->cancel.watcher = w;
    w->cancel.fn = [](Callback* cb) {
      IoWatcher* watcher = static_cast<IoWatcher::Cancel*>(cb)->watcher;
      watcher->fn(watcher, 0);
    };
    schedule(&w->cancel);
    if (w->ref) --ref_fds_;
  }
  if (slot.registered != kNone) {
    poller_->remove(fd);
    --watched_fds_;
  }
  slot = FdSlot{};
}

void Hub::run_callback_threadsafe(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(remote_mutex_);
    remote_.push_back(std::move(fn));
  }
  if (!remote_pending_.exchange(true, std::memory_order_acq_rel)) {
    std::uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the hub will wake anyway.
    ssize_t ignored = write(wake_write_fd_, &one, wake_write_fd_ == wake_read_fd_ ? 8 : 1);
    (void)ignored;
  }
}

void Hub::wake_from_signal() noexcept {
  std::uint64_t one = 1;
  ssize_t ignored = write(wake_write_fd_, &one, wake_write_fd_ == wake_read_fd_ ? 8 : 1);
  (void)ignored;
}

void Hub::set_wakeup_hook(void (*hook)(Hub&)) noexcept { g_wakeup_hook.store(hook); }

void Hub::drain_threadsafe() {
  char buf[64];
  while (read(wake_read_fd_, buf, sizeof buf) > 0) {
  }
  if (auto hook = g_wakeup_hook.load()) hook(*this);
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(remote_mutex_);
    batch.swap(remote_);
    remote_pending_.store(false, std::memory_order_release);
  }
  for (auto& fn : batch) detail::run_guarded("a thread-safe callback", fn);
}

void Hub::reinit_after_fork() {
  poller_->reinit();
  int old_read = wake_read_fd_, old_write = wake_write_fd_;
  unwatch_fd(old_read, kReadable, &wake_watcher_);
  close(old_read);
  if (old_write != old_read) close(old_write);
  remote_.clear();
  remote_pending_.store(false);
  init_wakeup();
}

// Mirrors gevent's report: the error (where Python prints the traceback),
// then "<timestamp> <context> failed with <Type>" and a blank line.
}  // namespace fern
