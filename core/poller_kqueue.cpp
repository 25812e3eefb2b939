// kqueue backend (macOS and the BSDs); mirrors poller_epoll.cpp. kqueue
// keys interest by (fd, filter), so one fern registration is up to two
// kevents, EVFILT_READ and EVFILT_WRITE, both carrying the generation in
// udata; wait() merges the two events of one fd in a batch into one
// PollEvent. Level-triggered (no EV_CLEAR), for the reason given in
// poller_epoll.cpp: a waiter that does not drain its fd is reported again.
#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__)

#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/poller.h"
#include "fern/core/poller_backend.h"

namespace fern::detail {

namespace {

constexpr char kBackend[] = "kqueue";

int new_kqueue_fd() {
  const int fd = kqueue();
  if (fd < 0) throw_poller_errno(kBackend, errno, "kqueue");
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    const int err = errno;
    close(fd);
    throw_poller_errno(kBackend, err, "fcntl(FD_CLOEXEC)");
  }
  return fd;
}

class KqueuePoller final : public Poller {
 public:
  KqueuePoller() : kq_(new_kqueue_fd()), owner_(getpid()) {}
  // A fork child did not inherit kq_: its number may name another file now.
  ~KqueuePoller() override {
    if (owner_ == getpid()) close(kq_);
  }
  KqueuePoller(const KqueuePoller&) = delete;
  KqueuePoller& operator=(const KqueuePoller&) = delete;

  const char* name() const noexcept override { return "kqueue"; }

  void add(int fd, unsigned interest) override {
    check_interest(kBackend, interest, "add", fd);
    if (fd < 0) throw_poller_errno(kBackend, EBADF, "add", fd);
    if (registered(fd)) throw_poller_errno(kBackend, EEXIST, "add", fd);
    grow(fd);  // may throw bad_alloc: before any kernel state changes
    const std::uint32_t generation = generation_[fd] + 1;
    if (const int err = change(fd, kNone, interest, generation)) throw_poller_errno(kBackend, err, "add", fd);
    generation_[fd] = generation;
    interest_[fd] = interest;
  }

  void modify(int fd, unsigned interest) override {
    check_interest(kBackend, interest, "modify", fd);
    if (!registered(fd)) throw_poller_errno(kBackend, ENOENT, "modify", fd);
    if (const int err = change(fd, interest_[fd], interest, generation_[fd])) {
      throw_poller_errno(kBackend, err, "modify", fd);
    }
    interest_[fd] = interest;
  }

  void remove(int fd) noexcept override {
    if (!registered(fd)) return;
    // Fails only when the fd was closed first; close dropped its kevents.
    change(fd, interest_[fd], kNone, generation_[fd]);
    interest_[fd] = kNone;
    ++generation_[fd];
  }

  int wait(std::int64_t timeout_ns, PollEvent* out, int max) override {
    if (max <= 0) throw std::invalid_argument("fern: kqueue wait: max must be positive");
    if (events_.size() < static_cast<std::size_t>(max)) events_.resize(max);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
    // kevent sleeps at least the timespec it is given: never early.
    const int n = kevent(kq_, nullptr, 0, events_.data(), max,
                         timeout_ns < 0 ? nullptr : &ts);
    if (n < 0) {
      if (errno == EINTR) return 0;
      throw_poller_errno(kBackend, errno, "wait");
    }
    return merge(n, out);
  }

  bool is_current(const PollEvent& event) const noexcept override {
    return registered(event.fd) && generation_[event.fd] == event.generation;
  }

  // The child of fork() has no kqueue (kqueue(2): "not inherited by a
  // child"), so the old number is left alone there and only closed when
  // reinit() is called in the process that created it.
  std::vector<int> reinit() override {
    const int fresh = new_kqueue_fd();
    if (owner_ == getpid()) close(kq_);
    kq_ = fresh;
    owner_ = getpid();
    std::vector<int> dropped;
    for (std::size_t i = 0; i < interest_.size(); ++i) {
      const int fd = static_cast<int>(i);
      if (interest_[i] == kNone) continue;
      if (change(fd, kNone, interest_[i], generation_[i]) == 0) continue;
      // Keep the table equal to the kernel's set (fd closed without remove()).
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
      slot_.resize(fd + 1, -1);
    }
  }

  // One kevent per call, so an error names its own change. Returns 0 or errno.
  int apply(int fd, short filter, unsigned short flags, std::uint32_t generation) {
    struct kevent ev;
    EV_SET(&ev, static_cast<uintptr_t>(fd), filter, flags, 0, 0,
           reinterpret_cast<void*>(static_cast<std::uintptr_t>(generation)));
    return kevent(kq_, &ev, 1, nullptr, 0, nullptr) < 0 ? errno : 0;
  }

  // Moves fd's kevents from interest `from` to `to`: adds first, so a failed
  // add (EBADF, or EVFILT_WRITE on an fd type without it) leaves `from`
  // registered exactly as before.
  int change(int fd, unsigned from, unsigned to, std::uint32_t generation) {
    const unsigned added = to & ~from;
    const unsigned dropped = from & ~to;
    if (added & kReadable) {
      if (const int err = apply(fd, EVFILT_READ, EV_ADD, generation)) return err;
    }
    if (added & kWritable) {
      if (const int err = apply(fd, EVFILT_WRITE, EV_ADD, generation)) {
        if (added & kReadable) apply(fd, EVFILT_READ, EV_DELETE, generation);
        return err;
      }
    }
    int err = 0;
    if (dropped & kReadable) err = apply(fd, EVFILT_READ, EV_DELETE, generation);
    if (dropped & kWritable) {
      const int w = apply(fd, EVFILT_WRITE, EV_DELETE, generation);
      if (err == 0) err = w;
    }
    return err;
  }

  // Merges the READ and WRITE kevents of one fd into one PollEvent (slot_
  // remembers where an fd went in this batch) and drops stale events.
  // EV_EOF (hangup) and EV_ERROR wake both directions. O(n), no allocation.
  int merge(int n, PollEvent* out) {
    int count = 0;
    for (int i = 0; i < n; ++i) {
      const struct kevent& kev = events_[i];
      const int fd = static_cast<int>(kev.ident);
      const auto generation =
          static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(kev.udata));
      if (!registered(fd) || generation_[fd] != generation) continue;
      unsigned ready = kev.filter == EVFILT_READ ? kReadable : kWritable;
      if (kev.flags & (EV_EOF | EV_ERROR)) ready = kReadable | kWritable;
      if (slot_[fd] >= 0) {
        out[slot_[fd]].ready |= ready;
        continue;
      }
      slot_[fd] = count;
      out[count++] = PollEvent{fd, ready, generation};
    }
    for (int i = 0; i < count; ++i) slot_[out[i].fd] = -1;
    return count;
  }

  int kq_;
  pid_t owner_;                            // the process kq_ belongs to
  std::vector<unsigned> interest_;         // by fd; kNone: not registered
  std::vector<std::uint32_t> generation_;  // by fd; bumped by add and remove
  std::vector<int> slot_;                  // by fd; -1 outside merge()
  std::vector<struct kevent> events_;      // kernel batch, grown to max once
};

}  // namespace

std::unique_ptr<Poller> make_kqueue_poller() { return std::make_unique<KqueuePoller>(); }

}  // namespace fern::detail

#endif  // kqueue platforms
