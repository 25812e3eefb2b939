// The per-fd table (detail.h): pages of 4096 entries allocated on first use
// and never freed (a process uses few fd numbers; a page is 96 KiB), so a
// state pointer stays valid for the life of the process.
#include <dlfcn.h>
#include <limits.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fern/hooks/detail.h"
#include "fern/io/wait.h"

namespace fern::hooks::detail {
namespace {

std::int64_t timeval_ns(const timeval& tv) noexcept {
  return static_cast<std::int64_t>(tv.tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(tv.tv_usec) * 1000;
}

std::int64_t socket_timeout(int fd, int name) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (getsockopt(fd, SOL_SOCKET, name, &tv, &len) < 0) return 0;
  return timeval_ns(tv);
}

std::atomic<std::uint32_t> g_last_file_id{0};

// Runs update(state) for fd's state and, when its open file has dups, for
// theirs (a scan of the table: only for a file that was dup'd).
template <class Update>
void for_each_fd_of_file(int fd, Update update) {
  FdState* st = fd_state_if_exists(fd);
  if (st == nullptr) return;
  std::uint32_t id = st->file_id.load(std::memory_order_relaxed);
  if (id == 0) {
    update(*st);
    return;
  }
  for (auto& slot : g_fd_pages) {
    FdState* page = slot.load(std::memory_order_acquire);
    if (page == nullptr) continue;
    for (int i = 0; i < kFdPageSize; ++i)
      if (page[i].file_id.load(std::memory_order_relaxed) == id) update(page[i]);
  }
}

}  // namespace

void set_file_flags(int fd, std::uint32_t set, std::uint32_t clear) noexcept {
  for_each_fd_of_file(fd, [&](FdState& st) {
    st.flags.fetch_or(set, std::memory_order_relaxed);
    st.flags.fetch_and(~clear, std::memory_order_relaxed);
  });
}

void set_file_timeout(int fd, bool write, std::int64_t ns) noexcept {
  for_each_fd_of_file(fd, [&](FdState& st) {
    (write ? st.send_timeout_ns : st.recv_timeout_ns).store(ns, std::memory_order_relaxed);
  });
}

void* find_next(const char* name) noexcept {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "fern hooks: dlsym(RTLD_NEXT, \"%s\") found no definition after the hooks' own\n", name);
    std::abort();
  }
  return f;
}

FdState* fd_state(int fd) noexcept {
  if (fd < 0 || fd >= kMaxTrackedFds) return nullptr;
  std::atomic<FdState*>& slot = g_fd_pages[fd >> kFdPageBits];
  FdState* page = slot.load(std::memory_order_acquire);
  if (page == nullptr) {
    FdState* fresh = new (std::nothrow) FdState[kFdPageSize];
    if (fresh == nullptr) return nullptr;
    if (slot.compare_exchange_strong(page, fresh, std::memory_order_acq_rel)) page = fresh;
    else delete[] fresh;  // another thread installed its page first
  }
  return &page[fd & (kFdPageSize - 1)];
}

FdState* classify(int fd) noexcept {
  FdState* st = fd_state(fd);
  if (st == nullptr) return nullptr;
  if (st->flags.load(std::memory_order_relaxed) & kKnown) return st;
  // An fd the hooks did not see created (before the hooks ran, or from a
  // call they do not interpose): what the kernel says now.
  struct stat sb;
  if (fstat(fd, &sb) < 0) return nullptr;
  // A dup of it may have been made non-blocking by the hooks already.
  std::uint32_t flags = kKnown | (st->flags.load(std::memory_order_relaxed) & kHookNonblock);
  if (S_ISSOCK(sb.st_mode)) {
    flags |= kIsSocket;
    int fl = FERN_REAL(fcntl)(fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK) && !(flags & kHookNonblock)) flags |= kAppNonblock;
    st->recv_timeout_ns.store(socket_timeout(fd, SO_RCVTIMEO), std::memory_order_relaxed);
    st->send_timeout_ns.store(socket_timeout(fd, SO_SNDTIMEO), std::memory_order_relaxed);
  }
  st->flags.store(flags, std::memory_order_relaxed);
  return st;
}

void note_new_socket(int fd, bool app_nonblock) noexcept {
  FdState* st = fd_state(fd);
  if (st == nullptr) return;
  st->recv_timeout_ns.store(0, std::memory_order_relaxed);
  st->send_timeout_ns.store(0, std::memory_order_relaxed);
  st->file_id.store(0, std::memory_order_relaxed);
  st->flags.store(kKnown | kIsSocket | (app_nonblock ? kAppNonblock : 0u), std::memory_order_relaxed);
}

void note_accepted_socket(int listener, int fd, bool app_nonblock) noexcept {
  note_new_socket(fd, app_nonblock);
  FdState* from = fd_state_if_exists(listener);
  bool untimed = from != nullptr && (from->flags.load(std::memory_order_relaxed) & kKnown) &&
                 from->recv_timeout_ns.load(std::memory_order_relaxed) == 0 &&
                 from->send_timeout_ns.load(std::memory_order_relaxed) == 0;
  FdState* st = untimed ? nullptr : fd_state_if_exists(fd);
  if (st == nullptr) return;
  st->recv_timeout_ns.store(socket_timeout(fd, SO_RCVTIMEO), std::memory_order_relaxed);
  st->send_timeout_ns.store(socket_timeout(fd, SO_SNDTIMEO), std::memory_order_relaxed);
}

void forget_fd(int fd) noexcept {
  if (FdState* st = fd_state_if_exists(fd)) {
    st->flags.store(0, std::memory_order_relaxed);
    st->file_id.store(0, std::memory_order_relaxed);
  }
}

void copy_fd(int from, int to) noexcept {
  FdState* src = fd_state_if_exists(from);
  FdState* dst = fd_state(to);
  if (dst == nullptr) return;
  if (src == nullptr) {
    dst->flags.store(0, std::memory_order_relaxed);
    dst->file_id.store(0, std::memory_order_relaxed);
    return;
  }
  std::uint32_t id = src->file_id.load(std::memory_order_relaxed);
  if (id == 0) {
    id = g_last_file_id.fetch_add(1, std::memory_order_relaxed) + 1;
    src->file_id.store(id, std::memory_order_relaxed);
  }
  dst->file_id.store(id, std::memory_order_relaxed);
  dst->recv_timeout_ns.store(src->recv_timeout_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
  dst->send_timeout_ns.store(src->send_timeout_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
  dst->flags.store(src->flags.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

bool make_nonblocking(int fd, FdState& st) noexcept {
  if (st.flags.load(std::memory_order_relaxed) & kHookNonblock) return true;
  int fl = FERN_REAL(fcntl)(fd, F_GETFL);
  if (fl < 0) return false;
  if (!(fl & O_NONBLOCK) && FERN_REAL(fcntl)(fd, F_SETFL, fl | O_NONBLOCK) < 0) return false;
  set_file_flags(fd, kHookNonblock, 0);  // every dup is non-blocking underneath now
  return true;
}

bool hook_nonblock_only(int fd) noexcept {
  FdState* st = fd_state_if_exists(fd);
  if (st == nullptr) return false;
  std::uint32_t f = st->flags.load(std::memory_order_relaxed);
  return (f & kHookNonblock) && !(f & kAppNonblock);
}

Deadline timeout_deadline(int fd, bool write) noexcept {
  FdState* st = fd_state_if_exists(fd);
  std::int64_t ns = st ? (write ? st->send_timeout_ns : st->recv_timeout_ns).load(std::memory_order_relaxed) : 0;
  if (ns == 0) return Deadline::never();
  return Deadline::at(ns == kNoWait ? monotonic_now() : Deadline::saturating_add(monotonic_now(), ns));
}

bool copy_in(void* to, const void* from, std::size_t n) noexcept {
  int caller_errno = errno;
  iovec local{to, n};
  iovec remote{const_cast<void*>(from), n};
  ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  bool refused = r < 0 && errno != EFAULT;  // ENOSYS (qemu-user), EPERM (a seccomp filter)
  if (refused && n <= PIPE_BUF) {
    // Through a pipe instead: write(2) copies from the caller's memory as
    // the call would, EFAULT for what cannot be read.
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      bool ok = FERN_REAL(write)(p[1], from, n) == static_cast<ssize_t>(n) &&
                FERN_REAL(read)(p[0], to, n) == static_cast<ssize_t>(n);
      FERN_REAL(close)(p[0]);
      FERN_REAL(close)(p[1]);
      errno = caller_errno;
      return ok;
    }
  }
  errno = caller_errno;
  if (refused) std::memcpy(to, from, n);
  return refused || r == static_cast<ssize_t>(n);
}

int wait_blocking(int fd, short events, Deadline deadline) noexcept {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = FERN_REAL(poll)(&p, 1, deadline.remaining_ms(monotonic_now()));
    if (n >= 0 || errno != EINTR) return n;
  }
}

int park_on_fd(int fd, bool write, Deadline deadline) {
  try {
    // The sticky wait keeps the poller's interest between waits (no
    // epoll_ctl per call): safe because close is interposed too.
    return fern::detail::wait_owned_fd(fd, write, deadline) ? 0 : EAGAIN;
  } catch (const FdClosedError&) {
    return EBADF;
  } catch (const ConcurrentObjectUseError&) {
    throw;
  } catch (const std::system_error& e) {
    return e.code().value();
  }
}

}  // namespace fern::hooks::detail
