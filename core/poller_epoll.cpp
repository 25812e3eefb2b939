// epoll backend (Linux). One epoll registration per fd carries both
// directions; epoll_event.data.u64 packs (generation << 32 | fd) so that an
// event left over from an older registration of the same fd number is told
// apart from a current one.
//
// Level-triggered, not edge-triggered: the hub wakes one-shot waiters that
// retry their syscall and may not drain the fd (a read of fewer bytes than
// are queued, a write that fills only part of the buffer). Level-triggered
// reports such an fd again on the next wait, so no wake-up can be lost; the
// price is that the hub must keep each fd's interest equal to what its
// waiters want (modify() when a direction has no waiter), or an idle
// writable fd reports on every wait.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/poller.h"
#include "fern/core/poller_backend.h"

namespace fern::detail {

namespace {

constexpr char kBackend[] = "epoll";

std::uint32_t to_epoll(unsigned interest) {
  std::uint32_t events = 0;
  if (interest & kReadable) events |= EPOLLIN;
  if (interest & kWritable) events |= EPOLLOUT;
  return events;
}

// Errors and hangups wake both directions: each waiter sees the failure on
// its next syscall.
unsigned from_epoll(std::uint32_t events) {
  unsigned ready = kNone;
  if (events & EPOLLIN) ready |= kReadable;
  if (events & EPOLLOUT) ready |= kWritable;
  if (events & (EPOLLERR | EPOLLHUP)) ready |= kReadable | kWritable;
  return ready;
}

int new_epoll_fd() {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw_poller_errno(kBackend, errno, "epoll_create1");
  return fd;
}

class EpollPoller final : public Poller {
 public:
  EpollPoller() : epfd_(new_epoll_fd()) {}
  ~EpollPoller() override { close(epfd_); }
  EpollPoller(const EpollPoller&) = delete;
  EpollPoller& operator=(const EpollPoller&) = delete;

  const char* name() const noexcept override { return "epoll"; }

  void add(int fd, unsigned interest) override {
    check_interest(kBackend, interest, "add", fd);
    if (fd < 0) throw_poller_errno(kBackend, EBADF, "add", fd);
    if (registered(fd)) throw_poller_errno(kBackend, EEXIST, "add", fd);
    grow(fd);  // may throw bad_alloc: before any kernel state changes
    const std::uint32_t generation = generation_[fd] + 1;
    epoll_ctl_or_throw(EPOLL_CTL_ADD, fd, interest, generation, "add");
    generation_[fd] = generation;
    interest_[fd] = interest;
  }

  void modify(int fd, unsigned interest) override {
    check_interest(kBackend, interest, "modify", fd);
    if (!registered(fd)) throw_poller_errno(kBackend, ENOENT, "modify", fd);
    epoll_ctl_or_throw(EPOLL_CTL_MOD, fd, interest, generation_[fd], "modify");
    interest_[fd] = interest;
  }

  void remove(int fd) noexcept override {
    if (!registered(fd)) return;
    // EBADF here means the fd was closed first; the kernel dropped it then.
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
    interest_[fd] = kNone;
    ++generation_[fd];
  }

  int wait(std::int64_t timeout_ns, PollEvent* out, int max) override {
    if (max <= 0) throw std::invalid_argument("fern: epoll wait: max must be positive");
    if (events_.size() < static_cast<std::size_t>(max)) events_.resize(max);
    const int n = wait_kernel(timeout_ns, max);
    return dispatch(n, out);
  }

  bool is_current(const PollEvent& event) const noexcept override {
    return registered(event.fd) && generation_[event.fd] == event.generation;
  }

  std::vector<int> reinit() override {
    // The child shares the parent's epoll instance: closing our copy of its
    // fd leaves the parent's registrations alone; the new one starts empty.
    close(epfd_);
    epfd_ = new_epoll_fd();
    std::vector<int> dropped;
    for (std::size_t i = 0; i < interest_.size(); ++i) {
      const int fd = static_cast<int>(i);
      if (interest_[i] == kNone) continue;
      epoll_event ev = make_event(fd, interest_[i], generation_[i]);
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) continue;
      // Keep the table equal to the kernel's set: the fd was closed without
      // remove(), so it is no longer registered.
      interest_[i] = kNone;
      ++generation_[i];
      dropped.push_back(fd);
    }
    return dropped;
  }

 private:
  bool registered(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < interest_.size() &&
           interest_[fd] != kNone;
  }

  void grow(int fd) {
    if (static_cast<std::size_t>(fd) >= interest_.size()) {
      interest_.resize(fd + 1, kNone);
      generation_.resize(fd + 1, 0);
    }
  }

  static epoll_event make_event(int fd, unsigned interest, std::uint32_t generation) {
    epoll_event ev{};
    ev.events = to_epoll(interest);
    ev.data.u64 = (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd);
    return ev;
  }

  void epoll_ctl_or_throw(int op, int fd, unsigned interest, std::uint32_t generation,
                          const char* what) {
    epoll_event ev = make_event(fd, interest, generation);
    if (epoll_ctl(epfd_, op, fd, &ev) < 0) throw_poller_errno(kBackend, errno, what, fd);
  }

  // epoll_pwait2 takes a timespec (ns); kernels before 5.11 lack it, and
  // then epoll_wait gets the timeout rounded up to whole ms, so neither
  // path wakes before timeout_ns has passed. Returns 0 on EINTR.
  int wait_kernel(std::int64_t timeout_ns, int max) {
    int n;
    if (have_pwait2_) {
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
      ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
      n = epoll_pwait2(epfd_, events_.data(), max, timeout_ns < 0 ? nullptr : &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        have_pwait2_ = false;
        return wait_kernel(timeout_ns, max);
      }
    } else {
      n = epoll_wait(epfd_, events_.data(), max, round_up_ms(timeout_ns));
    }
    if (n < 0) {
      if (errno == EINTR) return 0;
      throw_poller_errno(kBackend, errno, "wait");
    }
    return n;
  }

  static int round_up_ms(std::int64_t timeout_ns) {
    if (timeout_ns < 0) return -1;
    const std::int64_t ms = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
    return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
  }

  // Drops events of registrations that are no longer current (an fd closed
  // without remove() while a dup kept its file open): they cannot be
  // dispatched to anyone.
  int dispatch(int n, PollEvent* out) const {
    int count = 0;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t data = events_[i].data.u64;
      PollEvent ev{static_cast<int>(data & 0xffffffffu), from_epoll(events_[i].events),
                   static_cast<std::uint32_t>(data >> 32)};
      if (is_current(ev)) out[count++] = ev;
    }
    return count;
  }

  int epfd_;
  bool have_pwait2_ = true;
  std::vector<unsigned> interest_;          // by fd; kNone: not registered
  std::vector<std::uint32_t> generation_;   // by fd; bumped by add and remove
  std::vector<epoll_event> events_;         // kernel batch, grown to max once
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller() { return std::make_unique<EpollPoller>(); }

}  // namespace fern::detail
