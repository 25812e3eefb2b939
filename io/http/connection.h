#pragma once
// One HTTP connection's bytes: a receive buffer the request parser and the
// body readers work on, the request body's framing state, and vectored
// writes. Internal to the server, Request, Response and WebSocket; one
// greenlet (the connection's handler task) uses it.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fern/core/deadline.h"
#include "fern/io/http/chunked_decoder.h"
#include "fern/io/http/request.h"
#include "fern/io/http/request_parser.h"
#include "fern/io/socket.h"
#include "fern/sync/event.h"
#include "fern/sync/semaphore.h"

namespace fern::http {

struct ServerOptions;

namespace detail {

class HttpConnection;
struct WebSocketLink;
// The connections waiting for a request's first byte, which stop() may end
// at once: an intrusive list (no allocation), each node unlinks itself.
struct IdleList {
  HttpConnection* head = nullptr;
  // From stop() to the next start(): a connection (the one whose handler
  // called stop(), the only one stop() leaves running) ends after its
  // response, without waiting for another request or a polite close.
  bool stopping = false;
  // Shuts down every idle connection's socket: its wait ends with EOF.
  void wake_all() noexcept;
};

// What a WebSocket shares with its connection, on the heap: a WebSocket may
// be kept (and used by other greenlets) after its handler has returned and
// the connection, on the handler's stack, is gone. The connection's
// destructor shuts the socket down (waking every greenlet blocked in its
// I/O), waits until none is left inside it, and clears `conn`: from then on
// the WebSocket is closed (WebSocketError) and touches nothing freed.
struct WebSocketLink {
  HttpConnection* conn = nullptr;  // null once the handler's connection is gone
  // Held while one frame is written, so that frames sent by two greenlets
  // (a reply to a ping, a message) never interleave.
  Lock frame_lock;
  int in_io = 0;         // greenlets inside conn's I/O (see WebSocketIo)
  bool retiring = false;  // the destructor waits for in_io to reach 0
  Event io_done;
  Event closed;           // the WebSocket closed: the close handshake ended, or failed
  bool close_sent = false;  // our close frame went (or is going) out
  // Ends the WebSocket with its connection: a close frame (1000) if none
  // went yet, as gevent-websocket closes one its handler left open, then
  // the shutdown that wakes the greenlets blocked in its I/O.
  void retire() noexcept;
};

// A WebSocket's I/O on the connection: counted, so that retire() waits for it.
class WebSocketIo {
 public:
  explicit WebSocketIo(WebSocketLink& link) noexcept : link_(link) { ++link_.in_io; }
  ~WebSocketIo() {
    if (--link_.in_io == 0 && link_.retiring) link_.io_done.set();
  }
  WebSocketIo(const WebSocketIo&) = delete;
  WebSocketIo& operator=(const WebSocketIo&) = delete;

 private:
  WebSocketLink& link_;
};

class HttpConnection {
 public:
  HttpConnection(Socket& socket, const ServerOptions& options, IdleList* idle = nullptr);
  ~HttpConnection() {
    if (websocket) websocket->retire();
  }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  enum class Fill { kData, kEof, kTimeout };
  // Receives more bytes after the unconsumed ones. Blocks until some come,
  // the peer ends the stream or the deadline passes; socket errors throw.
  Fill fill(Deadline deadline);
  std::string_view unconsumed() const noexcept {
    return {buf_.get() + begin_, end_ - begin_};
  }
  void consume(std::size_t n) noexcept { begin_ += n; }

  enum class Head { kRequest, kClosed, kAnswered };
  // Reads and parses the next request head into `head` (its views point
  // into a copy that lives until the next call). kClosed: the peer closed
  // between requests or the header deadline passed; kAnswered: the request
  // was bad and its error response was sent (close the connection).
  Head read_head(RequestHead& head);
  // After kAnswered: the status sent and why (a static string).
  int bad_status() const noexcept { return bad_status_; }
  const char* bad_reason() const noexcept { return bad_reason_; }

  // Request body, as framed by the last head. Returns 0 at its end. Sends
  // "100 Continue" first when the client asked for it and nothing was sent
  // for this request yet (never inside a response). Throws HttpError
  // (400 malformed chunk framing or a body cut short, 413 over the limit).
  std::size_t read_body(char* buf, std::size_t n);
  bool body_done() const noexcept { return body_left_ == 0 && !chunked_; }
  // The client waits for a 100 Continue that was not sent before a body it
  // may never send: discard_body() will not wait for it, so a response that
  // begins now must say Connection: close (RFC 9110 10.1.1).
  bool body_awaits_continue() const noexcept { return expect_continue_ && !body_done(); }
  // A keep-alive connection drops at most this much of a body the handler
  // did not read; beyond it, closing is cheaper.
  static constexpr std::size_t kMaxDiscard = 64 * 1024;
  // More of a Content-Length body is left unread than discard_body() drops.
  // (Only once the handler is done: one that streams its answer as it
  // reads the body reads it all. A sized response is the handler's last
  // word, so its head already says Connection: close.)
  bool body_too_long_to_drop() const noexcept { return !chunked_ && body_left_ > kMaxDiscard; }
  // Reads and drops what is left of the body, up to kMaxDiscard bytes, for
  // at most the header timeout (or io_timeout, if shorter): that wait is
  // the next request's. False if more is left or the client stalls (the
  // connection cannot be reused).
  bool discard_body();

  // Writes all of iov[0..n) (blocks: switches to the hub while the socket's
  // buffer is full). Socket errors throw (BrokenPipeError, ...).
  void send(iovec* iov, int n);
  void send(std::string_view a, std::string_view b = {});
  // Sends the status with a short text body (none for a HEAD request) and
  // "Connection: close"; `headers` ("Name: value\r\n"...) go before them.
  void send_error(int status, std::string_view why, std::string_view headers = {});
  // Ends the connection politely: shut down our side, then read and drop
  // what the client still sends (up to its end, or 1 s, or 256 KiB once all
  // of our output is acknowledged), so that closing does not reset the
  // connection under a response it has not received yet.
  void linger_close();
  std::size_t unacknowledged() const noexcept;

  // Scratch strings a Response builds its head in, kept across requests so
  // that a keep-alive connection allocates nothing per request.
  std::string response_headers;
  std::string response_head;
  std::uint64_t bytes_sent = 0;  // over the connection's life (the access log's length)
  // Set by WebSocket::accept: the WebSocket's way to this connection,
  // which the destructor cuts (see WebSocketLink).
  std::shared_ptr<WebSocketLink> websocket;

  // The server was stopped: no request after the current one.
  bool stopping() const noexcept { return idle_ && idle_->stopping; }
  // An error was thrown by this connection's own socket (the client went
  // away or timed out), as opposed to one of a handler's own sockets.
  bool client_failed() const noexcept { return client_failed_; }
  Socket& socket() noexcept { return socket_; }
  const ServerOptions& options() const noexcept { return options_; }
  // The "Date: ..." value of this second (RFC 9110 5.6.7), cached per second.
  static std::string_view date();

 private:
  friend struct IdleList;
  class IdleLink;
  template <class F>
  auto client_io(F&& io) -> decltype(io());
  Fill receive(Deadline deadline);
  void send_all(iovec* iov, int n);
  void ensure_space();
  // Waits for a new request's first byte on the idle list; false: the
  // connection is to end (EOF, or the server is stopping).
  bool wait_first_byte();
  void start_body(const RequestHead& head);

  Socket& socket_;
  const ServerOptions& options_;
  IdleList* idle_;
  HttpConnection* idle_prev_ = nullptr;
  HttpConnection* idle_next_ = nullptr;
  std::unique_ptr<char[]> buf_;  // allocated on the first request
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
  std::string head_;  // the current request head, copied out of buf_
  RequestParser parser_;
  // Body framing of the current request.
  std::uint64_t body_left_ = 0;  // Content-Length bytes not read yet
  bool chunked_ = false;
  ChunkedDecoder decoder_;
  std::uint64_t body_read_ = 0;
  bool expect_continue_ = false;  // the client waits for a 100 that was not sent
  bool responded_ = false;        // bytes were sent since this request's head
  bool client_failed_ = false;
  int version_minor_ = 1;
  bool head_request_ = false;     // a HEAD: error answers carry no body either
  int bad_status_ = 0;            // the last bad request's answer
  const char* bad_reason_ = "";
};

}  // namespace detail
}  // namespace fern::http
