#include "fern/io/http/server.h"

#include <cstdio>
#include <ctime>

#include "fern/core/clock.h"
#include "fern/io/socket_error.h"

namespace fern::http {

HttpServer::HttpServer(const Address& address, Handler handler, ServerOptions options)
    : handler_(std::move(handler)),
      options_(std::move(options)),
      server_(address, [this](Socket& s, const Address& peer) { serve(s, peer); }, options_.stream) {}

HttpServer::HttpServer(Socket listener, Handler handler, ServerOptions options)
    : handler_(std::move(handler)),
      options_(std::move(options)),
      server_(std::move(listener), [this](Socket& s, const Address& peer) { serve(s, peer); }, options_.stream) {}

void HttpServer::serve(Socket& socket, const Address& peer) {
  if (peer.family() == AF_INET || peer.family() == AF_INET6) socket.set_nodelay();
  detail::HttpConnection conn(socket, options_, &idle_);
  Request request;
  request.peer = peer;
  request.conn_ = &conn;
  try {
    while (serve_one(conn, request) && !conn.stopping()) {
    }
  } catch (const SocketError&) {
    // The client reset or timed out between requests: nothing to answer.
  }
}

void HttpServer::stop(Duration timeout) {
  idle_.stopping = true;  // until start(): see IdleList
  idle_.wake_all();
  server_.stop(timeout);
}

void HttpServer::start() {
  idle_.stopping = false;
  server_.start();
}

void HttpServer::serve_forever() {
  idle_.stopping = false;
  server_.serve_forever();
}

// One request and its response; false when the connection is done.
bool HttpServer::serve_one(detail::HttpConnection& conn, Request& request) {
  switch (conn.read_head(request)) {
    case detail::HttpConnection::Head::kRequest: break;
    case detail::HttpConnection::Head::kClosed: return false;
    case detail::HttpConnection::Head::kAnswered:
      if (options_.log_bad_requests) log_bad_request(request.peer, conn.bad_status(), conn.bad_reason());
      conn.linger_close();
      return false;
  }
  if (request.content_length && *request.content_length > options_.max_body) {
    conn.send_error(413, "request body too large");
    conn.linger_close();
    return false;
  }
  Response response(conn, request);
  // The access log's figures: the time and the bytes of this request only.
  struct Logged {
    const HttpServer& server;
    const Request& request;
    const Response& response;
    detail::HttpConnection& conn;
    std::uint64_t bytes_before = conn.bytes_sent;
    Nanos started = server.options_.access_log ? monotonic_now() : 0;
    ~Logged() {
      if (server.options_.access_log && response.headers_sent())
        server.log(request, response.status(), conn.bytes_sent - bytes_before, started);
    }
  } logged{*this, request, response, conn};
  try {
    handler_(request, response);
    if (response.upgraded_) return end_websocket(conn);
    response.end();
  } catch (const HttpError& e) {
    if (response.upgraded_) return end_websocket(conn);
    if (response.headers_sent_) return false;  // cannot answer in the middle of a response
    conn.send_error(e.status(), e.what(), e.headers());
    conn.linger_close();
    return false;
  } catch (const std::exception& e) {
    // The client went away (EPIPE, ECONNRESET): nothing to answer. A
    // client too slow with its body (a timeout before the response began)
    // gets 408 (RFC 9110 15.5.9). A handler's own socket failing is its failure.
    if (conn.client_failed() && dynamic_cast<const SocketError*>(&e)) {
      if (!response.headers_sent_ && !response.upgraded_ && dynamic_cast<const SocketTimeout*>(&e)) {
        try {
          conn.send_error(408, "the request body timed out");
          conn.linger_close();
        } catch (const SocketError&) {  // it does not read either
        }
      }
      return false;
    }
    report(e, request);
    if (response.upgraded_) return end_websocket(conn);
    if (!response.headers_sent_) {
      conn.send_error(500, "Internal Server Error");
      conn.linger_close();
    }
    return false;
  }
  if (response.will_close() || !conn.discard_body()) {
    conn.linger_close();
    return false;
  }
  return true;
}

// A WebSocket ends with its handler: its close frame goes and its other
// greenlets are woken (retire), then the connection closes politely: closing
// with unread input would reset it, and the client would lose what is still
// queued for it (the last messages, the close frame). Always false.
bool HttpServer::end_websocket(detail::HttpConnection& conn) {
  if (conn.websocket) conn.websocket->retire();
  conn.linger_close();
  return false;
}

namespace {
// The error log's time: now in UTC, ISO 8601 ("" if the clock cannot be read).
struct UtcStamp {
  char text[32] = "";
  UtcStamp() noexcept {
    std::time_t now = std::time(nullptr);
    std::tm t{};
    if (gmtime_r(&now, &t)) std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &t);
  }
};
}  // namespace

void HttpServer::log(const Request& request, int status, std::uint64_t bytes, Nanos started) const {
  char stamp[32] = "";
  std::time_t now = std::time(nullptr);
  std::tm t{};
  if (localtime_r(&now, &t)) std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &t);
  std::fprintf(stderr, "%s - - [%s] \"%.*s %.*s HTTP/1.%d\" %d %llu %.6f\n", request.peer.host().c_str(), stamp,
               static_cast<int>(request.method.size()), request.method.data(), static_cast<int>(request.target.size()),
               request.target.data(), request.version_minor, status, static_cast<unsigned long long>(bytes),
               static_cast<double>(monotonic_now() - started) / 1e9);
}

// pywsgi's log_error for invalid client input: "Invalid request (from
// peer): why". The reason is fern's own text, never the client's bytes.
void HttpServer::log_bad_request(const Address& peer, int status, const char* why) const {
  std::fprintf(stderr, "%s Invalid request (from %s): %s (%d)\n", UtcStamp().text, peer.to_string().c_str(), why, status);
}

// pywsgi hands the error to the hub, which prints "<time> <environ> failed
// with <type>"; the same shape, naming the request instead.
void HttpServer::report(const std::exception& e, const Request& request) const {
  if (options_.on_error) return options_.on_error(e);
  std::fprintf(stderr, "%s <\"%.*s %.*s HTTP/1.%d\" from %s> failed with %s\n", UtcStamp().text,
               static_cast<int>(request.method.size()), request.method.data(), static_cast<int>(request.target.size()),
               request.target.data(), request.version_minor, request.peer.to_string().c_str(), e.what());
}

}  // namespace fern::http
