#include <charconv>
#include <stdexcept>

#include "fern/io/http/server.h"

namespace fern::http {
namespace {

void append_number(std::string& out, std::uint64_t n, int base = 10) {
  char digits[24];
  auto r = std::to_chars(digits, digits + sizeof digits, n, base);
  out.append(digits, r.ptr);
}

}  // namespace

Response::Response(detail::HttpConnection& conn, const Request& request)
    : conn_(&conn),
      headers_(conn.response_headers),
      head_(conn.response_head),
      keep_alive_(request.keep_alive),
      client_close_(!request.keep_alive),
      http10_(request.version_minor == 0),
      head_request_(request.method == "HEAD") {
  headers_.clear();
}

void Response::set_status(int status, std::string_view reason) {
  if (headers_sent_) throw std::logic_error("fern http: set_status after the response head was sent");
  if (status < 100 || status > 999) throw std::invalid_argument("fern http: a status is three digits");
  for (char c : reason)  // RFC 9112 4: HTAB, SP, VCHAR, obs-text
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
      throw std::invalid_argument("fern http: a reason phrase holds no control character (CR, LF, ...)");
  status_ = status;
  reason_.assign(reason.data(), reason.size());
}

void Response::add_header(std::string_view name, std::string_view value) {
  if (headers_sent_) throw std::logic_error("fern http: add_header after the response head was sent");
  if (iequals(name, "transfer-encoding"))
    throw std::invalid_argument("fern http: the server frames the body (write() streams it chunked); no Transfer-Encoding");
  bool length = iequals(name, "content-length");
  std::uint64_t n = 0;
  if (length && (!parse_content_length(value, n) || raw_stream_))
    throw std::invalid_argument("fern http: one Content-Length, of digits only");
  append_header(headers_, name, value);
  if (length) {
    raw_stream_ = true;
    declared_length_ = n;
  }
  if (iequals(name, "connection")) {
    own_connection_ = true;
    if (has_token(value, "close")) keep_alive_ = false;
  }
  if (iequals(name, "date")) own_date_ = true;
}

// pywsgi's order: the handler's headers, Connection, Date, then framing.
void Response::build_head(Framing framing, std::size_t length) {
  if (!has_body_status()) {  // RFC 9110 8.6: no framing; 304's Content-Length is the 200's
    if (raw_stream_ && status_ != 304)
      throw std::logic_error("fern http: a 1xx or 204 response has no Content-Length");
    framing = Framing::kNone;
  }
  // A 1xx as the handler's final answer ends the connection: after a 101
  // the bytes that follow are another protocol's (RFC 9110 15.2.2), which
  // the handler that returned cannot speak; after another 1xx the client
  // still waits for a final response that will never come.
  if (status_ < 200) keep_alive_ = false;
  if (conn_->stopping()) keep_alive_ = false;  // a handler stopped its server
  if (conn_->body_awaits_continue()) keep_alive_ = false;  // the body left unread closes
  // A whole response (send(), or end() with nothing written) while more of a
  // Content-Length body is unread than discard_body() drops: the handler is
  // done, the connection will close, and the response says so (RFC 9112 9.6),
  // never keep-alive: a client must not send its next request into the close.
  // (A streamed response may still read the body as it goes: not decided here.)
  if (framing == Framing::kLength && conn_->body_too_long_to_drop()) keep_alive_ = false;
  head_.assign("HTTP/1.1 ");
  append_number(head_, static_cast<std::uint64_t>(status_));
  head_.push_back(' ');
  head_.append(reason_.empty() ? reason_phrase(status_) : std::string_view(reason_));
  head_.append("\r\n").append(headers_);
  // The handler's Connection, if it set one, is the only one (as pywsgi).
  if (!own_connection_ && http10_) head_.append(keep_alive_ ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  else if (!own_connection_ && !keep_alive_ && !client_close_) head_.append("Connection: close\r\n");
  // Date is a singleton field (RFC 9110 5.3): the handler's, if it set one (as pywsgi).
  if (!own_date_) head_.append("Date: ").append(detail::HttpConnection::date()).append("\r\n");
  if (framing == Framing::kLength && !raw_stream_) {
    head_.append("Content-Length: ");
    append_number(head_, length);
    head_.append("\r\n");
  } else if (framing == Framing::kChunked) {
    head_.append("Transfer-Encoding: chunked\r\n");
  }
  head_.append("\r\n");
  headers_sent_ = true;
}

// Before `n` more body bytes go out: what the status and a Content-Length
// set by the handler allow. The body never runs past its framing.
void Response::count_body(std::size_t n) {
  if (n == 0 || head_request_) return;
  if (!has_body_status()) throw std::logic_error("fern http: a 1xx, 204 or 304 response has no body");
  if (raw_stream_ && n > declared_length_ - body_sent_)
    throw std::logic_error("fern http: more body than the Content-Length the handler set");
  body_sent_ += n;
}

// A body shorter than the Content-Length the handler set: the client waits
// for the rest, so the connection cannot carry another response.
void Response::close_if_short() noexcept {
  if (raw_stream_ && body_sent_ < declared_length_ && has_body_status() && !head_request_) keep_alive_ = false;
}

void Response::send(std::string_view body) {
  if (headers_sent_) throw std::logic_error("fern http: send() after the response was started");
  count_body(body.size());
  close_if_short();
  build_head(Framing::kLength, body.size());
  finished_ = true;
  conn_->send(head_, head_request_ ? std::string_view() : body);
}

void Response::write(std::string_view chunk) {
  if (finished_) throw std::logic_error("fern http: write() after the response ended");
  if (chunk.empty()) return;  // an empty chunk would end a chunked body
  count_body(chunk.size());
  if (!headers_sent_) {
    streaming_ = true;
    if (raw_stream_) {
      build_head(Framing::kNone, 0);
    } else if (http10_) {
      keep_alive_ = false;  // no chunking on 1.0: the body ends when the connection does
      build_head(Framing::kNone, 0);
    } else {
      build_head(Framing::kChunked, 0);
    }
    send_piece(chunk);
    return;
  }
  head_.clear();
  send_piece(chunk);
}

// head_ (the response head, or empty) and one piece of the body, framed.
void Response::send_piece(std::string_view piece) {
  if (head_request_) piece = {};
  bool chunked = !raw_stream_ && !http10_;
  char size_line[24];
  std::size_t size_len = 0;
  if (chunked && !piece.empty()) {
    auto r = std::to_chars(size_line, size_line + 20, piece.size(), 16);
    r.ptr[0] = '\r';
    r.ptr[1] = '\n';
    size_len = static_cast<std::size_t>(r.ptr + 2 - size_line);
  }
  iovec iov[4] = {{head_.data(), head_.size()},
                  {size_line, size_len},
                  {const_cast<char*>(piece.data()), piece.size()},
                  {const_cast<char*>("\r\n"), chunked && !piece.empty() ? 2u : 0u}};
  conn_->send(iov, 4);
}

void Response::end() {
  if (finished_) return;
  finished_ = true;
  close_if_short();
  if (!headers_sent_) {
    build_head(Framing::kLength, 0);
    conn_->send(head_);
  } else if (streaming_ && !raw_stream_ && !http10_ && !head_request_) {
    conn_->send("0\r\n\r\n");
  }
}

std::string Request::read_all() {
  std::string out;
  char buf[16384];
  while (std::size_t n = read(buf, sizeof buf)) out.append(buf, n);
  return out;
}

}  // namespace fern::http
