// The HTTP/1.1 request parser (issue 10): heads, framing, limits and the
// status each malformed request gets; a head fed a byte at a time parses
// the same as one fed whole.
#include "fern/io/http/request_parser.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

using fern::http::ParserLimits;
using fern::http::RequestHead;
using fern::http::RequestParser;
using Status = RequestParser::Status;

RequestParser::Result parse(const std::string& text, RequestHead& head, ParserLimits limits = {}) {
  RequestParser p(limits);
  return p.parse(text, head);
}

int error_of(const std::string& text, ParserLimits limits = {}) {
  RequestHead head;
  RequestParser::Result r = parse(text, head, limits);
  return r.status == Status::kError ? r.error_status : 0;
}

TEST(RequestParser, ParsesRequestLineAndHeadersWithCaseInsensitiveLookup) {
  RequestHead h;
  std::string text = "GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nX-Thing:  two words \t\r\n\r\nrest";
  auto r = parse(text, h);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, text.size() - 4);
  EXPECT_EQ(h.method, "GET");
  EXPECT_EQ(h.target, "/a/b?x=1");
  EXPECT_EQ(h.path(), "/a/b");
  EXPECT_EQ(h.query(), "x=1");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.header("host"), "example");
  EXPECT_EQ(h.header("X-THING"), "two words");
  EXPECT_FALSE(h.header("Missing"));
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.content_length);
  EXPECT_FALSE(h.chunked);
}

TEST(RequestParser, NeedsMoreUntilTheEmptyLine) {
  RequestHead h;
  RequestParser p;
  std::string text = "GET / HTTP/1.1\r\nHost: x\r\n";
  EXPECT_EQ(p.parse(text, h).status, Status::kNeedMore);
  text += "\r";
  EXPECT_EQ(p.parse(text, h).status, Status::kNeedMore);
  text += "\n";
  EXPECT_EQ(p.parse(text, h).status, Status::kDone);
}

TEST(RequestParser, FedOneByteAtATimeParsesAsWhole) {
  const std::string text = "\r\nPOST /p HTTP/1.1\r\nHost: x\r\nA: 1\r\nContent-Length: 3\r\n\r\nabc";
  for (const char* eol : {"\r\n", "\n"}) {
    std::string t = text;
    if (std::string(eol) == "\n")
      for (std::size_t at; (at = t.find("\r\n")) != std::string::npos;) t.erase(at, 1);
    RequestParser p;
    RequestHead h;
    std::size_t end = t.size() - 3;
    for (std::size_t n = 0; n <= t.size(); ++n) {
      auto r = p.parse(std::string_view(t).substr(0, n), h);
      if (n < end) {
        ASSERT_EQ(r.status, Status::kNeedMore) << "prefix " << n << " eol " << (eol[0] == '\r' ? "CRLF" : "LF");
      } else {
        ASSERT_EQ(r.status, Status::kDone) << n;
        EXPECT_EQ(r.consumed, end);
        EXPECT_EQ(h.method, "POST");
        EXPECT_EQ(h.header("a"), "1");
        EXPECT_EQ(h.content_length, 3u);
        p.reset();
      }
    }
  }
}

TEST(RequestParser, ConnectionAndVersionDecideKeepAlive) {
  RequestHead h;
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", h).status, Status::kDone);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", h).status, Status::kDone);
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", h).status, Status::kDone);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\n", h).status, Status::kDone);
  EXPECT_TRUE(h.keep_alive);
}

// "close" wins over a keep-alive in a later Connection header (RFC 9112
// 9.6): the order of the headers does not decide whether the server closes.
TEST(RequestParser, CloseInAnyConnectionHeaderWinsOverKeepAlive) {
  RequestHead h;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", h).status, Status::kDone);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", h).status, Status::kDone);
  EXPECT_FALSE(h.keep_alive);
}

TEST(RequestParser, ChunkedAndExpectContinueAreRecognised) {
  RequestHead h;
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\nExpect: 100-continue\r\n\r\n", h).status,
            Status::kDone);
  EXPECT_TRUE(h.chunked);
  EXPECT_TRUE(h.expect_continue);
  ASSERT_EQ(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n", h).status, Status::kDone);
  EXPECT_FALSE(h.expect_continue);  // 1.0 clients do not wait for it
}

TEST(RequestParser, MalformedRequestsGet400) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);  // obs-fold
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\n\tfolded: x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nHost : a\r\n\r\n"), 400);  // space before the colon
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nA: b\x01" "c\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n"), 400);  // bare CR
  EXPECT_EQ(error_of("GET /  HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1 \r\n\r\n"), 400);
  EXPECT_EQ(error_of("G(T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTQ/1.1\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

TEST(RequestParser, RepeatedEqualContentLengthIsAccepted) {
  RequestHead h;
  const std::string text = "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n";
  ASSERT_EQ(parse(text, h).status, Status::kDone);
  EXPECT_EQ(h.content_length, 2u);
}

TEST(RequestParser, UnknownTransferCodingGets501AndNewMajorVersion505) {
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\n\r\n"), 505);
}

// RFC 9112 6.3: without chunked as the final coding the body's length cannot
// be known, and 6.1: chunked is applied once. Both are 400, not 501.
TEST(RequestParser, ChunkedNotFinalOrTwiceGets400) {
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n"), 400);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"), 400);
  RequestHead h;  // empty list elements and OWS around them are allowed
  ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked ,\r\n\r\n", h).status, Status::kDone);
  EXPECT_TRUE(h.chunked);
}

TEST(RequestParser, LimitsGive414And431EvenBeforeTheHeadEnds) {
  ParserLimits small;
  small.max_request_line = 32;
  small.max_head_bytes = 128;
  small.max_headers = 3;
  EXPECT_EQ(error_of("GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", small), 414);
  EXPECT_EQ(error_of("GET /" + std::string(40, 'a'), small), 414);  // no line end yet
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nA: " + std::string(200, 'b') + "\r\n\r\n", small), 431);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nA: " + std::string(200, 'b'), small), 431);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small), 431);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", small), 0);
}

TEST(RequestParser, EmptyLinesBeforeTheRequestAreSkipped) {
  RequestHead h;
  const std::string text = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";  // outlives h's views
  auto r = parse(text, h);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, 32u);
  EXPECT_EQ(h.method, "GET");
}

// Fed as they come, the empty lines are handed back to be dropped (the
// buffer holds none of them) and count towards max_head_bytes.
TEST(RequestParser, EmptyLinesFedInPiecesAreHandedBackAndCountTowardsTheHeadLimit) {
  ParserLimits small;
  small.max_head_bytes = 100;
  RequestParser p(small);
  RequestHead h;
  std::size_t fed = 0;
  RequestParser::Result r{Status::kNeedMore};
  while (r.status == Status::kNeedMore && fed < 1000) {
    r = p.parse("\r\n\r\n\n", h);
    if (r.status == Status::kNeedMore) EXPECT_EQ(r.consumed, 5u);
    fed += 5;
  }
  ASSERT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error_status, 431);
  EXPECT_EQ(fed, 105u);

  p.reset();
  EXPECT_EQ(p.parse("\r\n\r", h).consumed, 2u);  // a lone CR waits for its LF
  const std::string rest = "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
  r = p.parse(rest, h);
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, rest.size());
  EXPECT_EQ(h.method, "GET");
}

// RFC 9112 3.2: the host a request is for must be unambiguous.
TEST(RequestParser, Http11WithoutHostOrAnyRequestWithTwoHostsGets400) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/1.0\r\n\r\n"), 0);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHOST: a\r\n\r\n"), 0);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);  // empty: no authority, still one Host
}

TEST(HttpError, RefusesAStatusThatIsNotAnError) {
  for (int status : {42, 99999, -5, 100, 200, 399, 600})
    EXPECT_THROW(fern::http::HttpError(status, "x"), std::invalid_argument) << status;
  EXPECT_EQ(fern::http::HttpError(400, "x").status(), 400);
  EXPECT_EQ(fern::http::HttpError(599, "x").status(), 599);
}

TEST(HttpError, CarriesHeadersCheckedAsAResponsesAre) {
  fern::http::HttpError e(405, "no");
  e.with_header("Allow", "GET, HEAD").with_header("X-A", "b");
  EXPECT_EQ(e.headers(), "Allow: GET, HEAD\r\nX-A: b\r\n");
  EXPECT_THROW(e.with_header("X", "a\r\nInjected: 1"), std::invalid_argument);
  EXPECT_THROW(e.with_header("X Y", "a"), std::invalid_argument);
}

TEST(RequestParser, ObsTextInValuesIsKept) {
  RequestHead h;
  const std::string text = "GET / HTTP/1.1\r\nHost: x\r\nX: caf\xc3\xa9\r\n\r\n";
  ASSERT_EQ(parse(text, h).status, Status::kDone);
  EXPECT_EQ(h.header("x"), "caf\xc3\xa9");
}


// test__pywsgi.py::BadRequestTests::test_bad_request_line_with_percent: the
// request line alone, its head never ended, is answered 400 (505 for a new
// major version), fed whole or a byte at a time; a good one waits.
TEST(RequestParser, BadRequestLineIsAnErrorBeforeTheHeadEnds) {
  EXPECT_EQ(error_of("GET / HTTP %\r\n"), 400);
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\nHost: x\r\n"), 505);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: x\r\n"), 0);
  RequestParser p;
  RequestHead h;
  const std::string text = "G(T / HTTP/1.1\n";
  RequestParser::Result r{Status::kNeedMore};
  for (std::size_t n = 1; n <= text.size() && r.status == Status::kNeedMore; ++n) r = p.parse(text.substr(0, n), h);
  EXPECT_EQ(r.status, Status::kError);
  EXPECT_EQ(r.error_status, 400);
}

}  // namespace
