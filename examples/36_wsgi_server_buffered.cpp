// Twin of gevent's tutorial program 36_wsgi_server_buffered.py: a pywsgi
// server whose application returns its whole body at once, so the response
// is sized (Content-Length: 18); an HTTP/1.0 client also gets
// "Connection: close".
// Deliberate differences: the reference serves forever on port 8000 and its
// harness sent two requests (the reference's .client.out); the twin binds an
// ephemeral port, sends those two requests itself, prints what came back in
// the harness's words, and stops, exiting 0. pywsgi's access log goes to
// stderr as there.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "http_client.h"

namespace {

void application(fern::http::Request&, fern::http::Response& response) {
  response.add_header("Content-Type", "text/html");
  response.send("<p>Hello World</p>");
}

}  // namespace

int main() {
  fern::http::ServerOptions options;
  options.access_log = true;  // pywsgi's log line per request, on stderr
  fern::http::HttpServer server(fern::Address::ip("127.0.0.1", 0), application, options);
  example::serve_for_client(server, example::client_36);
  return 0;
}
