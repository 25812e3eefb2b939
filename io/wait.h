#pragma once
// Cooperative fd waiting: blocks only the calling greenlet.
//
// Mapping from gevent:
//   wait_read(fd, timeout)   wait_read(fd, timeout) -> bool (false: timed out;
//                            gevent raises socket.timeout, STYLE: timeouts are values)
//   wait_write / wait_readwrite   same
//   cancel_wait + close      close(fd): waiters get FdClosedError, then the fd is closed
//   select.select(r, w, x, t)  select(r, w, x, t) -> SelectResult
// One reader and one writer per fd (IO-2): a second is a typed error.
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace fern {

// A second greenlet waiting on the same fd in the same direction (IO-2).
class ConcurrentObjectUseError : public std::logic_error {
 public:
  explicit ConcurrentObjectUseError(const std::string& what) : std::logic_error(what) {}
};

// The fd was closed through fern::close while this greenlet waited on it
// (IO-3). code() is EBADF.
class FdClosedError : public std::system_error {
 public:
  explicit FdClosedError(int fd)
      : std::system_error(EBADF, std::generic_category(),
                          "fern: file descriptor " + std::to_string(fd) + " was closed in another greenlet") {}
};

// Blocks until fd is readable (writable), or `timeout` seconds pass (< 0:
// no limit). True when ready, false on timeout. Throws std::system_error
// (EBADF) for an invalid fd, ConcurrentObjectUseError for a second waiter,
// FdClosedError if closed meanwhile. Regular files are always ready.
bool wait_read(int fd, double timeout = -1);
bool wait_write(int fd, double timeout = -1);
// Either direction: true when readable or writable.
bool wait_readwrite(int fd, double timeout = -1);

// Wakes every greenlet waiting on fd with FdClosedError (scheduled, no
// switch), forgets the fd in the hub, then closes it. Returns close(2)'s result.
int close(int fd) noexcept;

struct SelectResult {
  std::vector<int> readable;
  std::vector<int> writable;
  std::vector<int> exceptional;  // always empty, as gevent's select
};
// Cooperative select (IO-5): returns the ready fds of each list, or empty
// lists after `timeout` (< 0: no limit). select({}, {}, {}, t) is a sleep.
// Throws std::system_error (EBADF) for an invalid or closed fd.
SelectResult select(const std::vector<int>& readable, const std::vector<int>& writable,
                    const std::vector<int>& exceptional, double timeout = -1);

}  // namespace fern
