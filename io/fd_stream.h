#pragma once
// A cooperative pipe or other stream fd (read(2)/write(2), not a socket):
// owns the fd, non-blocking underneath; blocking calls park only the caller.
// Used for subprocess pipes; errors as Socket's (SocketError family).
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "fern/core/deadline.h"
#include "fern/io/socket_error.h"

namespace fern {

class FdStream {
 public:
  FdStream() noexcept = default;
  // Takes ownership of fd and makes it non-blocking and close-on-exec.
  explicit FdStream(int fd);
  FdStream(FdStream&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  FdStream& operator=(FdStream&& o) noexcept;
  FdStream(const FdStream&) = delete;
  FdStream& operator=(const FdStream&) = delete;
  ~FdStream() { close(); }

  int fd() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Blocks until some bytes arrive (0 at end of stream) or the deadline
  // passes (SocketTimeout).
  std::size_t read(void* buf, std::size_t n, Deadline d = Deadline::never());
  std::string read(std::size_t max, Deadline d = Deadline::never());
  // Reads to end of stream.
  std::string read_all(Deadline d = Deadline::never());
  // Blocks until some bytes are written; how many.
  std::size_t write(const void* buf, std::size_t n, Deadline d = Deadline::never());
  // Writes everything (partial writes handled); BrokenPipeError if the
  // reader is gone, never SIGPIPE. On a closed stream SocketError EBADF,
  // even for nothing.
  void write_all(std::string_view data, Deadline d = Deadline::never());
  // Closes; a greenlet blocked on the fd wakes with FdClosedError.
  void close() noexcept;

 private:
  int fd_ = -1;
};

}  // namespace fern
