// The pieces of the WebSocket handshake and framing (issue 10), against
// published vectors: SHA-1 (RFC 3174 section 7.3), base64 (RFC 4648
// section 10), the accept key (RFC 6455 section 1.3), frames (RFC 6455
// section 5.7), and UTF-8 (RFC 3629).
#include <gtest/gtest.h>

#include <string>

#include "fern/io/http/base64.h"
#include "fern/io/http/sha1.h"
#include "fern/io/http/utf8.h"
#include "fern/io/http/websocket.h"
#include "fern/io/http/websocket_frame.h"

namespace {

using namespace fern::http;

std::string hex(const std::array<std::uint8_t, 20>& d) {
  std::string out;
  char buf[3];
  for (auto b : d) {
    std::snprintf(buf, sizeof buf, "%02X", b);
    out += buf;
  }
  return out;
}

TEST(Sha1, MatchesRfc3174TestVectors) {
  EXPECT_EQ(hex(sha1("abc")), "A9993E364706816ABA3E25717850C26C9CD0D89D");
  EXPECT_EQ(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983E441C3BD26EBAAE4AA1F95129E5E54670F1");
  Sha1 million;
  for (int i = 0; i < 1000; ++i) million.update(std::string(1000, 'a'));
  EXPECT_EQ(hex(million.finish()), "34AA973CD4C4DAA4F61EEB2BDBAD27316534016F");
  Sha1 repeated;
  for (int i = 0; i < 10; ++i) repeated.update("0123456701234567012345670123456701234567012345670123456701234567");
  EXPECT_EQ(hex(repeated.finish()), "DEA356A2CDDD90C7A7ECEDC5EBB563934F460452");
  EXPECT_EQ(hex(sha1("")), "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
}

TEST(Base64, MatchesRfc4648TestVectors) {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(base64_encode(plain[i]), coded[i]);
    EXPECT_EQ(base64_decode(coded[i]), std::string(plain[i]));
  }
}

TEST(Base64, RejectsWhatIsNotCanonical) {
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zh==", "Zm9v!A==", "=Zm9", "Zm=v"}) EXPECT_FALSE(base64_decode(bad)) << bad;
}

TEST(WebSocketHandshake, AcceptKeyMatchesRfc6455Sample) {
  EXPECT_EQ(WebSocket::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Utf8, AcceptsWellFormedAndRejectsTheRest) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"));
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));       // U+D7FF
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xce\xba\xe1\xbd"));  // cut short
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
}

// Every byte that no continuation can make valid fails the feed that
// brings it (RFC 6455 8.1; Autobahn 6.4.x): the lead byte of an overlong
// form or of something above U+10FFFF, the second byte of a surrogate.
TEST(Utf8Validator, FailsAtTheFirstByteThatCanNeverBeValid) {
  struct Case {
    const char* prefix;  // valid so far (a code point may be unfinished)
    const char* bad;     // fails here, whatever follows
  } cases[] = {
      {"", "\xc0"},             // overlong '/' (0xC0 0xAF): 0xC0 starts nothing
      {"\xe0", "\x80"},         // overlong 3-byte form
      {"\xed", "\xa0"},         // a surrogate (0xED 0xA0 0x80)
      {"\xf4", "\x90"},         // above U+10FFFF (0xF4 0x90 0x80 0x80)
      {"", "\xf5"},
      {"", "\xfe"},
      {"", "\xff"},
      {"", "\x80"},             // a continuation without a lead
      {"\xce", "a"},            // a lead byte followed by no continuation
      {"\xf0\x9f\x98", "\xf0"},
  };
  for (const Case& k : cases) {
    Utf8Validator v;
    EXPECT_TRUE(v.feed("ok "));
    EXPECT_TRUE(v.feed(k.prefix)) << k.bad;
    EXPECT_FALSE(v.feed(k.bad)) << k.bad;
    EXPECT_FALSE(v.feed("\x80\x80 fine")) << k.bad;  // failed for good
    EXPECT_FALSE(v.complete()) << k.bad;
    Utf8Validator whole;  // the same in one feed
    EXPECT_FALSE(whole.feed(std::string("ok ") + k.prefix + k.bad + "\x80\x80")) << k.bad;
  }
}

TEST(Utf8Validator, CodePointCutShortIsCompletedByTheNextFeed) {
  Utf8Validator v;
  EXPECT_TRUE(v.complete());  // nothing fed yet
  EXPECT_TRUE(v.feed("\xce\xba\xe1\xbd"));  // "κό" cut short
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.feed("\xb9"));
  EXPECT_TRUE(v.complete());
  EXPECT_TRUE(v.feed(""));
  EXPECT_TRUE(v.complete());
}

TEST(Utf8Validator, AcceptsAFourByteSequenceSplitAtEveryByte) {
  const std::string text = "a\xf0\x9f\x98\x80z\xf4\x8f\xbf\xbf";  // U+1F600, U+10FFFF
  for (std::size_t i = 0; i <= text.size(); ++i) {
    for (std::size_t j = i; j <= text.size(); ++j) {
      Utf8Validator v;
      EXPECT_TRUE(v.feed(text.substr(0, i)) && v.feed(text.substr(i, j - i))) << i << " " << j;
      EXPECT_TRUE(v.feed(text.substr(j))) << i << " " << j;
      EXPECT_TRUE(v.complete()) << i << " " << j;
    }
  }
  Utf8Validator bytewise;
  for (char c : text) EXPECT_TRUE(bytewise.feed(std::string_view(&c, 1)));
  EXPECT_TRUE(bytewise.complete());
}

TEST(WebSocketFrame, ParsesAndUnmasksTheRfcMaskedHello) {
  std::string wire = "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
  for (std::size_t n = 0; n < wire.size() - 5; ++n)
    EXPECT_EQ(parse_frame_header(std::string_view(wire).substr(0, n), 1000).status, FrameParse::kNeedMore) << n;
  FrameParse p = parse_frame_header(wire, 1000);
  ASSERT_EQ(p.status, FrameParse::kDone);
  EXPECT_TRUE(p.header.fin);
  EXPECT_EQ(p.header.opcode, Opcode::kText);
  EXPECT_EQ(p.header.length, 5u);
  EXPECT_EQ(p.header.header_size, 6u);
  unmask(wire.data() + 6, 5, p.header.mask);
  EXPECT_EQ(wire.substr(6), "Hello");
}

TEST(WebSocketFrame, ReadsExtendedLengths) {
  std::string l16 = std::string("\x82\xfe\x01\x00", 4) + "abcd";
  FrameParse p = parse_frame_header(l16, 1 << 20);
  ASSERT_EQ(p.status, FrameParse::kDone);
  EXPECT_EQ(p.header.length, 256u);
  EXPECT_EQ(p.header.header_size, 8u);
  std::string l64 = std::string("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00", 10) + "abcd";
  p = parse_frame_header(l64, 1 << 20);
  ASSERT_EQ(p.status, FrameParse::kDone);
  EXPECT_EQ(p.header.length, 65536u);
  EXPECT_EQ(p.header.header_size, 14u);
}

TEST(WebSocketFrame, ProtocolErrorsAndSizeGetTheirCloseCodes) {
  auto code = [](std::string wire, std::uint64_t max = 1000) {
    FrameParse p = parse_frame_header(wire, max);
    return p.status == FrameParse::kError ? p.close_code : 0;
  };
  EXPECT_EQ(code(std::string("\x81\x05", 2)), 1002);                  // not masked
  EXPECT_EQ(code(std::string("\xc1\x85", 2)), 1002);                  // RSV1
  EXPECT_EQ(code(std::string("\x83\x85", 2)), 1002);                  // opcode 3
  EXPECT_EQ(code(std::string("\x09\x80", 2)), 1002);                  // fragmented ping
  EXPECT_EQ(code(std::string("\x89\xfe\x00\x7e", 4)), 1002);          // 126-byte ping
  EXPECT_EQ(code(std::string("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10)), 1002);
  EXPECT_EQ(code(std::string("\x82\xfe\x04\x00", 4), 1023), 1009);
  EXPECT_EQ(code(std::string("\x82\xfe\x04\x00\x00\x00\x00\x00", 8), 1024), 0);
}

TEST(WebSocketFrame, WritesMinimalServerHeaders) {
  char h[10];
  ASSERT_EQ(write_frame_header(h, true, Opcode::kText, 5), 2u);
  EXPECT_EQ(std::string(h, 2), "\x81\x05");
  ASSERT_EQ(write_frame_header(h, true, Opcode::kBinary, 256), 4u);
  EXPECT_EQ(std::string(h, 4), std::string("\x82\x7e\x01\x00", 4));
  ASSERT_EQ(write_frame_header(h, false, Opcode::kBinary, 65536), 10u);
  EXPECT_EQ(std::string(h, 10), std::string("\x02\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(WebSocketFrame, CloseCodesFollowRfc6455) {
  for (int c : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999}) EXPECT_TRUE(is_valid_close_code(c)) << c;
  for (int c : {0, 999, 1004, 1005, 1006, 1012, 1015, 2999, 5000}) EXPECT_FALSE(is_valid_close_code(c)) << c;
}

}  // namespace
