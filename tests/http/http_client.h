#pragma once
// A small HTTP client for the server tests: raw bytes out, one response
// (Content-Length, chunked, or to end of stream) back.
#include <sys/socket.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "fern/io/address.h"
#include "fern/io/socket.h"

namespace fern::testing {

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers, without the empty line
  std::string body;  // decoded
  bool closed = false;  // the server closed after it
  // True when one of the head's lines is exactly `line`.
  bool has(const std::string& line) const {
    return ("\r\n" + head + "\r\n").find("\r\n" + line + "\r\n") != std::string::npos;
  }
};

class HttpClient {
 public:
  // receive_buffer: SO_RCVBUF before connecting (a small window makes the
  // server's writes partial).
  explicit HttpClient(std::uint16_t port, int receive_buffer = 0) : socket_(AF_INET, SOCK_STREAM) {
    if (receive_buffer) socket_.set_option(SOL_SOCKET, SO_RCVBUF, receive_buffer);
    socket_.connect(Address::ip("127.0.0.1", port));
  }
  void send(const std::string& bytes) { socket_.sendall(bytes); }
  // Reads one response; status 0 when the connection ended before one.
  HttpReply read() {
    HttpReply r;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!more()) return r;
    r.head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    r.status = std::atoi(r.head.c_str() + 9);
    if (r.status == 100 || r.status == 101) return r;
    std::string lower = r.head;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t cl = lower.find("\r\ncontent-length: ");
    if (cl != std::string::npos) {
      std::size_t n = std::strtoul(lower.c_str() + cl + 18, nullptr, 10);
      while (buf_.size() < n && more()) {
      }
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
    } else if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
      for (;;) {
        std::size_t eol;
        while ((eol = buf_.find("\r\n")) == std::string::npos)
          if (!more()) return r;
        std::size_t n = std::strtoul(buf_.c_str(), nullptr, 16);
        while (buf_.size() < eol + 2 + n + 2)
          if (!more()) return r;
        r.body += buf_.substr(eol + 2, n);
        buf_.erase(0, eol + 2 + n + 2);
        if (n == 0) break;
      }
    } else {
      while (more()) {
      }
      r.body = buf_;
      buf_.clear();
    }
    r.closed = eof_;
    return r;
  }
  // True when the server closed the connection (after what was buffered).
  bool at_eof() {
    while (more()) {
    }
    return eof_;
  }
  void close() { socket_.close(); }
  Socket& socket() { return socket_; }
  std::string& buffered() { return buf_; }

 private:
  bool more() {
    if (eof_) return false;
    char tmp[65536];
    std::size_t n = 0;
    try {
      n = socket_.recv_into(tmp, sizeof tmp);
    } catch (const std::system_error&) {  // a reset counts as the end
    }
    if (n == 0) eof_ = true;
    buf_.append(tmp, n);
    return n > 0;
  }
  Socket socket_;
  std::string buf_;
  bool eof_ = false;
};

// A masked client WebSocket frame (RFC 6455 5.2): first_byte is FIN, RSV
// and the opcode; the length takes the 7-bit, 16-bit or 64-bit form.
inline std::string masked_frame(int first_byte, const std::string& payload, const unsigned char (&mask)[4]) {
  std::string f(1, static_cast<char>(first_byte));
  if (payload.size() < 126) {
    f += static_cast<char>(0x80 | payload.size());
  } else if (payload.size() < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(payload.size() >> 8);
    f += static_cast<char>(payload.size() & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) f += static_cast<char>((std::uint64_t{payload.size()} >> shift) & 0xff);
  }
  f.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

}  // namespace fern::testing
