// Twin of gevent's tutorial program 39_websocket_server.py: a
// gevent-websocket application that sends {"x": n, "y": random 1..5} as
// JSON every 0.5 s on each WebSocket, forever.
// Deliberate differences: the reference serves forever on port 10000 and
// its harness read four messages with Python's websocket-client (the
// reference's .client.out); the twin binds an ephemeral port, reads those
// four messages itself with a small client, prints them in the harness's
// words, and stops, exiting 0.
#include <cstdio>
#include <random>
#include <string>

#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/io/http/websocket.h"
#include "http_client.h"

namespace {

void websocket_app(fern::http::Request& request, fern::http::Response& response) {
  auto ws = fern::http::WebSocket::accept(request, response);
  std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<int> y(1, 5);
  for (int x = 0;; ++x) {
    ws.send_text("{\"x\": " + std::to_string(x) + ", \"y\": " + std::to_string(y(random)) + "}");
    fern::sleep(0.5);
  }
}

// The integer after "key": in a flat JSON object.
int json_int(const std::string& json, const char* key) {
  std::size_t at = json.find(std::string("\"") + key + "\": ");
  return at == std::string::npos ? -1 : std::stoi(json.substr(at + std::char_traits<char>::length(key) + 4));
}

}  // namespace

int main() {
  fern::http::HttpServer server(fern::Address::ip("127.0.0.1", 0), websocket_app);
  example::serve_for_client(server, [](std::uint16_t port) {
    example::WsClient ws(port);
    fern::Deadline t0 = fern::Deadline::now();
    for (int i = 0; i < 4; ++i) {
      std::string message = ws.recv();
      int x = json_int(message, "x"), y = json_int(message, "y");
      std::printf("t=%.1fs x=%d y in 1..5: %s\n", static_cast<double>(fern::Deadline::now().nanos() - t0.nanos()) / 1e9,
                  x, 1 <= y && y <= 5 ? "True" : "False");
    }
    ws.close();
  });
  return 0;
}
