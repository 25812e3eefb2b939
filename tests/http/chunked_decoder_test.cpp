// The chunked request-body decoder (issue 10): data, extensions, trailers,
// any split of the input, and the framing errors that get 400.
#include "fern/io/http/chunked_decoder.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using fern::http::ChunkedDecoder;

// Decodes `wire` fed in pieces of `piece` bytes; the body, or "ERROR".
std::string decode(const std::string& wire, std::size_t piece, std::size_t max_data = 1 << 20) {
  ChunkedDecoder d;
  std::string body, pending;
  for (std::size_t at = 0; at <= wire.size() && !d.done();) {
    pending += wire.substr(at, piece);
    at += piece;
    for (;;) {
      auto s = d.next(pending, max_data);
      if (s.error) return "ERROR";
      body.append(s.data.data(), s.data.size());
      pending.erase(0, s.consumed);
      if (s.done || (s.consumed == 0 && s.data.empty())) break;
    }
    if (at > wire.size()) break;
  }
  return d.done() ? body : "INCOMPLETE";
}

TEST(ChunkedDecoder, DecodesChunksAtEveryPieceSize) {
  const std::string wire = "4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece)
    ASSERT_EQ(decode(wire, piece), "Wikipedia in\r\n\r\nchunks.") << "piece " << piece;
  EXPECT_EQ(decode(wire, wire.size(), 3), "Wikipedia in\r\n\r\nchunks.");
}

TEST(ChunkedDecoder, AcceptsBareLfLineEnds) {
  EXPECT_EQ(decode("3\nabc\n0\n\n", 1), "abc");
}

TEST(ChunkedDecoder, StopsAtTheEndOfTheBody) {
  ChunkedDecoder d;
  std::string wire = "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
  auto s = d.next(wire, 100);
  EXPECT_EQ(s.data, "a");
  wire.erase(0, s.consumed);
  s = d.next(wire, 100);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(wire.substr(s.consumed), "GET / HTTP/1.1\r\n");
}

TEST(ChunkedDecoder, MalformedFramingIsAnError) {
  EXPECT_EQ(decode("x\r\n", 1), "ERROR");
  EXPECT_EQ(decode("\r\n", 1), "ERROR");
  EXPECT_EQ(decode("3\r\nabcd\r\n0\r\n\r\n", 1), "ERROR");  // data longer than its size
  EXPECT_EQ(decode("3\r\nabc\rx0\r\n\r\n", 1), "ERROR");
  EXPECT_EQ(decode("3\rabc\r\n0\r\n\r\n", 1), "ERROR");
  EXPECT_EQ(decode("1000000000000000\r\n", 1), "ERROR");  // 16 hex digits
  EXPECT_EQ(decode("3;\x01\r\nabc\r\n0\r\n\r\n", 1), "ERROR");
  EXPECT_EQ(decode("0\r\nA: b\rc\r\n\r\n", 1), "ERROR");
  EXPECT_EQ(decode("0\r\n" + std::string(9000, 'a') + "\r\n\r\n", 64), "ERROR");
}

// An error is final: a caller that asks again (a handler that caught the
// 400 and reads on) gets it again, never the end of a body whose framing
// broke, which would let the bytes after it pass for the next request.
TEST(ChunkedDecoder, AnErrorStaysAnErrorWhenAskedAgain) {
  // The trailer limit is crossed on a line's LF: the decoder had moved on
  // to the next trailer line, and then to the end of the body.
  std::string wire = "0\r\nX: " + std::string(8189, 'a') + "\nGET /smuggled HTTP/1.1\r\n\r\n";
  ChunkedDecoder d;
  auto s = d.next(wire, 100);
  ASSERT_NE(s.error, nullptr);
  wire.erase(0, s.consumed);
  for (int again = 0; again < 3; ++again) {
    s = d.next(wire, 100);
    EXPECT_NE(s.error, nullptr) << again;
    EXPECT_FALSE(s.done) << again;
    EXPECT_EQ(s.consumed, 0u) << again;
  }
  EXPECT_FALSE(d.done());
}

// Leading zeros are no part of the size's digit limit (RFC 9112 7.1: 1*HEXDIG).
TEST(ChunkedDecoder, SizesWithLeadingZerosAreAccepted) {
  EXPECT_EQ(decode("0000000000000003\r\nabc\r\n00000000000000000000\r\n\r\n", 1), "abc");
  EXPECT_EQ(decode("000000000000000000000fffffffffffffff\r\n", 1), "INCOMPLETE");  // 15 significant digits
  EXPECT_EQ(decode("0000001000000000000000\r\n", 1), "ERROR");                     // 16
  EXPECT_EQ(decode(std::string(9000, '0') + "\r\n\r\n", 64), "ERROR");            // the line is bounded
}

// After the size, only whitespace, then ';' and an extension, or the line end.
TEST(ChunkedDecoder, ExtensionStartsWithASemicolonAfterOptionalWhitespace) {
  EXPECT_EQ(decode("3 ;a=b\r\nabc\r\n0\r\n\r\n", 1), "abc");
  EXPECT_EQ(decode("3\t \r\nabc\r\n0\r\n\r\n", 1), "abc");
  EXPECT_EQ(decode("3 garbage\r\nabc\r\n0\r\n\r\n", 1), "ERROR");
  EXPECT_EQ(decode("3 4\r\nabc\r\n0\r\n\r\n", 1), "ERROR");
}

TEST(ChunkedDecoder, IncompleteBodyIsNotDone) {
  EXPECT_EQ(decode("3\r\nab", 2), "INCOMPLETE");
  EXPECT_EQ(decode("3\r\nabc\r\n0\r\n", 2), "INCOMPLETE");
}


// RFC 9112 7.1.2: the trailer section is field lines (test__pywsgi.py::
// TestChunkedPost::test_trailers_request_smuggling_header_first): a request
// line, a folded line, an empty name or a control character there is an
// error, at every piece size; a name that merely looks like a method is not.
TEST(ChunkedDecoder, TrailerLinesMustBeFieldLines) {
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{100}}) {
    EXPECT_EQ(decode("0\r\nA: b\r\nGET /x HTTP/1.1\r\n\r\n", piece), "ERROR") << piece;
    EXPECT_EQ(decode("0\r\nA: b\r\n c\r\n\r\n", piece), "ERROR") << piece;
    EXPECT_EQ(decode("0\r\n: b\r\n\r\n", piece), "ERROR") << piece;
    EXPECT_EQ(decode("0\r\nA b\r\n\r\n", piece), "ERROR") << piece;
    EXPECT_EQ(decode("0\r\nA\r\n\r\n", piece), "ERROR") << piece;
    EXPECT_EQ(decode("0\r\nA: b\x7f\r\n\r\n", piece), "ERROR") << piece;
    EXPECT_EQ(decode("1\r\nx\r\n0\r\nGETpath2a:123 HTTP/1.1\r\nB:\t\xc3\xa9 \r\nC:\n\n", piece), "x") << piece;
  }
}

}  // namespace
