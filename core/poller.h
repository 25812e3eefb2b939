#pragma once
// The poller contract, identical for every backend (epoll, kqueue, poll):
// interest per fd, a wait with a timeout, a batch of (fd, readiness).
//
// One registration per fd carries both directions. Every event carries the
// fd's registration generation: when dispatching a batch, skip an event for
// which is_current() is false (its fd was removed, or removed and added again,
// earlier in the same batch), so a callback may close or re-register fds
// freely. Not thread-safe: one poller belongs to one hub (one thread).
#include <cstdint>
#include <memory>
#include <vector>
#include <string_view>

namespace fern {

enum Readiness : unsigned {
  kNone = 0,
  kReadable = 1,
  kWritable = 2,
};

struct PollEvent {
  int fd;
  unsigned ready;        // kReadable | kWritable; errors and hangups report both
  std::uint32_t generation;
};

class Poller {
 public:
  virtual ~Poller() = default;

  // The backend CMake chose for this platform (FERN_POLLER_BACKEND).
  static std::unique_ptr<Poller> create();
  // A backend by name ("epoll", "kqueue", "poll"); nullptr if not built here.
  static std::unique_ptr<Poller> create(std::string_view backend);

  virtual const char* name() const noexcept = 0;

  // Registers fd with a non-empty interest (kReadable | kWritable).
  // Throws std::system_error (EBADF for an invalid fd, EEXIST if registered,
  // EPERM for a regular file under epoll...) and std::invalid_argument for
  // an empty interest.
  virtual void add(int fd, unsigned interest) = 0;
  // Changes a registered fd's interest (non-empty). Throws std::system_error
  // (ENOENT if fd is not registered).
  virtual void modify(int fd, unsigned interest) = 0;
  // Unregisters fd; call before closing it. Unknown fds are ignored.
  virtual void remove(int fd) noexcept = 0;

  // Waits until an fd is ready or timeout_ns passes (-1: no limit; 0: just
  // look), never returning early because of rounding; fills up to `max`
  // events and returns how many (0 on timeout or signal interruption).
  virtual int wait(std::int64_t timeout_ns, PollEvent* out, int max) = 0;

  // False when the event's fd was removed or re-added since the wait.
  virtual bool is_current(const PollEvent& event) const noexcept = 0;

  // After fork(), in the child: a fresh kernel object with the same
  // registrations (the parent's epoll/kqueue instance must not be shared).
  // Returns the fds it could not register again (closed without remove(),
  // whose number may name no file or another one now), dropped from its
  // table: the caller ends their waits. Throws only if no kernel object can
  // be made.
  virtual std::vector<int> reinit() = 0;
};

}  // namespace fern
