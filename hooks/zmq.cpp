// zmq.green's loop: try with ZMQ_DONTWAIT; on EAGAIN read ZMQ_EVENTS (which
// also consumes the ZMQ_FD signal) and, only when the wanted event is not
// there, park on ZMQ_FD's readability; then try again.
#include "fern/hooks/zmq.h"

#include <cerrno>
#include <chrono>
#include <optional>

#include "fern/config.h"
#include "fern/core/hub.h"
#include "fern/io/wait.h"

#if FERN_TSAN
// libzmq (the distribution's, not built with -fsanitize=thread) hands
// messages between its I/O threads and the caller through lock-free pipes
// ThreadSanitizer cannot see: every such hand-off looks like a race. Weak,
// so that a program's own suppressions replace these.
extern "C" [[gnu::weak]] const char* __tsan_default_suppressions() { return "race:libzmq.so\n"; }
#endif

namespace fern::zmq {
namespace {

bool can_park() noexcept {
  Hub* hub = Hub::current_if_exists();
  return hub != nullptr && !hub->in_hub();
}

// The call's deadline from ZMQ_RCVTIMEO / ZMQ_SNDTIMEO (milliseconds, -1:
// none), read at its first wait, as libzmq's blocking call counts it.
// false (with zmq_errno) when the option cannot be read.
bool call_deadline(void* socket, int want, Deadline& deadline) {
  int ms = -1;
  std::size_t size = sizeof ms;
  if (zmq_getsockopt(socket, want == ZMQ_POLLIN ? ZMQ_RCVTIMEO : ZMQ_SNDTIMEO, &ms, &size) < 0) return false;
  deadline = ms < 0 ? Deadline::never() : Deadline::after(std::chrono::milliseconds(ms));
  return true;
}

// 0 when `want` (ZMQ_POLLIN / ZMQ_POLLOUT) is there, else -1 with zmq_errno
// (EAGAIN: the deadline passed, as libzmq's blocking call ends at its timeout).
int wait_for_event(void* socket, int want, Deadline deadline) {
  int fd = -1;
  std::size_t fd_size = sizeof fd;
  if (zmq_getsockopt(socket, ZMQ_FD, &fd, &fd_size) < 0) return -1;
  for (;;) {
    int events = 0;
    std::size_t size = sizeof events;
    if (zmq_getsockopt(socket, ZMQ_EVENTS, &events, &size) < 0) return -1;
    if (events & want) return 0;
    if (!wait_read(fd, deadline)) {
      errno = EAGAIN;
      return -1;
    }
  }
}

template <class Op>
int green(void* socket, int flags, int want, Op op) {
  if ((flags & ZMQ_DONTWAIT) || !can_park()) return op(flags);
  std::optional<Deadline> deadline;
  for (;;) {
    int r = op(flags | ZMQ_DONTWAIT);
    if (r >= 0 || zmq_errno() != EAGAIN) return r;
    if (!deadline && !call_deadline(socket, want, deadline.emplace())) return -1;
    if (wait_for_event(socket, want, *deadline) < 0) return -1;
  }
}

}  // namespace

ZmqError::ZmqError(int err, const std::string& op)
    : std::runtime_error("fern: " + op + " failed: " + zmq_strerror(err)), err_(err) {}

int send(void* socket, const void* buf, std::size_t len, int flags) {
  return green(socket, flags, ZMQ_POLLOUT, [&](int f) { return zmq_send(socket, buf, len, f); });
}

int recv(void* socket, void* buf, std::size_t len, int flags) {
  return green(socket, flags, ZMQ_POLLIN, [&](int f) { return zmq_recv(socket, buf, len, f); });
}

int msg_send(zmq_msg_t* msg, void* socket, int flags) {
  return green(socket, flags, ZMQ_POLLOUT, [&](int f) { return zmq_msg_send(msg, socket, f); });
}

int msg_recv(zmq_msg_t* msg, void* socket, int flags) {
  return green(socket, flags, ZMQ_POLLIN, [&](int f) { return zmq_msg_recv(msg, socket, f); });
}

void send(void* socket, std::string_view data, int flags) {
  if (send(socket, data.data(), data.size(), flags) < 0) throw ZmqError(zmq_errno(), "zmq_send");
}

std::string recv(void* socket, int flags) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  struct Close {
    zmq_msg_t* m;
    ~Close() { zmq_msg_close(m); }
  } close{&msg};
  if (msg_recv(&msg, socket, flags) < 0) throw ZmqError(zmq_errno(), "zmq_msg_recv");
  return std::string(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
}

}  // namespace fern::zmq
