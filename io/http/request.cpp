#include "fern/io/http/request.h"

namespace fern::http {
namespace {

char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 tchar, as a table: a method's or a header name's characters
// cost a load each.
struct TcharTable {
  bool ok[256] = {};
  constexpr TcharTable() {
    for (int c = '0'; c <= '9'; ++c) ok[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) ok[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) ok[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) ok[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TcharTable kTchar;

}  // namespace

HttpError::HttpError(int status, const std::string& what) : std::runtime_error(what), status_(status) {
  if (status < 400 || status > 599)
    throw std::invalid_argument("fern http: HttpError takes an error status (400-599), not " + std::to_string(status));
}

HttpError& HttpError::with_header(std::string_view name, std::string_view value) {
  append_header(headers_, name, value);
  return *this;
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  if (!is_token(name)) throw std::invalid_argument("fern http: header name is not a token: " + std::string(name));
  for (char c : value)  // a plain loop: find_first_of calls memchr once per character
    if (c == '\r' || c == '\n' || c == '\0') throw std::invalid_argument("fern http: header value holds CR, LF or NUL");
  out.append(name).append(": ").append(value).append("\r\n");
}

bool parse_content_length(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 18) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  out = v;
  return true;
}

bool is_token(std::string_view s) noexcept {
  for (char c : s)
    if (!kTchar.ok[static_cast<unsigned char>(c)]) return false;
  return !s.empty();
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

std::optional<std::string_view> RequestHead::header(std::string_view name) const noexcept {
  for (const Header& h : headers)
    if (iequals(h.first, name)) return h.second;
  return std::nullopt;
}

std::string_view RequestHead::query() const noexcept {
  std::size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

}  // namespace fern::http
