// poll(2) backend: the portable fallback for POSIX targets without epoll or
// kqueue, and a second implementation the poller tests run against. The
// pollfd array is dense and handed to the kernel as is; index_ maps an fd to
// its slot so add, modify and remove are O(1) (remove swaps the last slot
// in). Each wait is O(registered fds), which is poll's nature.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/poller.h"
#include "fern/core/poller_backend.h"

#if defined(__linux__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__)
#define FERN_POLLER_HAVE_PPOLL 1
#endif

namespace fern::detail {

namespace {

constexpr char kBackend[] = "poll";

short to_poll(unsigned interest) {
  short events = 0;
  if (interest & kReadable) events |= POLLIN;
  if (interest & kWritable) events |= POLLOUT;
  return events;
}

// Errors, hangups and a closed fd (POLLNVAL) wake both directions.
unsigned from_poll(short revents) {
  unsigned ready = kNone;
  if (revents & POLLIN) ready |= kReadable;
  if (revents & POLLOUT) ready |= kWritable;
  if (revents & (POLLERR | POLLHUP | POLLNVAL)) ready |= kReadable | kWritable;
  return ready;
}

class PollPoller final : public Poller {
 public:
  const char* name() const noexcept override { return "poll"; }

  void add(int fd, unsigned interest) override {
    check_interest(kBackend, interest, "add", fd);
    // poll() itself would accept a bad fd and report POLLNVAL forever.
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) throw_poller_errno(kBackend, EBADF, "add", fd);
    if (registered(fd)) throw_poller_errno(kBackend, EEXIST, "add", fd);
    if (static_cast<std::size_t>(fd) >= index_.size()) {
      index_.resize(fd + 1, -1);
      generation_.resize(fd + 1, 0);
    }
    fds_.push_back(pollfd{fd, to_poll(interest), 0});
    index_[fd] = static_cast<int>(fds_.size() - 1);
    ++generation_[fd];
  }

  void modify(int fd, unsigned interest) override {
    check_interest(kBackend, interest, "modify", fd);
    if (!registered(fd)) throw_poller_errno(kBackend, ENOENT, "modify", fd);
    fds_[index_[fd]].events = to_poll(interest);
  }

  void remove(int fd) noexcept override {
    if (!registered(fd)) return;
    const int slot = index_[fd];
    fds_[slot] = fds_.back();
    index_[fds_[slot].fd] = slot;
    fds_.pop_back();
    index_[fd] = -1;
    ++generation_[fd];
    if (next_ >= fds_.size()) next_ = 0;
  }

  int wait(std::int64_t timeout_ns, PollEvent* out, int max) override {
    if (max <= 0) throw std::invalid_argument("fern: poll wait: max must be positive");
    const int n = wait_kernel(timeout_ns);
    return n > 0 ? collect(out, max) : 0;
  }

  bool is_current(const PollEvent& event) const noexcept override {
    return registered(event.fd) && generation_[event.fd] == event.generation;
  }

  // Nothing lives in the kernel between waits.
  std::vector<int> reinit() override { return {}; }

 private:
  bool registered(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < index_.size() && index_[fd] >= 0;
  }

  // ppoll takes a timespec (ns); plain poll gets whole ms rounded up, so
  // neither wakes before timeout_ns has passed. Returns 0 on EINTR.
  int wait_kernel(std::int64_t timeout_ns) {
#ifdef FERN_POLLER_HAVE_PPOLL
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
    const int n = ppoll(fds_.data(), fds_.size(), timeout_ns < 0 ? nullptr : &ts, nullptr);
#else
    int ms = -1;
    if (timeout_ns >= 0) {
      const std::int64_t up = timeout_ns / 1000000 + (timeout_ns % 1000000 != 0);
      ms = up > INT_MAX ? INT_MAX : static_cast<int>(up);
    }
    const int n = poll(fds_.data(), fds_.size(), ms);
#endif
    if (n < 0) {
      if (errno == EINTR) return 0;
      throw_poller_errno(kBackend, errno, "wait");
    }
    return n;
  }

  // Scans from where the previous batch stopped, so that with more than
  // `max` ready fds the ones late in the array are not starved.
  int collect(PollEvent* out, int max) {
    const std::size_t size = fds_.size();
    int count = 0;
    std::size_t i = next_;
    for (std::size_t seen = 0; seen < size && count < max; ++seen) {
      const pollfd& p = fds_[i];
      if (p.revents != 0) {
        out[count++] = PollEvent{p.fd, from_poll(p.revents), generation_[p.fd]};
      }
      i = (i + 1 == size) ? 0 : i + 1;
    }
    next_ = i;
    return count;
  }

  std::vector<pollfd> fds_;                // dense, passed to the kernel
  std::vector<int> index_;                 // by fd; slot in fds_, -1: not registered
  std::vector<std::uint32_t> generation_;  // by fd; bumped by add and remove
  std::size_t next_ = 0;                   // first slot the next collect scans
};

}  // namespace

std::unique_ptr<Poller> make_poll_poller() { return std::make_unique<PollPoller>(); }

}  // namespace fern::detail
