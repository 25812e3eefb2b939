#pragma once
// Cooperative fd waiting: blocks only the calling greenlet.
//
// Mapping from gevent:
//   wait_read(fd)            wait_read(fd)
//   wait_read(fd, timeout)   wait_read_for(fd, seconds or chrono), wait_read(fd, Deadline)
//                            -> bool (false: timed out; gevent raises socket.timeout,
//                            STYLE: timeouts are values)
//   wait_write / wait_readwrite   same
//   cancel_wait + close      close(fd): waiters get FdClosedError, then the fd is closed
//   select.select(r, w, x)   select(r, w, x) -> SelectResult
//   select.select(r, w, x, t)  select_for(r, w, x, t), select(r, w, x, Deadline)
// Any number of greenlets may wait on one fd, as gevent's watchers; a
// Socket's own operations take one reader and one writer (IO-2): a second is
// a typed error.
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "fern/core/deadline.h"
#include "fern/core/exceptions.h"  // ConcurrentObjectUseError (IO-2)
#include "fern/io/socket_error.h"

namespace fern {

// The fd was closed through fern::close (or its Socket closed) while this
// greenlet waited on it (IO-3). code() is EBADF, op() "wait". A SocketError,
// as gevent's is a socket.error: `catch (const SocketError&)` around socket
// calls sees a close under the call as it sees a call on a closed socket.
class FdClosedError : public SocketError {
 public:
  explicit FdClosedError(int fd)
      : SocketError(EBADF, "wait", "fern: file descriptor " + std::to_string(fd) + " was closed in another greenlet") {}
};

// Blocks until fd is readable (writable), or the deadline passes. True when
// ready, false on timeout. Throws std::system_error
// (EBADF) for an invalid fd, FdClosedError if closed meanwhile. Regular
// files are always ready. Any number of greenlets may wait on one fd (as
// gevent's wait_read, a watcher each): readiness wakes them all. A Socket's
// own operations take one greenlet per direction (IO-2).
bool wait_read(int fd, Deadline deadline = Deadline::never());
bool wait_write(int fd, Deadline deadline = Deadline::never());
// Either direction: true when readable or writable.
bool wait_readwrite(int fd, Deadline deadline = Deadline::never());
inline bool wait_read_for(int fd, Duration d) { return wait_read(fd, d.from_now()); }
inline bool wait_write_for(int fd, Duration d) { return wait_write(fd, d.from_now()); }
inline bool wait_readwrite_for(int fd, Duration d) { return wait_readwrite(fd, d.from_now()); }

namespace detail {
// wait_read / wait_write for an fd that is closed only through fern::close
// (a Socket's): the poller keeps its interest between waits, so a wait that
// follows a wait costs no syscall.
bool wait_owned_fd(int fd, bool write, Deadline deadline);
// What fern::close does before close(2): greenlets of this thread's hub
// waiting on fd wake with FdClosedError, and the hub forgets the fd.
void cancel_waiters(int fd) noexcept;
}  // namespace detail

// Wakes every greenlet waiting on fd with FdClosedError (scheduled, no
// switch), forgets the fd in the hub, then closes it. Returns close(2)'s result.
int close(int fd) noexcept;

struct SelectResult {
  std::vector<int> readable;
  std::vector<int> writable;
  std::vector<int> exceptional;  // always empty, as gevent's select
};
// Cooperative select (IO-5): returns the ready fds of each list, or empty
// lists once the deadline passes. select({}, {}, {}, d) is a sleep; with no
// fds and no deadline nothing can wake the caller: LoopExit in main.
// Throws std::system_error (EBADF) for an invalid or closed fd.
SelectResult select(const std::vector<int>& readable, const std::vector<int>& writable,
                    const std::vector<int>& exceptional, Deadline deadline = Deadline::never());
inline SelectResult select_for(const std::vector<int>& readable, const std::vector<int>& writable,
                               const std::vector<int>& exceptional, Duration d) {
  return select(readable, writable, exceptional, d.from_now());
}

}  // namespace fern
