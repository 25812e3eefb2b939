// Twin of gevent's tutorial program 38_long_polling.py: a producer puts
// "Hello World" on a queue once a second; each request gets an endless
// chunked JSON stream, one chunk per item ("Hello World" as JSON and a
// newline: 14 bytes, "e\r\n...\r\n"), waiting up to 5 s per item.
// Deliberate differences: the reference serves forever on port 8000 and its
// harness read the stream for 3.5 s (the reference's .client.out); the twin
// binds an ephemeral port, reads for those 3.5 s itself, prints what came in
// the harness's words, then stops the server (ending the stream) and the
// producer, exiting 0.
#include <cstdio>
#include <string>

#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/sync/queue.h"
#include "http_client.h"

int main() {
  fern::Queue<std::string> data_source;
  auto producer = fern::spawn([&data_source] {
    for (;;) {
      data_source.put_nowait("Hello World");
      fern::sleep(1.0);
    }
  });
  fern::http::HttpServer server(
      fern::Address::ip("127.0.0.1", 0), [&data_source](fern::http::Request&, fern::http::Response& response) {
        response.add_header("Content-Type", "application/json");
        for (;;) {
          if (auto datum = data_source.get_for(5.0)) response.write("\"" + *datum + "\"\n");  // json.dumps
        }
      });
  example::serve_for_client(server, [](std::uint16_t port) {
    fern::Deadline t0 = fern::Deadline::now();
    std::printf("GET / HTTP/1.1, reading the streamed body for 3.5 s ->\n");
    example::show_http(example::raw_http(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 3.5));
    std::printf("  (read for %.1f s)\n", static_cast<double>(fern::Deadline::now().nanos() - t0.nanos()) / 1e9);
  });
  producer.kill();
  return 0;
}
