#pragma once
// An incremental HTTP/1.x request-head parser (RFC 9112 sections 2-6) that
// holds no bytes of its own: the caller appends what it receives to one
// buffer and calls parse() again; each call resumes scanning where the last
// one stopped, so a head that arrives a byte at a time costs O(n) in all.
//
// What it accepts: empty lines before the request line (handed back to be
// dropped as they come, counted towards max_head_bytes); a request line
// `token SP target SP HTTP/1.0|1.1`; header lines `token ":" OWS value OWS`
// ending in CRLF (a bare LF is accepted, a bare CR is not). What it
// rejects, with the status the server answers: a folded (obs-fold) or
// otherwise malformed line, a bad or conflicting Content-Length, both
// Content-Length and Transfer-Encoding, Transfer-Encoding on HTTP/1.0, no
// Host on HTTP/1.1, more than one Host (RFC 9112 3.2) -> 400;
// a transfer coding other than chunked -> 501; HTTP/2+ -> 505; a request
// line longer than its limit -> 414 (as pywsgi); a head over its byte or
// line-count limit -> 431. A bad request line (or 414) is an error as soon
// as its line ends, before the rest of the head.
#include <cstddef>
#include <string_view>

#include "fern/io/http/request.h"

namespace fern::http {

struct ParserLimits {
  std::size_t max_request_line = 8192;  // pywsgi's MAX_REQUEST_LINE
  std::size_t max_head_bytes = 65536;   // request line and all headers
  std::size_t max_headers = 100;
};

class RequestParser {
 public:
  enum class Status { kNeedMore, kDone, kError };
  struct Result {
    Status status;
    // kDone: the head's length in the buffer. kNeedMore: the bytes of empty
    // lines at its front, which the next call's buffer must no longer hold.
    std::size_t consumed = 0;
    int error_status = 0;      // kError: the HTTP status to answer (400, 414, 431, 501, 505)
    const char* error = "";    // kError: why, for a log line or the response body
  };

  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Parses the head at the start of `buf` (all bytes received so far of this
  // request, including the ones seen by earlier calls, minus the empty lines
  // an earlier kNeedMore reported as consumed) into `out`, whose views point
  // into `buf`. Never throws, never reads past buf.size().
  Result parse(std::string_view buf, RequestHead& out);
  // Forgets the scanning position: the next parse() starts a new request.
  void reset() noexcept {
    scanned_ = skipped_ = 0;
    request_line_seen_ = false;
  }

 private:
  Result fail(int status, const char* why);
  // The whole head; line_parsed: its request line is in `out` already,
  // parsed from this same buffer.
  Result finish(std::string_view head, RequestHead& out, bool line_parsed) const;
  Result parse_request_line(std::string_view line, RequestHead& out) const;
  Result parse_header_line(std::string_view line, RequestHead& out) const;
  Result apply_framing(RequestHead& out) const;

  ParserLimits limits_;
  std::size_t scanned_ = 0;  // where to look for the next LF
  std::size_t skipped_ = 0;  // empty-line bytes before the request line, dropped by the caller
  bool request_line_seen_ = false;
};

}  // namespace fern::http
