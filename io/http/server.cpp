#include "fern/io/http/server.h"

#include <cstdio>

#include "fern/io/socket_error.h"

namespace fern::http {
namespace {

// A keep-alive connection drops at most this much of a body the handler
// did not read; beyond it, closing is cheaper.
constexpr std::size_t kMaxDiscard = 64 * 1024;

}  // namespace

HttpServer::HttpServer(const Address& address, Handler handler, ServerOptions options)
    : handler_(std::move(handler)),
      options_(std::move(options)),
      server_(address, [this](Socket& s, const Address& peer) { serve(s, peer); }, options_.stream) {}

void HttpServer::serve(Socket& socket, const Address& peer) {
  if (peer.family() == AF_INET || peer.family() == AF_INET6) socket.set_nodelay();
  detail::HttpConnection conn(socket, options_, &idle_);
  Request request;
  request.peer = peer;
  request.conn_ = &conn;
  try {
    while (serve_one(conn, request)) {
    }
  } catch (const SocketError&) {
    // The client reset or timed out between requests: nothing to answer.
  }
}

void HttpServer::stop(Duration timeout) {
  idle_.stopping = true;
  idle_.wake_all();
  server_.stop(timeout);
  idle_.stopping = false;
}

// One request and its response; false when the connection is done.
bool HttpServer::serve_one(detail::HttpConnection& conn, Request& request) {
  switch (conn.read_head(request)) {
    case detail::HttpConnection::Head::kRequest: break;
    case detail::HttpConnection::Head::kClosed: return false;
    case detail::HttpConnection::Head::kAnswered: conn.linger_close(); return false;
  }
  if (request.content_length && *request.content_length > options_.max_body) {
    conn.send_error(413, "request body too large");
    conn.linger_close();
    return false;
  }
  Response response(conn, request);
  try {
    handler_(request, response);
    if (response.upgraded_) return false;
    response.end();
  } catch (const HttpError& e) {
    if (response.headers_sent_) return false;  // cannot answer in the middle of a response
    conn.send_error(e.status(), e.what());
    conn.linger_close();
    return false;
  } catch (const SocketError&) {
    return false;  // the client went away (EPIPE, ECONNRESET, a timeout): nothing to answer
  } catch (const std::exception& e) {
    report(e);
    if (!response.headers_sent_) {
      conn.send_error(500, "Internal Server Error");
      conn.linger_close();
    }
    return false;
  }
  if (response.will_close() || !conn.discard_body(kMaxDiscard)) {
    conn.linger_close();
    return false;
  }
  return true;
}

void HttpServer::report(const std::exception& e) const {
  if (options_.on_error) options_.on_error(e);
  else std::fprintf(stderr, "fern http: the handler raised, answering 500: %s\n", e.what());
}

}  // namespace fern::http
