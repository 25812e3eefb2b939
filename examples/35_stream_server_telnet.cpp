// Twin of gevent's tutorial program 35_stream_server_telnet.py: a
// StreamServer whose handler sends a greeting and the lines 0-4, then
// closes the connection (SRV-3, SRV-4).
// Deliberate differences: the reference serves forever on port 5000 while
// its harness connects twice and prints what each connection received
// (the reference's .client.out), then stops it with SIGINT. The twin binds
// an ephemeral port (SRV-7) so parallel runs cannot collide, runs those two
// client connections itself, prints what they received in the harness's
// words, and stops the server, exiting 0.
#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/io/server.h"
#include "fern/io/socket.h"

namespace {

void handle(fern::Socket& socket, const fern::Address&) {
  socket.send("Hello from a telnet!\n");
  for (int i = 0; i < 5; ++i) socket.send(std::to_string(i) + "\n");
  socket.close();
}

// Python's repr of a bytes object, for the printable ASCII the server sends.
std::string bytes_repr(const std::string& s) {
  std::string out = "b'";
  for (char c : s) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out + "'";
}

}  // namespace

int main() {
  fern::StreamServer server(fern::Address::ip("127.0.0.1", 0), handle);
  auto clients = fern::spawn([&server] {  // the harness's client
    for (int n = 1; n <= 2; ++n) {
      fern::Socket c = fern::create_connection("127.0.0.1", server.server_port());
      std::string got, more;
      while (!(more = c.recv(4096)).empty()) got += more;
      std::printf("connection %d received %s\n", n, bytes_repr(got).c_str());
    }
    server.stop();
  });
  server.serve_forever();
  clients.join();
  return 0;
}
