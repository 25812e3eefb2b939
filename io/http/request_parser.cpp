#include "fern/io/http/request_parser.h"

#include <cstdint>

namespace fern::http {
namespace {

using Result = RequestParser::Result;
using Status = RequestParser::Status;

Result error(int status, const char* why) { return Result{Status::kError, 0, status, why}; }

// field-vchar, SP and HTAB (obs-text included); no CTL, no DEL.
bool is_value_char(unsigned char c) noexcept { return c == '\t' || (c >= 0x20 && c != 0x7f); }
// The visible ASCII of a request target.
bool is_target_char(unsigned char c) noexcept { return c > 0x20 && c < 0x7f; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result RequestParser::parse(std::string_view buf, RequestHead& out) {
  // Empty lines before the request line are skipped (RFC 9112 2.2). They
  // count towards the head's byte limit, and a kNeedMore hands them back to
  // the caller to drop, so a flood of them neither grows the buffer nor is
  // scanned twice.
  std::size_t start = 0;
  while (start < buf.size() &&
         (buf[start] == '\n' || (buf[start] == '\r' && start + 1 < buf.size() && buf[start + 1] == '\n')))
    start += buf[start] == '\r' ? 2 : 1;
  if (scanned_ < start) scanned_ = start;
  bool line_checked_here = false;  // out's request line points into this buf
  // Find the empty line that ends the head: an LF followed by LF or CRLF.
  // An LF whose next line is not known yet is looked at again next time.
  for (;;) {
    std::size_t lf = buf.find('\n', scanned_);
    if (lf == std::string_view::npos) {
      scanned_ = buf.size();
      break;
    }
    if (!request_line_seen_) {
      if (lf - start > limits_.max_request_line) return fail(414, "request line too long");
      // A bad request line is answered at once, as pywsgi does, not when
      // (if ever) the head ends. Parsed from a buffer of an earlier call,
      // it is parsed again by finish() (its views would point there).
      std::string_view line = buf.substr(start, lf - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      Result r = parse_request_line(line, out);
      if (r.status == Status::kError) return fail(r.error_status, r.error);
      request_line_seen_ = true;
      line_checked_here = true;
    }
    if (lf + 1 >= buf.size() || (buf[lf + 1] == '\r' && lf + 2 >= buf.size())) {
      scanned_ = lf;  // the next line is not known yet
      break;
    }
    std::size_t end = 0;
    if (buf[lf + 1] == '\n') end = lf + 2;
    else if (buf[lf + 1] == '\r' && buf[lf + 2] == '\n') end = lf + 3;
    if (end != 0) {
      if (skipped_ + end > limits_.max_head_bytes) return fail(431, "request head too large");
      reset();
      Result r = finish(buf.substr(start, end - start), out, line_checked_here);
      if (r.status == Status::kDone) r.consumed = end;
      return r;
    }
    scanned_ = lf + 1;
  }
  if (!request_line_seen_ && buf.size() - start > limits_.max_request_line)
    return fail(414, "request line too long");
  skipped_ += start;
  if (skipped_ + buf.size() - start > limits_.max_head_bytes) return fail(431, "request head too large");
  scanned_ -= start;
  return Result{Status::kNeedMore, start};
}

Result RequestParser::fail(int status, const char* why) {
  reset();
  return error(status, why);
}

Result RequestParser::finish(std::string_view head, RequestHead& out, bool line_parsed) const {
  out.headers.clear();  // keeps its capacity: no allocation per request
  out.content_length.reset();
  out.chunked = out.expect_continue = false;
  bool first = true;
  if (line_parsed) {  // the request line's fields are out's already
    head.remove_prefix(head.find('\n') + 1);
    first = false;
  }
  while (!head.empty()) {
    std::size_t lf = head.find('\n');
    std::string_view line = head.substr(0, lf);
    head.remove_prefix(lf + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the empty line that ends the head
    Result r = first ? parse_request_line(line, out) : parse_header_line(line, out);
    if (r.status == Status::kError) return r;
    first = false;
  }
  return apply_framing(out);
}

Result RequestParser::parse_request_line(std::string_view line, RequestHead& out) const {
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return error(400, "malformed request line");
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return error(400, "malformed request line");
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(out.method)) return error(400, "malformed method");
  if (out.target.empty()) return error(400, "empty request target");
  for (char c : out.target)
    if (!is_target_char(static_cast<unsigned char>(c))) return error(400, "malformed request target");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return error(400, "malformed HTTP version");
  if (version[5] != '1') return error(505, "HTTP version not supported");
  out.version_minor = version[7] == '0' ? 0 : 1;  // 1.2+ is served as 1.1 (RFC 9110 2.5)
  return Result{Status::kDone};
}

Result RequestParser::parse_header_line(std::string_view line, RequestHead& out) const {
  if (line.front() == ' ' || line.front() == '\t') return error(400, "obsolete line folding in a header");
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return error(400, "header line without a colon");
  std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return error(400, "malformed header name");
  std::string_view value = trim_ows(line.substr(colon + 1));
  for (char c : value)
    if (!is_value_char(static_cast<unsigned char>(c))) return error(400, "control character in a header value");
  if (out.headers.size() >= limits_.max_headers) return error(431, "too many headers");
  out.headers.emplace_back(name, value);
  return Result{Status::kDone};
}

Result RequestParser::apply_framing(RequestHead& out) const {
  bool has_te = false, close = false;
  // The transfer codings of every Transfer-Encoding field, in order: RFC
  // 9112 6.3 needs chunked last (else the body's length is unknowable: 400),
  // 6.1 forbids it twice (400); another coding before it is one fern does
  // not decode (501).
  bool chunked_last = false, other_coding = false;
  int chunked = 0;
  int hosts = 0;
  out.keep_alive = out.version_minor == 1;
  for (const auto& [name, value] : out.headers) {
    if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      if (!parse_content_length(value, n)) return error(400, "malformed Content-Length");
      if (out.content_length && *out.content_length != n) return error(400, "conflicting Content-Length");
      out.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      if (out.version_minor == 0) return error(400, "Transfer-Encoding in an HTTP/1.0 request");
      has_te = true;
      for (std::string_view list = value; !list.empty();) {
        std::size_t comma = list.find(',');
        std::string_view coding = trim_ows(list.substr(0, comma));
        list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
        if (coding.empty()) continue;  // empty list elements are allowed (RFC 9110 5.6.1)
        chunked_last = iequals(coding, "chunked");
        if (chunked_last) ++chunked;
        else other_coding = true;
      }
    } else if (iequals(name, "connection")) {
      // "close" in any Connection header wins, whatever follows (RFC 9112 9.6).
      if (has_token(value, "close")) close = true;
      else if (out.version_minor == 0 && has_token(value, "keep-alive")) out.keep_alive = true;
    } else if (iequals(name, "expect")) {
      out.expect_continue = out.version_minor == 1 && iequals(value, "100-continue");
    } else if (iequals(name, "host")) {
      ++hosts;
    }
  }
  if (has_te) {
    if (!chunked_last || chunked > 1) return error(400, "chunked is not the final transfer coding, once");
    if (other_coding) return error(501, "unsupported transfer coding");
    out.chunked = true;
  }
  if (close) out.keep_alive = false;
  // RFC 9112 3.2: which host a request is for must be unambiguous.
  if (hosts > 1) return error(400, "more than one Host header");
  if (hosts == 0 && out.version_minor == 1) return error(400, "an HTTP/1.1 request without Host");
  // Both framings at once is how requests are smuggled (RFC 9112 6.3).
  if (out.chunked && out.content_length) return error(400, "both Content-Length and Transfer-Encoding");
  return Result{Status::kDone};
}

}  // namespace fern::http
