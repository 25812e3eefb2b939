#pragma once
// An HTTP/1.1 server in the spirit of gevent's pywsgi.WSGIServer, with a
// C++ handler instead of a WSGI application: each connection runs in its
// own task on a StreamServer, reads requests one after another (keep-alive
// and pipelining on HTTP/1.1) and calls handler(request, response).
//
// Mapping from pywsgi:
//   WSGIServer(('127.0.0.1', 8000), app)     HttpServer(Address::ip("127.0.0.1", 8000), handler)
//   WSGIServer(listening_socket, app)        HttpServer(std::move(socket), handler)
//   environ['REQUEST_METHOD'], PATH_INFO,    request.method, request.path(), request.query(),
//   QUERY_STRING, SERVER_PROTOCOL            request.version_minor
//   environ['HTTP_X_FOO']                    request.header("X-Foo") (case-insensitive)
//   environ['REMOTE_ADDR']                   request.peer.host()
//   environ['wsgi.input'].read()             request.read_all(), request.read(buf, n)
//   start_response('200 OK', headers)        response.set_status(200); response.add_header(k, v)
//   return [body]                            response.send(body): Content-Length
//   yield chunk (generator app)              response.write(chunk): chunked on 1.1, raw then
//                                            close on 1.0; response.end() (or returning) finishes
//   handler_class=WebSocketHandler           WebSocket::accept(request, response)
//   serve_forever(), start(), stop()         same
// Framing is pywsgi's: a sized body gets Content-Length, a streamed one
// Transfer-Encoding: chunked (HTTP/1.1); an HTTP/1.0 response carries
// Connection: close unless the client asked for keep-alive; a Connection
// (or Date) header the handler sets is the only one, and its "close" ends
// the connection after the response. The framing is
// never ambiguous: a handler's Content-Length bounds the body it sends (a
// short one closes the connection), its Transfer-Encoding is refused, and
// 1xx/204/304 get neither body nor framing headers. The status
// line and headers go out in the same write as the first body bytes, on a
// TCP_NODELAY socket (no Nagle, no delayed-ACK stall). Expect:
// 100-continue gets "100 Continue" when the handler first reads the body,
// unless its response has begun (then none, and the unread body closes:
// a response that begins before the body is asked for says Connection: close).
// Errors: a malformed request gets 400, an oversized request line 414, an
// oversized head 431, a body over max_body 413, transfer codings not
// ending in one chunked 400, an unknown coding before it 501, HTTP/2+ 505, each with Connection: close; a head not complete within
// header_timeout closes the connection (slowloris). A handler that throws a
// std::exception gets 500 (if nothing was sent yet; then the connection
// closes); HttpError(status) gets that status and the error's headers
// (400-599; HttpError refuses any other at construction:
// std::invalid_argument, so a 500). A socket error from the client's own
// connection (it went away, or timed out) ends the connection quietly (a
// read timing out before the response began is answered 408 first); one
// from the handler's own sockets (a dead backend) is a handler failure: 500
// and on_error. GreenletExit and Timeout pass through and end the
// connection. One thread: the hub's.
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "fern/core/deadline.h"
#include "fern/io/address.h"
#include "fern/io/http/connection.h"
#include "fern/io/http/request.h"
#include "fern/io/http/request_parser.h"
#include "fern/io/server.h"

namespace fern::http {

struct ServerOptions {
  ParserLimits limits;
  std::uint64_t max_body = 16u << 20;  // request body bytes; more -> 413
  // From a request's first byte to the end of its head; then the connection
  // is closed (slowloris). Waiting for the next request is not limited;
  // dropping the rest of a body the handler did not read (to reuse the
  // connection) is, by this too (or io_timeout, if shorter).
  Duration header_timeout = 10.0;
  // Each wait while reading a body or writing a response; nullopt: none.
  std::optional<Duration> io_timeout = std::nullopt;
  // Called with a handler's exception before answering 500; default: one
  // line on stderr, "<time> <"GET / HTTP/1.1" from peer> failed with <what>"
  // (the shape of gevent's hub report). Must not throw.
  std::function<void(const std::exception&)> on_error;
  // pywsgi's access log: one line per request on stderr,
  // '127.0.0.1 - - [2026-11-22 11:14:27] "GET / HTTP/1.1" 200 116 0.000337'
  // (peer, local time, request line, status, bytes sent, seconds). Off by
  // default here: it costs a write per request.
  bool access_log = false;
  // pywsgi's error log line for a request too bad to hand to the handler
  // (answered 400, 414, 431, 501 or 505, then closed): one line on stderr,
  // "<time> Invalid request (from 127.0.0.1:5555): malformed request line
  // (400)". On by default, as gevent's.
  bool log_bad_requests = true;
  StreamServer::Options stream;  // backlog, reuse_port, pool
};

// The request a handler sees: the parsed head, the peer, and its body.
class Request : public RequestHead {
 public:
  Address peer;
  // Up to n body bytes into buf; 0 at the end of the body. Blocks. Throws
  // HttpError (400 malformed chunked framing or body cut short, 413 over
  // max_body) and socket errors.
  std::size_t read(char* buf, std::size_t n) { return conn_->read_body(buf, n); }
  // The whole (rest of the) body.
  std::string read_all();

 private:
  friend class HttpServer;
  friend class Response;
  friend class WebSocket;
  detail::HttpConnection* conn_ = nullptr;
};

// What a handler answers. Either send(body) once (sized), or write(chunk)
// any number of times (streamed) and optionally end(). Headers are added
// before the first send/write; the server adds Date (unless the handler
// did) and the framing headers.
class Response {
 public:
  // The status (default 200) and its reason (default: the standard one).
  // std::invalid_argument for a status that is not three digits or a reason
  // with a control character other than HTAB (RFC 9112 4: no CR or LF, so
  // no response splitting).
  void set_status(int status, std::string_view reason = {});
  // Appends a header. std::invalid_argument for a name that is not a token
  // or a value with CR, LF or NUL (no header injection), for
  // Transfer-Encoding (the server frames the body: write() streams it
  // chunked), and for a Content-Length that is not digits or comes twice.
  // A Content-Length set here frames the body: the bytes sent are counted
  // against it (see send and write), and none is added.
  void add_header(std::string_view name, std::string_view value);
  // The whole body with Content-Length, in one write with the head. Blocks.
  // std::logic_error, nothing sent: a body for a 1xx, 204 or 304 status
  // (these get neither body nor framing headers; a 304 keeps a handler's
  // Content-Length), a body longer than the handler's Content-Length, or
  // that header on a 1xx or 204. A shorter body is sent, then the
  // connection closes (Connection: close).
  void send(std::string_view body);
  // One piece of a streamed body; the head goes with the first piece.
  // Empty pieces are skipped. Blocks. std::logic_error before writing a
  // piece that a 1xx/204/304 status or the handler's Content-Length has no
  // room for; a streamed body that ends short of that length closes the
  // connection instead of keeping it.
  void write(std::string_view chunk);
  // Finishes the response (the last chunk when streaming; an empty sized
  // body when nothing was sent). The server calls it after the handler.
  void end();

  int status() const noexcept { return status_; }
  bool headers_sent() const noexcept { return headers_sent_; }
  bool finished() const noexcept { return finished_; }
  // The connection is closed after this response.
  bool will_close() const noexcept { return !keep_alive_; }
  void close_after() noexcept { keep_alive_ = false; }

 private:
  friend class HttpServer;
  friend class WebSocket;
  Response(detail::HttpConnection& conn, const Request& request);
  enum class Framing { kLength, kChunked, kNone };
  void build_head(Framing framing, std::size_t length);
  void send_piece(std::string_view piece);
  void count_body(std::size_t n);
  void close_if_short() noexcept;
  // 1xx, 204 and 304 have no body (RFC 9110 6.4.1).
  bool has_body_status() const noexcept { return status_ >= 200 && status_ != 204 && status_ != 304; }
  detail::HttpConnection* conn_;
  int status_ = 200;
  std::string reason_;
  std::string& headers_;  // "Name: value\r\n"... (the connection's scratch)
  std::string& head_;     // the status line and all headers, as sent
  bool keep_alive_;
  bool client_close_;  // the client asked to close: no need to say so again
  bool http10_;
  bool head_request_;
  bool raw_stream_ = false;  // the handler set Content-Length and streams raw bytes
  std::uint64_t declared_length_ = 0;  // that Content-Length
  std::uint64_t body_sent_ = 0;        // body bytes written (or about to be)
  bool streaming_ = false;
  bool headers_sent_ = false;
  bool finished_ = false;
  bool upgraded_ = false;    // WebSocket took the connection over
  bool own_date_ = false;    // the handler set Date: the server adds none
  bool own_connection_ = false;  // the handler set Connection: likewise (its "close" is honoured)
};

class HttpServer {
 public:
  using Handler = std::function<void(Request&, Response&)>;
  // Binds and listens on start(), as StreamServer (port 0: ephemeral).
  HttpServer(const Address& address, Handler handler, ServerOptions options = {});
  // Serves an already listening socket, as WSGIServer(listener, app) (SRV-1:
  // options.stream.backlog given with it is std::invalid_argument).
  HttpServer(Socket listener, Handler handler, ServerOptions options = {});
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void start();
  // Blocks (switches to the hub) until stop().
  void serve_forever();
  // As StreamServer::stop: closes the listener, waits up to `timeout` for
  // connections, then kills them. Connections waiting between requests end
  // at once. A handler may stop its own server: its connection then ends
  // after this response (Connection: close if not sent yet), and if the
  // server is destroyed before that, the handler is killed first.
  void stop(Duration timeout = 1.0);
  std::uint16_t server_port() const { return server_.server_port(); }
  Address address() const { return server_.address(); }
  std::size_t connection_count() const noexcept { return server_.connection_count(); }

 private:
  void serve(Socket& socket, const Address& peer);
  bool serve_one(detail::HttpConnection& conn, Request& request);
  bool end_websocket(detail::HttpConnection& conn);
  void report(const std::exception& e, const Request& request) const;
  void log(const Request& request, int status, std::uint64_t bytes, Nanos started) const;
  void log_bad_request(const Address& peer, int status, const char* why) const;

  Handler handler_;
  ServerOptions options_;
  detail::IdleList idle_;
  StreamServer server_;
};

}  // namespace fern::http
