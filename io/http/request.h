#pragma once
// A parsed HTTP/1.x request head (pywsgi's environ, minus the body): the
// method, target, version and headers as views into the bytes it was parsed
// from, and what the headers mean for framing (Content-Length or chunked,
// keep-alive, Expect: 100-continue). A value type the parser fills; the
// server keeps the bytes alive for the handler's call.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fern::http {

// An HTTP error status with its reason, thrown by the parser's callers and
// by a request body reader (e.g. 413 once a chunked body passes the limit).
// The server answers it with that status when nothing was sent yet. The
// status is a client or server error, 400-599: any other (42, 200, 99999)
// throws std::invalid_argument from the constructor, so a handler's
// `throw HttpError(200, ...)` reaches the server as that error: a 500.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& what);
  int status() const noexcept { return status_; }
  // Adds a header to the error response (e.g. Allow for 405,
  // Sec-WebSocket-Version for 426); checked as Response::add_header.
  HttpError& with_header(std::string_view name, std::string_view value);
  // "Name: value\r\n"... as added.
  const std::string& headers() const noexcept { return headers_; }

 private:
  int status_;
  std::string headers_;
};

// RFC 9110 token (1*tchar): what a method or a header name is made of.
bool is_token(std::string_view s) noexcept;
// ASCII case-insensitive equality (header names, tokens). No allocation.
bool iequals(std::string_view a, std::string_view b) noexcept;
// True when the comma-separated list `value` holds `token` (case-insensitive),
// e.g. has_token("keep-alive, Upgrade", "upgrade").
bool has_token(std::string_view value, std::string_view token) noexcept;
// Appends "name: value\r\n" to out. std::invalid_argument for a name that
// is not a token or a value with CR, LF or NUL (no header injection).
void append_header(std::string& out, std::string_view name, std::string_view value);
// A Content-Length value: 1*DIGIT that fits in 63 bits (at most 18 digits).
bool parse_content_length(std::string_view s, std::uint64_t& out) noexcept;
// "200" -> "OK"; "" for a status it does not know.
std::string_view reason_phrase(int status) noexcept;

struct RequestHead {
  using Header = std::pair<std::string_view, std::string_view>;

  std::string_view method;  // "GET"
  std::string_view target;  // "/path?query", as sent
  int version_minor = 1;    // HTTP/1.<minor>: 0 or 1
  std::vector<Header> headers;  // in order, values without surrounding whitespace

  std::optional<std::uint64_t> content_length;  // a Content-Length body
  bool chunked = false;                         // Transfer-Encoding: chunked
  bool keep_alive = true;       // 1.1 unless "Connection: close"; 1.0 only with "keep-alive"
  bool expect_continue = false;  // "Expect: 100-continue" (HTTP/1.1)

  // The first header called `name` (case-insensitive); nullopt when absent.
  // O(number of headers), no allocation.
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  // The path part of the target (before '?').
  std::string_view path() const noexcept { return target.substr(0, target.find('?')); }
  // The query part of the target (after '?'; empty when none).
  std::string_view query() const noexcept;
};

}  // namespace fern::http
