// libFuzzer target: the WebSocket frame decoder and the UTF-8 validator.
// Frames are parsed one after another from the input, as the server does;
// every header must lie inside the input, a written header must parse back
// to the same length, and UTF-8 validation of a payload must agree with a
// validation done a code point at a time, and with the incremental
// validator fed it in pieces (cut where the input's bytes say).
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fern/io/http/utf8.h"
#include "fern/io/http/websocket_frame.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// The length of the well-formed UTF-8 sequence at s[0], or 0 (RFC 3629
// section 4's table, written out the long way).
std::size_t sequence(const unsigned char* s, std::size_t n) {
  if (s[0] < 0x80) return 1;
  std::uint32_t cp;
  std::size_t len;
  if ((s[0] & 0xE0) == 0xC0) cp = s[0] & 0x1F, len = 2;
  else if ((s[0] & 0xF0) == 0xE0) cp = s[0] & 0x0F, len = 3;
  else if ((s[0] & 0xF8) == 0xF0) cp = s[0] & 0x07, len = 4;
  else return 0;
  if (len > n) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3F);
  }
  static const std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool slow_utf8(std::string_view t) {
  auto s = reinterpret_cast<const unsigned char*>(t.data());
  for (std::size_t i = 0; i < t.size();) {
    std::size_t k = sequence(s + i, t.size() - i);
    if (k == 0) return false;
    i += k;
  }
  return true;
}

// True when at most `more` continuation bytes make `s` valid. Every
// continuation byte's allowed range (RFC 3629 section 4) holds 0x80, 0x90
// or 0xA0, so trying those three is trying them all.
bool extendable(std::string& s, int more) {
  if (slow_utf8(s)) return true;
  if (more == 0) return false;
  for (char c : {'\x80', '\x90', '\xa0'}) {
    s += c;
    bool ok = extendable(s, more - 1);
    s.pop_back();
    if (ok) return true;
  }
  return false;
}

// Feeds `t` to Utf8Validator in pieces of 0 to 7 bytes (lengths from
// `cuts`): it fails in the piece after which no continuation can make the
// text valid (not before, not later), stays failed, and complete() agrees
// with is_valid_utf8.
void check_pieces(std::string_view t, std::string_view cuts) {
  fern::http::Utf8Validator v;
  bool failed = false, last_empty = false;
  for (std::size_t i = 0, k = 0; i < t.size(); ++k) {
    std::size_t len = cuts.empty() ? 1 : static_cast<unsigned char>(cuts[k % cuts.size()]) % 8;
    if (len == 0 && last_empty) len = 1;  // no endless run of empty feeds
    len = std::min(len, t.size() - i);
    last_empty = len == 0;
    bool ok = v.feed(t.substr(i, len));
    check(!failed || !ok);
    if (!failed && !ok) {
      std::string before(t.substr(0, i)), after(t.substr(0, i + len));
      check(extendable(before, 3) && !extendable(after, 3));
    }
    failed = failed || !ok;
    i += len;
  }
  std::string all(t);
  check(failed == !extendable(all, 3));
  check(v.complete() == fern::http::is_valid_utf8(t));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string buf(reinterpret_cast<const char*>(data), size);
  check(fern::http::is_valid_utf8(buf) == slow_utf8(buf));
  check_pieces(buf, buf);
  std::uint64_t max_payload = size > 0 ? data[0] * 4u : 0;
  std::string_view in(buf);
  while (!in.empty()) {
    fern::http::FrameParse p = fern::http::parse_frame_header(in, max_payload);
    if (p.status != fern::http::FrameParse::kDone) {
      check(p.status == fern::http::FrameParse::kNeedMore || p.close_code == 1002 || p.close_code == 1009);
      break;
    }
    const fern::http::FrameHeader& h = p.header;
    check(h.header_size >= 6 && h.header_size <= 14 && h.header_size <= in.size());
    check(h.length <= max_payload);
    char written[10];
    std::size_t n = fern::http::write_frame_header(written, h.fin, h.opcode, h.length);
    check(n + 4 <= h.header_size);  // ours is minimal; the client's may not be
    if (in.size() - h.header_size < h.length) break;
    auto len = static_cast<std::size_t>(h.length);
    std::string payload(in.substr(h.header_size, len));
    fern::http::unmask(payload.data(), payload.size(), h.mask);
    check(fern::http::is_valid_utf8(payload) == slow_utf8(payload));
    check_pieces(payload, buf);
    in.remove_prefix(h.header_size + len);
  }
  return 0;
}
