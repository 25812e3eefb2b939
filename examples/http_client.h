#pragma once
// The reference harness's HTTP client (seed-examples/_clients.py: raw_http
// and _show_http), for the HTTP twins: sends raw request bytes, reads the
// answer, and prints it the way the harness did (Date masked, the body as
// Python's repr of bytes).
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/http/server.h"
#include "fern/io/socket.h"

namespace example {

// Python's repr() of a bytes object.
inline std::string bytes_repr(const std::string& s) {
  char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (unsigned char c : s) {
    if (c == '\\' || c == static_cast<unsigned char>(quote)) out += '\\', out += static_cast<char>(c);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + quote;
}

// Sends `request` and reads until the server closes (or for `read_for`
// seconds when given, as the harness's long-polling client).
inline std::string raw_http(std::uint16_t port, const std::string& request,
                            std::optional<double> read_for = std::nullopt) {
  fern::Socket s = fern::create_connection("127.0.0.1", port, 15.0);  // urllib timeout=15
  s.sendall(request);
  std::string data;
  fern::Deadline end = read_for ? fern::Deadline::after(*read_for) : fern::Deadline::never();
  for (;;) {
    if (read_for) {
      double left = static_cast<double>(end.nanos() - fern::Deadline::now().nanos()) / 1e9;
      if (left <= 0) break;
      s.set_timeout(left);
    }
    std::string chunk;
    try {
      chunk = s.recv(65536);
    } catch (const fern::SocketTimeout&) {
      break;
    }
    if (chunk.empty()) break;
    data += chunk;
  }
  return data;
}

inline void show_http(const std::string& data) {
  std::size_t split = data.find("\r\n\r\n");
  std::string head = data.substr(0, split);
  std::string body = split == std::string::npos ? std::string() : data.substr(split + 4);
  for (std::size_t pos = 0; pos <= head.size();) {
    std::size_t eol = head.find("\r\n", pos);
    if (eol == std::string::npos) eol = head.size();
    std::string line = head.substr(pos, eol - pos);
    if (line.size() >= 5 && (line.compare(0, 5, "Date:") == 0 || line.compare(0, 5, "date:") == 0))
      line = "Date: <varies>";
    std::printf("  %s\n", line.c_str());
    pos = eol + 2;
  }
  std::printf("  <blank line>\n  body: %s\n", bytes_repr(body).c_str());
}

// What the reference's harness did around a server that serves forever:
// runs `client(port)` against the started server, then stops it (where the
// harness sent SIGINT). Returns when both are done.
template <class Client>
void serve_for_client(fern::http::HttpServer& server, Client client) {
  server.start();
  auto harness = fern::spawn([&server, &client] {
    client(server.server_port());
    server.stop();
  });
  server.serve_forever();
  harness.join();
}

// The harness's client_36 (and client_37): one HTTP/1.1 request with
// Connection: close, then one HTTP/1.0 request.
inline void client_36(std::uint16_t port) {
  std::printf("GET / HTTP/1.1 (Connection: close) ->\n");
  show_http(raw_http(port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  std::printf("GET / HTTP/1.0 ->\n");
  show_http(raw_http(port, "GET / HTTP/1.0\r\n\r\n"));
}

// The harness's WebSocket client (websocket-client's create_connection,
// recv and close), enough for a server that sends text frames.
class WsClient {
 public:
  explicit WsClient(std::uint16_t port) : socket_(fern::create_connection("127.0.0.1", port, 10.0)) {
    socket_.sendall("GET / HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) more();
    if (buf_.compare(0, 12, "HTTP/1.1 101") != 0) throw std::runtime_error("handshake refused: " + buf_);
    buf_.erase(0, end + 4);
  }
  // The next text or binary message's payload (control frames skipped).
  std::string recv() {
    for (;;) {
      while (buf_.size() < 2) more();
      auto b1 = static_cast<unsigned char>(buf_[1]);
      std::size_t len = b1 & 0x7f, pos = 2;
      if (len >= 126) {
        std::size_t bytes = len == 126 ? 2 : 8;
        while (buf_.size() < 2 + bytes) more();
        len = 0;
        for (std::size_t i = 0; i < bytes; ++i) len = len << 8 | static_cast<unsigned char>(buf_[2 + i]);
        pos += bytes;
      }
      while (buf_.size() < pos + len) more();
      int opcode = buf_[0] & 0x0f;
      std::string payload = buf_.substr(pos, len);
      buf_.erase(0, pos + len);
      if (opcode < 8) return payload;
    }
  }
  // Sends a masked close frame (1000) and closes.
  void close() {
    const char frame[] = {'\x88', '\x82', 1, 2, 3, 4, '\x03' ^ 1, '\xe8' ^ 2};
    socket_.sendall(std::string_view(frame, sizeof frame));
    socket_.close();
  }

 private:
  void more() {
    std::string chunk = socket_.recv(65536);
    if (chunk.empty()) throw std::runtime_error("connection closed");
    buf_ += chunk;
  }
  fern::Socket socket_;
  std::string buf_;
};

}  // namespace example
