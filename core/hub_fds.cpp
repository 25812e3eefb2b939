// The hub's fd side: fd watchers on the poller, and the wake-up fd through
// which other threads (RemoteQueue) and signals reach the loop.
#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>

#include "fern/core/hub.h"
#if defined(__linux__)
#  include <sys/eventfd.h>
#endif

#include <cassert>
#include <cerrno>
#include <cstddef>
#include <system_error>

namespace fern {
namespace {
std::atomic<void (*)(Hub&)> g_wakeup_hook{nullptr};

[[noreturn]] void throw_ebadf(int fd) {
  throw std::system_error(EBADF, std::generic_category(), "fern: invalid fd " + std::to_string(fd));
}

std::exception_ptr closed_behind_our_back(int fd) {
  return std::make_exception_ptr(std::system_error(
      EBADF, std::generic_category(),
      "fern: fd " + std::to_string(fd) + " was closed without fern::close while a greenlet waited on it"));
}

constexpr std::size_t kRevalidateSlots = 4096;  // table slots looked at per idle tick
}  // namespace

// ---- RemoteQueue ----

RemoteQueue::RemoteQueue() {
#if defined(__linux__)
  read_fd_ = write_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (read_fd_ < 0) throw std::system_error(errno, std::generic_category(), "fern: eventfd");
#else
  int fds[2];
  if (pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "fern: pipe");
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  read_fd_ = fds[0];
  write_fd_ = fds[1];
#endif
}

// The last holder closes the fds: no thread can still be writing to them.
RemoteQueue::~RemoteQueue() {
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0 && write_fd_ != read_fd_) ::close(write_fd_);
}

bool RemoteQueue::post(std::function<void()> fn) {
  if (!fn) throw std::invalid_argument("fern: run_callback_threadsafe(nullptr): no function to call");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return false;  // fn is destroyed here, on the caller's thread
    queue_.push_back(std::move(fn));
  }
  if (!pending_.exchange(true, std::memory_order_acq_rel)) wake();
  return true;
}

void RemoteQueue::wake() noexcept {
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the hub will wake anyway.
  ssize_t ignored = write(write_fd_, &one, write_fd_ == read_fd_ ? 8 : 1);
  (void)ignored;
}

void RemoteQueue::drain_fd() noexcept {
  char buf[64];
  while (read(read_fd_, buf, sizeof buf) > 0) {
  }
}

std::vector<std::function<void()>> RemoteQueue::take() {
  std::vector<std::function<void()>> batch;
  std::lock_guard<std::mutex> lock(mutex_);
  batch.swap(queue_);
  pending_.store(false, std::memory_order_release);
  return batch;
}

void RemoteQueue::close_door() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
    dropped.swap(queue_);
  }
  pending_.store(false, std::memory_order_release);
}

// ---- fd watchers ----

namespace {
using detail::HookAccess;
using IoWatcher = Hub::IoWatcher;

IoWatcher* next_watcher(IoWatcher* w) noexcept { return static_cast<IoWatcher*>(HookAccess::next(w)); }

// A direction's watchers: `first` to last through the hooks' links, the
// first's prev being the last, so that both ends cost O(1) and a slot holds
// one pointer per direction.
void push_watcher(IoWatcher*& first, IoWatcher* w) noexcept {
  HookAccess::next(w) = nullptr;
  if (!first) {
    HookAccess::prev(w) = w;
    first = w;
    return;
  }
  detail::Hook* last = HookAccess::prev(first);
  HookAccess::next(last) = w;
  HookAccess::prev(w) = last;
  HookAccess::prev(first) = w;
}

void remove_watcher(IoWatcher*& first, IoWatcher* w) noexcept {
  detail::Hook* prev = HookAccess::prev(w);
  detail::Hook* next = HookAccess::next(w);
  if (w == first) {
    first = static_cast<IoWatcher*>(next);
    if (first) HookAccess::prev(first) = prev;  // the last
  } else {
    HookAccess::next(prev) = next;
    HookAccess::prev(next ? next : first) = prev;
  }
  HookAccess::prev(w) = HookAccess::next(w) = nullptr;
}

}  // namespace

void Hub::watch_wakeup() {
  wake_watcher_.ref = false;  // cross-thread wake-ups do not keep the loop alive
  wake_watcher_.fn = [](IoWatcher*, unsigned) { Hub::current().drain_remote(); };
  watch_fd(remote_->read_fd_, kReadable, &wake_watcher_);
}

void Hub::detach_watcher(detail::HookHolder* self, detail::Hook* h) noexcept {
  static_cast<FdTable*>(self)->hub->unwatch(static_cast<IoWatcher*>(h));
}

// The registration of fd is stale when the kernel no longer has it: the fd
// was closed with plain ::close (epoll forgets a closed file by itself) and
// its number may now name another file.
bool Hub::registration_stale(int fd) noexcept {
  try {
    poller_->modify(fd, fds_[static_cast<std::size_t>(fd)].registered);
    return false;
  } catch (const std::system_error& e) {
    return e.code().value() == ENOENT || e.code().value() == EBADF;
  }
}

Hub::Watch Hub::watch_fd(int fd, unsigned direction, IoWatcher* w) {
  if (fd < 0) throw_ebadf(fd);
  // Grow the table only for an fd that exists: wait_read(50'000'000) must
  // answer EBADF, not allocate gigabytes first.
  if (static_cast<std::size_t>(fd) >= fds_.size()) {
    if (fcntl(fd, F_GETFD) < 0) throw_ebadf(fd);
    fds_.resize(static_cast<std::size_t>(fd) + 1);
  }
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  IoWatcher*& first = direction == kReadable ? slot.reader : slot.writer;
  // The waiters there may wait on a file that is gone (closed behind fern's
  // back, the number reused): they are woken with an error and the slot
  // serves the new file.
  if (first && registration_stale(fd)) cancel_fd(fd, closed_behind_our_back(fd));
  if (w->sticky && (slot.owned & direction)) return Watch::kBusy;
  assert(!w->linked() && "fern: an IoWatcher watches one fd in one direction");
  if (w->linked()) return Watch::kBusy;
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
  push_watcher(first, w);
  if (w->sticky) slot.owned |= direction;
  w->fd = fd;
  w->direction = direction;
  w->batch = fd_batch_;
  detail::HookAccess::attach(w, &fd_table_);
  if (w->ref) ++ref_fds_;
  return Watch::kStarted;
}

void Hub::unwatch(IoWatcher* w) noexcept {
  detail::HookAccess::release(w);
  if (w->ref) --ref_fds_;
  if (fd_cursor_ == w) fd_cursor_ = next_watcher(w);  // an event's round goes on after it
  const int fd = w->fd;
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  IoWatcher*& first = w->direction == kReadable ? slot.reader : slot.writer;
  remove_watcher(first, w);
  if (w->sticky) slot.owned &= ~w->direction;
  if (first) return;      // others still wait
  if (w->sticky) return;  // the interest stays until an unwatched event or fern::close
  drop_unwatched(fd, w->direction);
}

// Drops an interest in `direction` that no watcher holds (one poller call).
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
      want = kNone;
      --watched_fds_;
    }
  }
  slot.registered = want;
}

// An idle tick of the loop (it waits only on fds): a slice of the fd table,
// an fcntl and a poller call per watched fd, so that a plain ::close under a waiter
// ends its wait with a clear error within a second or so instead of never.
// A registration the kernel forgot while the number names a file again (a
// close fern never saw, then a new socket: a sticky interest kept, no
// syscall, for a wait that began after the reuse) is made again instead.
void Hub::revalidate_fds() noexcept {
  const std::size_t size = fds_.size();
  for (std::size_t i = 0; i < size && i < kRevalidateSlots; ++i) {
    const std::size_t fd = revalidate_cursor_++ % size;
    FdSlot& slot = fds_[fd];
    if (!slot.reader && !slot.writer) continue;
    const int n = static_cast<int>(fd);
    if (n == remote_->read_fd_ || slot.registered == kNone) continue;
    if (fcntl(n, F_GETFD) < 0 && errno == EBADF) {
      cancel_fd(n, closed_behind_our_back(n));
      continue;
    }
    try {
      poller_->modify(n, slot.registered);
      continue;
    } catch (const std::system_error& e) {
      if (e.code().value() == ENOENT) {
        try {
          poller_->remove(n);
          poller_->add(n, slot.registered);
          continue;
        } catch (...) {
        }
      }
    } catch (...) {
    }
    cancel_fd(n, closed_behind_our_back(n));
  }
}

void Hub::cancel_fd(int fd, std::exception_ptr error) noexcept {
  if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
  FdSlot& slot = fds_[static_cast<std::size_t>(fd)];
  for (IoWatcher** list : {&slot.reader, &slot.writer}) {
    while (IoWatcher* w = *list) {
      w->unlink();  // leaves the fd table (and the poller)
      w->error = error;
      w->cancel.watcher = w;
      w->cancel.fn = [](Callback* cb) {
        IoWatcher* watcher = static_cast<IoWatcher::Cancel*>(cb)->watcher;
        watcher->fn(watcher, 0);
      };
      schedule(&w->cancel);
    }
  }
  if (slot.registered != kNone) {
    poller_->remove(fd);
    --watched_fds_;
  }
  slot = FdSlot{};
}

void Hub::set_wakeup_hook(void (*hook)(Hub&)) noexcept { g_wakeup_hook.store(hook); }

void Hub::drain_remote() {
  remote_->drain_fd();
  if (auto hook = g_wakeup_hook.load()) hook(*this);
  for (auto& fn : remote_->take()) detail::run_guarded("a thread-safe callback", fn);
}

// In the child of fork(): a fresh poller and a fresh door. The old door is
// abandoned, not destroyed: its mutex may have been held by a thread that
// does not exist in the child.
void Hub::reinit_after_fork() {
  // The new kernel object first: until then every poller call would edit
  // the set the parent still uses.
  std::vector<int> dropped = poller_->reinit();
  // Closed behind fern's back before the fork: their waiters get the error
  // and their slots are free for whatever file the number names next.
  for (int fd : dropped) {
    fds_[static_cast<std::size_t>(fd)].registered = kNone;
    --watched_fds_;
    cancel_fd(fd, closed_behind_our_back(fd));
  }
  wake_watcher_.unlink();
  RemoteQueue* old = (new std::shared_ptr<RemoteQueue>(std::move(remote_)))->get();  // leaked, see above
  ::close(old->read_fd_);
  if (old->write_fd_ != old->read_fd_) ::close(old->write_fd_);
  old->read_fd_ = old->write_fd_ = -1;
  remote_ = std::make_shared<RemoteQueue>();
  watch_wakeup();
}

}  // namespace fern
