#include "fern/io/fd_stream.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "fern/io/wait.h"

namespace fern {
namespace {

// write(2) to a pipe whose reader is gone raises SIGPIPE; there is no
// MSG_NOSIGNAL for pipes. Block it in this thread for the call and consume
// the one the write raised, unless one was already pending (libcurl's way).
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  void consume() {
    if (was_pending_) return;
    timespec zero{};
    while (sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ~SigpipeGuard() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t set_;
  sigset_t old_;
  bool was_pending_;
};

}  // namespace

FdStream::FdStream(int fd) : fd_(fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int err = errno;
    fd_ = -1;
    throw SocketError(err, "fcntl");
  }
}

FdStream& FdStream::operator=(FdStream&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

std::size_t FdStream::read(void* buf, std::size_t n, Deadline d) {
  for (;;) {
    if (fd_ < 0) throw SocketError(EBADF, "read");
    ssize_t r = ::read(fd_, buf, n);
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) throw_socket_error(errno, "read");
    if (!wait_read(fd_, d)) throw SocketTimeout("read");
  }
}

std::string FdStream::read(std::size_t max, Deadline d) {
  std::string s(max, '\0');
  s.resize(read(s.data(), max, d));
  return s;
}

std::string FdStream::read_all(Deadline d) {
  std::string out;
  std::string buf(65536, '\0');  // on the heap: greenlet stacks are small
  while (std::size_t n = read(buf.data(), buf.size(), d)) out.append(buf.data(), n);
  return out;
}

std::size_t FdStream::write(const void* buf, std::size_t n, Deadline d) {
  for (;;) {
    if (fd_ < 0) throw SocketError(EBADF, "write");
    ssize_t r;
    int err = 0;
    {
      SigpipeGuard guard;
      r = ::write(fd_, buf, n);
      if (r < 0) err = errno;
      if (err == EPIPE) guard.consume();
    }
    if (r >= 0) return static_cast<std::size_t>(r);
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) throw_socket_error(err, "write");
    if (!wait_write(fd_, d)) throw SocketTimeout("write");
  }
}

void FdStream::write_all(std::string_view data, Deadline d) {
  // Nothing to write still needs an open stream (as write's system call does).
  if (fd_ < 0) throw SocketError(EBADF, "write");
  while (!data.empty()) data.remove_prefix(write(data.data(), data.size(), d));
}

void FdStream::close() noexcept {
  if (fd_ >= 0) fern::close(std::exchange(fd_, -1));
}

}  // namespace fern
