#include "fern/io/http/connection.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "fern/io/http/server.h"
#include "fern/io/socket_error.h"
#include "fern/io/wait.h"

namespace fern::http::detail {
namespace {

constexpr std::size_t kFirstBuffer = 2048;
// A body is read through the same buffer; it never needs more than this
// beyond the head limit.
constexpr std::size_t kBodyWindow = 64 * 1024;

// Idle keep-alive connections give their first-size buffer back to this
// per-thread pool while they wait, as nginx does: an idle connection then
// costs its task and a few small strings, not 2 KiB more.
struct BufferPool {
  std::unique_ptr<char[]> free[64];
  std::size_t count = 0;
  std::unique_ptr<char[]> take() {
    return count > 0 ? std::move(free[--count]) : std::make_unique<char[]>(kFirstBuffer);
  }
  void give(std::unique_ptr<char[]> b) noexcept {
    if (count < std::size(free)) free[count++] = std::move(b);
  }
};
thread_local BufferPool pool;

Deadline io_deadline(const ServerOptions& o) {
  return o.io_timeout ? o.io_timeout->from_now() : Deadline::never();
}

}  // namespace

HttpConnection::HttpConnection(Socket& socket, const ServerOptions& options, IdleList* idle)
    : socket_(socket), options_(options), idle_(idle), parser_(options.limits) {}

void WebSocketLink::retire() noexcept {
  if (!conn) return;
  // The client sees a normal closure, not an abnormal end (1006). Best
  // effort and never blocking (no switch: no frame can start meanwhile):
  // not inside a frame another greenlet is writing (it holds the lock),
  // nothing if the socket's buffer is full.
  if (!close_sent && !frame_lock.locked()) {
    static constexpr char kClose[] = {'\x88', '\x02', '\x03', '\xe8'};  // FIN + close, 2 bytes: 1000
    close_sent = true;
    (void)::send(conn->socket().fd(), kClose, sizeof kClose, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  // Blocked writes see EPIPE; a FIN follows what is queued. Blocked reads
  // see EOF, only if there are any: a read side left open lets the server
  // drain the client's input before closing (see HttpServer::end_websocket).
  ::shutdown(conn->socket().fd(), in_io > 0 ? SHUT_RDWR : SHUT_WR);
  retiring = true;
  try {
    while (in_io > 0) io_done.wait();
  } catch (...) {
    // Killed again while waiting: nothing more can be done for them.
  }
  conn = nullptr;
}

void IdleList::wake_all() noexcept {
  for (HttpConnection* c = head; c; c = c->idle_next_) ::shutdown(c->socket_.fd(), SHUT_RDWR);
}

// On the idle list exactly while it lives, however the wait ends.
class HttpConnection::IdleLink {
 public:
  explicit IdleLink(HttpConnection& c) : c_(c) {
    if (!c_.idle_) return;
    c_.idle_next_ = c_.idle_->head;
    if (c_.idle_next_) c_.idle_next_->idle_prev_ = &c_;
    c_.idle_->head = &c_;
  }
  ~IdleLink() {
    if (!c_.idle_) return;
    if (c_.idle_prev_) c_.idle_prev_->idle_next_ = c_.idle_next_;
    else c_.idle_->head = c_.idle_next_;
    if (c_.idle_next_) c_.idle_next_->idle_prev_ = c_.idle_prev_;
    c_.idle_prev_ = c_.idle_next_ = nullptr;
  }
  IdleLink(const IdleLink&) = delete;
  IdleLink& operator=(const IdleLink&) = delete;

 private:
  HttpConnection& c_;
};

bool HttpConnection::wait_first_byte() {
  if (stopping()) return false;
  // Nothing buffered: wait for readability without a buffer (see BufferPool).
  if (cap_ != 0) {
    if (cap_ == kFirstBuffer) pool.give(std::move(buf_));
    buf_.reset();
    cap_ = begin_ = end_ = 0;
  }
  IdleLink link(*this);
  if (!fern::detail::wait_owned_fd(socket_.fd(), false, Deadline::never())) return false;
  return fill(Deadline::never()) == Fill::kData;
}

void HttpConnection::ensure_space() {
  if (begin_ == end_) {
    begin_ = end_ = 0;
    // Empty, and grown past what a head and a body window need (a big
    // WebSocket message): give it back rather than keep it for the
    // connection's life; the next fill starts from the first size.
    if (cap_ > kBodyWindow) {
      buf_.reset();
      cap_ = 0;
    }
  }
  if (end_ < cap_) return;
  if (begin_ > 0) {  // slide the unconsumed bytes to the front
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    if (end_ < cap_) return;
  }
  std::size_t cap = cap_ == 0 ? kFirstBuffer : cap_ * 2;
  auto grown = cap == kFirstBuffer ? pool.take() : std::make_unique<char[]>(cap);
  if (end_) std::memcpy(grown.get(), buf_.get(), end_);
  buf_ = std::move(grown);
  cap_ = cap;
}

// A socket error thrown by the connection's own socket is the client's (as
// opposed to one of a handler's own sockets'): marked, then passed on. No
// cost unless one is thrown.
template <class F>
auto HttpConnection::client_io(F&& io) -> decltype(io()) {
  try {
    return io();
  } catch (const SocketError&) {
    client_failed_ = true;
    throw;
  }
}

HttpConnection::Fill HttpConnection::fill(Deadline deadline) {
  return client_io([&] { return receive(deadline); });
}

void HttpConnection::send(iovec* iov, int n) {
  client_io([&] { send_all(iov, n); });
}

HttpConnection::Fill HttpConnection::receive(Deadline deadline) {
  ensure_space();
  for (;;) {
    ssize_t n = ::recv(socket_.fd(), buf_.get() + end_, cap_ - end_, 0);
    if (n > 0) {
      end_ += static_cast<std::size_t>(n);
      return Fill::kData;
    }
    if (n == 0) return Fill::kEof;
    int err = errno;
    if (err == EINTR) continue;
    if (err != EAGAIN && err != EWOULDBLOCK) throw_socket_error(err, "recv");
    if (!fern::detail::wait_owned_fd(socket_.fd(), false, deadline)) return Fill::kTimeout;
  }
}

namespace {

// The views of `head` point into `from`; make them point into head_, a
// copy that the body reads cannot move.
void rebase(RequestHead& head, const char* from, const std::string& to) {
  auto move = [&](std::string_view& v) { v = std::string_view(to.data() + (v.data() - from), v.size()); };
  move(head.method);
  move(head.target);
  for (auto& [name, value] : head.headers) {
    move(name);
    move(value);
  }
}

}  // namespace

HttpConnection::Head HttpConnection::read_head(RequestHead& head) {
  parser_.reset();
  head_request_ = false;  // a request too bad to parse gets its error's text
  // The header deadline runs from the request's first byte.
  if (begin_ == end_ && !wait_first_byte()) return Head::kClosed;
  Deadline deadline = options_.header_timeout.from_now();
  for (;;) {
    std::string_view in = unconsumed();
    if (!in.empty()) {
      RequestParser::Result r = parser_.parse(in, head);
      if (r.status == RequestParser::Status::kDone) {
        head_.assign(in.data(), r.consumed);
        rebase(head, in.data(), head_);
        consume(r.consumed);
        start_body(head);
        return Head::kRequest;
      }
      if (r.status == RequestParser::Status::kError) {
        bad_status_ = r.error_status;
        bad_reason_ = r.error;
        send_error(r.error_status, r.error);
        return Head::kAnswered;
      }
      consume(r.consumed);  // empty lines before the request line
    }
    if (fill(deadline) != Fill::kData) return Head::kClosed;  // EOF or slowloris: nothing to answer
  }
}

void HttpConnection::start_body(const RequestHead& head) {
  body_left_ = head.content_length.value_or(0);
  chunked_ = head.chunked;
  decoder_ = ChunkedDecoder();
  body_read_ = 0;
  expect_continue_ = head.expect_continue;
  responded_ = false;
  version_minor_ = head.version_minor;
  head_request_ = head.method == "HEAD";
}

std::size_t HttpConnection::read_body(char* buf, std::size_t n) {
  if (n == 0 || body_done()) return 0;
  // The client waits for a 100 before sending the body; once the final
  // response has begun, a 100 would land inside it: the client may send
  // the body anyway, or not (then the connection is not reused).
  if (expect_continue_ && !responded_) {
    expect_continue_ = false;
    if (begin_ == end_) send("HTTP/1.1 100 Continue\r\n\r\n");
  }
  Deadline deadline = io_deadline(options_);
  for (;;) {
    std::string_view in = unconsumed();
    if (!chunked_ && !in.empty()) {
      std::size_t k = n;
      if (k > in.size()) k = in.size();
      if (k > body_left_) k = static_cast<std::size_t>(body_left_);
      std::memcpy(buf, in.data(), k);
      consume(k);
      body_left_ -= k;
      return k;
    }
    if (chunked_) {
      ChunkedDecoder::Step step = decoder_.next(in, n);
      consume(step.consumed);
      if (step.error) throw HttpError(400, step.error);
      if (!step.data.empty()) {
        body_read_ += step.data.size();
        if (body_read_ > options_.max_body) throw HttpError(413, "request body too large");
        std::memcpy(buf, step.data.data(), step.data.size());
        return step.data.size();
      }
      if (step.done) {
        chunked_ = false;
        return 0;
      }
    }
    Fill f = fill(deadline);
    if (f == Fill::kEof) throw HttpError(400, "the request body ended early");
    if (f == Fill::kTimeout) {
      client_failed_ = true;
      throw SocketTimeout("recv");
    }
  }
}

bool HttpConnection::discard_body() {
  if (body_done()) return true;
  // A client waiting for 100 Continue (none was sent) may send no body: close.
  // Nor is a body dropped for a next request that a stopping server will
  // not serve; stop() ends the wait (as an idle connection's) if it comes.
  if (expect_continue_ || body_too_long_to_drop() || stopping()) return false;
  IdleLink link(*this);
  constexpr std::size_t limit = kMaxDiscard;
  // A client that stalls in a body nobody reads holds the connection no
  // longer than one that stalls in the next request's head.
  Deadline deadline = options_.header_timeout.from_now();
  if (Deadline io = io_deadline(options_); io < deadline) deadline = io;
  for (std::size_t dropped = 0; dropped <= limit;) {
    std::string_view in = unconsumed();
    std::size_t used;
    if (!chunked_) {
      used = in.size() < body_left_ ? in.size() : static_cast<std::size_t>(body_left_);
      body_left_ -= used;
      dropped += used;
    } else {
      ChunkedDecoder::Step step = decoder_.next(in, limit);
      if (step.error) return false;
      used = step.consumed;
      dropped += step.data.size();
      if (step.done) chunked_ = false;
    }
    consume(used);
    if (body_done()) return true;
    if (used == 0 && fill(deadline) != Fill::kData) return false;
  }
  return false;
}

void HttpConnection::send_all(iovec* iov, int n) {
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(n);
  responded_ = true;
  Deadline deadline = Deadline::never();
  bool waited = false;
  for (;;) {
    while (msg.msg_iovlen > 0 && msg.msg_iov->iov_len == 0) {
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen == 0) return;
    ssize_t r = ::sendmsg(socket_.fd(), &msg, MSG_NOSIGNAL);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err != EAGAIN && err != EWOULDBLOCK) throw_socket_error(err, "send");
      if (!waited) {
        deadline = io_deadline(options_);
        waited = true;
      }
      if (!fern::detail::wait_owned_fd(socket_.fd(), true, deadline)) throw SocketTimeout("send");
      continue;
    }
    auto left = static_cast<std::size_t>(r);
    bytes_sent += left;
    while (left > 0) {  // drop what was written from the front of the vector
      iovec& v = *msg.msg_iov;
      std::size_t k = left < v.iov_len ? left : v.iov_len;
      v.iov_base = static_cast<char*>(v.iov_base) + k;
      v.iov_len -= k;
      left -= k;
      if (v.iov_len == 0) {
        ++msg.msg_iov;
        --msg.msg_iovlen;
      }
    }
  }
}

void HttpConnection::send(std::string_view a, std::string_view b) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  send(iov, 2);
}

void HttpConnection::send_error(int status, std::string_view why, std::string_view headers) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n" +
                     std::string(headers) + "Content-Type: text/plain\r\nConnection: close\r\nDate: " + std::string(date()) +
                     "\r\nContent-Length: " + std::to_string(why.size()) + "\r\n\r\n";
  send(head, head_request_ ? std::string_view() : why);  // RFC 9110 9.3.2: no content for HEAD
}

void HttpConnection::linger_close() {
  if (stopping()) return;
  IdleLink link(*this);  // stop() need not wait for a polite close
  try {
    socket_.shutdown(SHUT_WR);
    Deadline deadline = Deadline::after(1.0);
    char scratch[4096];
    for (std::size_t total = 0;;) {
      ssize_t n = ::recv(socket_.fd(), scratch, sizeof scratch, 0);
      if (n > 0) {
        // Past the bound, the close may reset the connection, but only once
        // the client's TCP has acknowledged all of the response (RFC 9112
        // 9.6): a reset discards what our side has not sent yet.
        total += static_cast<std::size_t>(n);
        if (total < 256 * 1024) continue;
        if (unacknowledged() == 0) return;
        // Past the bound: one read per turn of the hub, until the deadline.
        if (!fern::detail::wait_owned_fd(socket_.fd(), false, deadline)) return;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return;
      if (errno != EINTR && !fern::detail::wait_owned_fd(socket_.fd(), false, deadline)) return;
    }
  } catch (const std::exception&) {
    // The peer is gone already: nothing to be polite to.
  }
}

// Bytes of our output the client's TCP has not acknowledged yet (0 if unknown).
std::size_t HttpConnection::unacknowledged() const noexcept {
  int n = 0;
  return ::ioctl(socket_.fd(), TIOCOUTQ, &n) == 0 && n > 0 ? static_cast<std::size_t>(n) : 0;
}

std::string_view HttpConnection::date() {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local std::time_t last = -1;
  thread_local char text[32];
  thread_local std::size_t len = 0;
  std::time_t now = std::time(nullptr);
  if (now != last) {
    std::tm t{};
    gmtime_r(&now, &t);
    int n = std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[t.tm_wday], t.tm_mday,
                          kMonths[t.tm_mon], t.tm_year + 1900, t.tm_hour, t.tm_min, t.tm_sec);
    len = n > 0 ? static_cast<std::size_t>(n) : 0;
    last = now;
  }
  return {text, len};
}

}  // namespace fern::http::detail
