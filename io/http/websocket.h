#pragma once
// A server-side WebSocket (RFC 6455) on an HTTP connection, in the spirit
// of gevent-websocket's environ['wsgi.websocket'].
//
// Mapping from gevent-websocket:
//   handler_class=WebSocketHandler        WebSocket::accept(request, response) in the handler
//   ws = environ['wsgi.websocket']        auto ws = WebSocket::accept(...)
//   ws.send(text) / ws.send(b, binary=True)   ws.send_text(text) / ws.send_binary(bytes)
//   ws.receive() (None once closed)       ws.receive() -> std::optional<Message> (nullopt once closed)
//   ws.close(code, message)               ws.close(code, reason)
//   ws.closed                             ws.closed(); ws.close_code()
// Handled inside receive(): pings are answered with pongs, pongs dropped,
// fragments joined, a close frame answered (the close handshake). A client
// that breaks the protocol gets a close frame with the code that says why
// (1002 protocol error, 1007 text that is not UTF-8, at the first fragment
// that shows it, 1009 a message over max_message), and receive() returns
// nullopt. One greenlet reads at a time; others may send meanwhile: each
// frame is written whole, under the connection's frame lock, and may
// close(): it sends the close frame and leaves the client's answer to the
// reader, which ends the handshake. The connection ends when the handler
// returns: the client gets a close frame (1000) if none was sent
// (gevent-websocket's close() after its application), greenlets blocked
// sending or receiving are woken (a socket error, or nullopt) before it
// goes, and a WebSocket kept longer is closed (WebSocketError on send,
// nullopt on receive, close code 1006). What RFC 6455 forbids a server to
// send is refused with std::invalid_argument before anything is written:
// text that is not UTF-8, a ping payload over 125 bytes, a close code a
// peer may not send (1005, 1006, 1015, reserved or out of range:
// is_valid_close_code), a close reason that is not UTF-8 or over 123 bytes
// (never cut short).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fern/io/http/server.h"
#include "fern/io/http/utf8.h"
#include "fern/io/http/websocket_frame.h"

namespace fern::http {

// Sending on a WebSocket that is closed (gevent-websocket's WebSocketError).
class WebSocketError : public std::runtime_error {
 public:
  explicit WebSocketError(const std::string& what) : std::runtime_error(what) {}
};

class WebSocket {
 public:
  struct Options {
    std::size_t max_message = 16u << 20;  // bytes of one (joined) message; more -> close 1009
  };
  struct Message {
    bool text = true;
    std::string data;
  };

  // True when the request asks for a WebSocket upgrade (Upgrade: websocket).
  static bool is_upgrade(const Request& request) noexcept;
  // Checks the handshake (GET on HTTP/1.1+, Upgrade, Connection: Upgrade,
  // version 13, a 16-byte base64 key) and answers 101 with
  // Sec-WebSocket-Accept; the connection is the WebSocket's from then on.
  // Throws HttpError (400, or 426 with Sec-WebSocket-Version: 13 for another
  // version) when the request is not a valid handshake.
  // Blocks while writing. Usable for the handler's call; closed after it.
  static WebSocket accept(Request& request, Response& response, Options options);
  static WebSocket accept(Request& request, Response& response) { return accept(request, response, Options()); }
  // Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2).
  static std::string accept_key(std::string_view key);

  // The next text or binary message; nullopt once the connection is closed
  // (close_code() says how). Blocks. Socket errors throw.
  std::optional<Message> receive();
  // One frame each. Throw WebSocketError after close; socket errors throw.
  // std::invalid_argument: text that is not UTF-8 (O(n) check), a ping
  // payload over 125 bytes.
  void send_text(std::string_view text);
  void send_binary(std::string_view bytes) { send_frame(Opcode::kBinary, bytes); }
  void ping(std::string_view payload = {});
  // Starts the close handshake and waits (at most `wait`) for the client's
  // close frame, dropping messages meanwhile; while another greenlet is in
  // receive(), that one reads the answer (and gets nullopt) and close()
  // waits for it, ending its read if none comes in time. No-op when closed.
  // std::invalid_argument (nothing sent): a code that is_valid_close_code
  // refuses, a reason that is not UTF-8 or longer than 123 bytes.
  void close(std::uint16_t code = close_code::kNormal, std::string_view reason = {}, Duration wait = 1.0);

  bool closed() const noexcept { return closed_; }
  // The code the client closed with (1005 when its frame had none, 1006
  // when the connection ended without one), or the one we failed it with.
  std::uint16_t close_code() const noexcept { return close_code_; }

 private:
  WebSocket(std::shared_ptr<detail::WebSocketLink> link, Options options)
      : link_(std::move(link)), options_(options) {}
  void send_frame(Opcode opcode, std::string_view payload);
  void write_frame(Opcode opcode, std::string_view payload);
  void check_open() const;
  void send_close(std::uint16_t code, std::string_view reason);
  std::nullopt_t fail(std::uint16_t code, const char* why);
  void answer_close(std::uint16_t code, std::string_view reason);
  std::nullopt_t on_close_frame(std::string_view payload);
  // The next frame's header and its unmasked payload (a view into the
  // connection's buffer, valid until the next call); false at end of stream.
  bool next_frame(FrameHeader& header, std::string_view& payload, Deadline deadline);

  void mark_closed() noexcept;

  std::shared_ptr<detail::WebSocketLink> link_;
  Options options_;
  std::string message_;  // fragments so far
  Utf8Validator utf8_;   // a text message's fragments so far
  bool fragmented_ = false;
  bool text_ = false;
  bool closed_ = false;
  bool reading_ = false;  // a greenlet is in receive() (or close()'s reads)
  std::uint16_t close_code_ = 0;
};

}  // namespace fern::http
