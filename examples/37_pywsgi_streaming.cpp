// Twin of gevent's tutorial program 37_pywsgi_streaming.py: the application
// is a generator, so pywsgi streams its body: chunked on HTTP/1.1
// (8\r\n<p>Hello\r\n9\r\nWorld</p>\r\n0\r\n\r\n), and on HTTP/1.0 the raw
// bytes with "Connection: close" (the end of the body is the end of the
// connection).
// Deliberate differences: as 36, the twin runs the harness's two requests
// itself on an ephemeral port and stops, exiting 0.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "http_client.h"

namespace {

void application(fern::http::Request&, fern::http::Response& response) {
  response.add_header("Content-Type", "text/html");
  response.write("<p>Hello");
  response.write("World</p>");
}

}  // namespace

int main() {
  fern::http::ServerOptions options;
  options.access_log = true;  // pywsgi's log line per request, on stderr
  fern::http::HttpServer server(fern::Address::ip("127.0.0.1", 0), application, options);
  example::serve_for_client(server, example::client_36);
  return 0;
}
