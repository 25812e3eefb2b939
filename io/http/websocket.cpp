#include "fern/io/http/websocket.h"

#include <sys/socket.h>

#include <mutex>

#include "fern/io/http/base64.h"
#include "fern/io/http/sha1.h"
#include "fern/io/http/utf8.h"

namespace fern::http {
namespace {

constexpr std::size_t kMaxControlPayload = 125;  // RFC 6455 5.5

// reading_ is true while it lives.
class Reading {
 public:
  explicit Reading(bool& flag) noexcept : flag_(flag) { flag_ = true; }
  ~Reading() { flag_ = false; }
  Reading(const Reading&) = delete;
  Reading& operator=(const Reading&) = delete;

 private:
  bool& flag_;
};

}  // namespace

bool WebSocket::is_upgrade(const Request& request) noexcept {
  auto upgrade = request.header("Upgrade");
  return upgrade && has_token(*upgrade, "websocket");
}

std::string WebSocket::accept_key(std::string_view key) {
  Sha1 h;
  h.update(key);
  h.update("258EAFA5-E914-47DA-95CA-C5AB0DC85B11");  // RFC 6455's GUID
  auto digest = h.finish();
  return base64_encode(std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

WebSocket WebSocket::accept(Request& request, Response& response, Options options) {
  if (response.headers_sent()) throw std::logic_error("fern http: WebSocket::accept after the response started");
  if (request.method != "GET") throw HttpError(400, "a WebSocket handshake is a GET");
  if (request.version_minor == 0) throw HttpError(400, "a WebSocket handshake is HTTP/1.1 or later");
  if (!is_upgrade(request)) throw HttpError(400, "no Upgrade: websocket");
  auto connection = request.header("Connection");
  if (!connection || !has_token(*connection, "upgrade")) throw HttpError(400, "no Connection: Upgrade");
  auto version = request.header("Sec-WebSocket-Version");
  if (!version || *version != "13")  // RFC 6455 4.4: say which version we speak
    throw HttpError(426, "only WebSocket version 13 is supported").with_header("Sec-WebSocket-Version", "13");
  auto key = request.header("Sec-WebSocket-Key");
  auto raw = key ? base64_decode(*key) : std::nullopt;
  if (!raw || raw->size() != 16) throw HttpError(400, "Sec-WebSocket-Key is not 16 bytes of base64");
  std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: " + accept_key(*key) + "\r\n\r\n";
  response.headers_sent_ = response.finished_ = response.upgraded_ = true;
  request.conn_->send(head);
  auto link = std::make_shared<detail::WebSocketLink>();
  link->conn = request.conn_;
  request.conn_->websocket = link;
  return WebSocket(std::move(link), options);
}

bool WebSocket::next_frame(FrameHeader& header, std::string_view& payload, Deadline deadline) {
  detail::HttpConnection* conn = link_->conn;
  if (!conn) {  // the handler has returned: its connection is gone
    if (close_code_ == 0) close_code_ = close_code::kAbnormal;
    mark_closed();
    return false;
  }
  detail::WebSocketIo io(*link_);
  for (;;) {
    std::string_view in = conn->unconsumed();
    FrameParse p = parse_frame_header(in, options_.max_message);
    if (p.status == FrameParse::kError) {
      fail(p.close_code, p.error);
      return false;
    }
    if (p.status == FrameParse::kDone && in.size() - p.header.header_size >= p.header.length) {
      header = p.header;
      auto len = static_cast<std::size_t>(header.length);
      char* data = const_cast<char*>(in.data()) + header.header_size;  // our own buffer
      unmask(data, len, header.mask);
      payload = std::string_view(data, len);
      conn->consume(header.header_size + len);
      return true;
    }
    if (conn->fill(deadline) != detail::HttpConnection::Fill::kData) {
      mark_closed();
      if (close_code_ == 0) close_code_ = close_code::kAbnormal;
      return false;
    }
  }
}

void WebSocket::mark_closed() noexcept {
  closed_ = true;
  link_->closed.set();
}

std::optional<WebSocket::Message> WebSocket::receive() {
  Reading reading(reading_);
  FrameHeader h;
  std::string_view payload;
  while (!closed_ && next_frame(h, payload, Deadline::never())) {
    switch (h.opcode) {
      case Opcode::kPing:
        if (!link_->close_sent) send_frame(Opcode::kPong, payload);
        continue;
      case Opcode::kPong:
        continue;
      case Opcode::kClose:
        return on_close_frame(payload);
      case Opcode::kText:
      case Opcode::kBinary:
        if (fragmented_) return fail(close_code::kProtocolError, "a new message inside a fragmented one");
        message_.assign(payload.data(), payload.size());
        text_ = h.opcode == Opcode::kText;
        utf8_ = Utf8Validator();
        break;
      case Opcode::kContinuation:
        if (!fragmented_) return fail(close_code::kProtocolError, "a continuation frame without a message");
        if (message_.size() + payload.size() > options_.max_message)
          return fail(close_code::kTooBig, "message too big");
        message_.append(payload.data(), payload.size());
        break;
    }
    // Each fragment is checked as it comes (RFC 6455 8.1): a text message
    // fails at its first byte that can never be UTF-8, not at its end.
    if (text_ && !utf8_.feed(payload)) return fail(close_code::kInvalidData, "text message is not UTF-8");
    fragmented_ = !h.fin;
    if (fragmented_) continue;
    if (text_ && !utf8_.complete()) return fail(close_code::kInvalidData, "text message is not UTF-8");
    Message m{text_, std::move(message_)};
    message_.clear();
    return m;
  }
  return std::nullopt;
}

std::nullopt_t WebSocket::on_close_frame(std::string_view payload) {
  if (payload.size() == 1) return fail(close_code::kProtocolError, "a close frame with a one-byte payload");
  std::uint16_t code = close_code::kNoStatus;
  if (payload.size() >= 2) {
    code = static_cast<std::uint16_t>(static_cast<std::uint8_t>(payload[0]) << 8 | static_cast<std::uint8_t>(payload[1]));
    if (!is_valid_close_code(code)) return fail(close_code::kProtocolError, "an invalid close code");
    if (!is_valid_utf8(payload.substr(2))) return fail(close_code::kInvalidData, "a close reason that is not UTF-8");
  }
  close_code_ = code;
  answer_close(code == close_code::kNoStatus ? close_code::kNormal : code, {});
  mark_closed();
  return std::nullopt;
}

std::nullopt_t WebSocket::fail(std::uint16_t code, const char* why) {
  close_code_ = code;
  answer_close(code, why);
  mark_closed();
  return std::nullopt;
}

// The close frame that ends the connection from our side, unless one went
// already. The peer may be gone by now (a client often closes its socket
// right after its close frame): the WebSocket is closed either way.
void WebSocket::answer_close(std::uint16_t code, std::string_view reason) {
  if (link_->close_sent) return;
  try {
    send_close(code, reason);
  } catch (const std::runtime_error&) {
    // The peer or the connection is gone already (SocketError, WebSocketError).
  }
}

void WebSocket::send_text(std::string_view text) {
  if (!is_valid_utf8(text)) throw std::invalid_argument("fern websocket: send_text needs UTF-8; use send_binary");
  send_frame(Opcode::kText, text);
}

void WebSocket::ping(std::string_view payload) {
  if (payload.size() > kMaxControlPayload)
    throw std::invalid_argument("fern websocket: a ping carries at most 125 bytes");
  send_frame(Opcode::kPing, payload);
}

// Our own reasons (fail()'s) are short ASCII; close() checks the caller's.
// close_sent is set before the write, which may wait: a reader answering
// the client's close meanwhile sends no second one.
void WebSocket::send_close(std::uint16_t code, std::string_view reason) {
  std::string payload;
  payload += static_cast<char>(code >> 8);
  payload += static_cast<char>(code & 0xff);
  payload.append(reason.data(), reason.size());
  check_open();
  link_->close_sent = true;
  write_frame(Opcode::kClose, payload);
}

void WebSocket::check_open() const {
  if (link_->close_sent || closed_) throw WebSocketError("fern websocket: the connection is closed");
}

void WebSocket::send_frame(Opcode opcode, std::string_view payload) {
  check_open();
  write_frame(opcode, payload);
}

// The lock is the link's (on the heap): a greenlet waiting for it when the
// handler returns finds the connection gone, not freed memory.
void WebSocket::write_frame(Opcode opcode, std::string_view payload) {
  char header[10];
  std::size_t n = write_frame_header(header, true, opcode, payload.size());
  std::lock_guard<Lock> whole_frame(link_->frame_lock);
  detail::HttpConnection* conn = link_->conn;
  if (!conn) throw WebSocketError("fern websocket: its handler has returned; the connection is closed");
  detail::WebSocketIo io(*link_);
  conn->send(std::string_view(header, n), payload);
}

void WebSocket::close(std::uint16_t code, std::string_view reason, Duration wait) {
  if (!is_valid_close_code(code))
    throw std::invalid_argument("fern websocket: close code " + std::to_string(code) + " may not be sent");
  if (reason.size() > kMaxControlPayload - 2 || !is_valid_utf8(reason))
    throw std::invalid_argument("fern websocket: a close reason is at most 123 bytes of UTF-8");
  if (closed_) return;
  if (!link_->close_sent) send_close(code, reason);
  if (close_code_ == 0) close_code_ = code;
  Deadline deadline = wait.from_now();
  if (reading_) {
    // Another greenlet is in receive(): it reads the client's close frame
    // and ends the handshake. If none comes in time, its read is ended.
    if (!link_->closed.wait_until(deadline) && !closed_) {
      mark_closed();
      if (detail::HttpConnection* conn = link_->conn) ::shutdown(conn->socket().fd(), SHUT_RD);
    }
    return;
  }
  Reading reading(reading_);
  FrameHeader h;
  std::string_view payload;
  while (!closed_ && next_frame(h, payload, deadline)) {
    if (h.opcode == Opcode::kClose) mark_closed();
  }
  mark_closed();
}

}  // namespace fern::http
