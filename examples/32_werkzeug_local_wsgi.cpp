// Twin of gevent's tutorial program 32_werkzeug_local_wsgi.py: a request
// context kept in a greenlet-local (gevent.local.local behind werkzeug's
// LocalProxy), set around the handler's logic by a context manager, so
// logic() reads "the current request" without being passed it (LOC-1).
// Deliberate differences: the reference serves forever on port 8000 and its
// harness sent one request (the reference's .client.out); the twin binds an
// ephemeral port, sends that request itself, prints what came back in the
// harness's words, and stops, exiting 0.
#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/sync/local.h"
#include "http_client.h"

namespace {

struct RequestContext {
  const fern::http::Request* request = nullptr;
};
fern::local<RequestContext> requests;  // _requests = local()

// contextmanager sessionmanager(environ): the request is current inside.
class SessionManager {
 public:
  explicit SessionManager(const fern::http::Request& r) { requests->request = &r; }
  ~SessionManager() { requests->request = nullptr; }
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;
};

std::string logic() { return "Hello " + requests->request->peer.host(); }

void application(fern::http::Request& request, fern::http::Response& response) {
  std::string body;
  {
    SessionManager session(request);
    body = logic();
  }
  response.add_header("Content-Type", "text/html");
  response.send(body);
}

}  // namespace

int main() {
  fern::http::ServerOptions options;
  options.access_log = true;  // pywsgi's log line per request, on stderr
  fern::http::HttpServer server(fern::Address::ip("127.0.0.1", 0), application, options);
  example::serve_for_client(server, [](std::uint16_t port) {
    std::printf("GET / HTTP/1.1 (Connection: close) ->\n");
    example::show_http(example::raw_http(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  });
  return 0;
}
