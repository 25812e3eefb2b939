#include "fern/io/http/utf8.h"

#include <cstddef>

namespace fern::http {
namespace {

// The sequence a lead byte starts: its length (0 for a byte no sequence
// starts with) and the allowed range of its second byte; the later ones
// are 0x80-0xBF. RFC 3629 section 4's table.
struct Lead {
  unsigned char len, lo, hi;
};

Lead lead(unsigned char c) noexcept {
  if (c >= 0xC2 && c <= 0xDF) return {2, 0x80, 0xBF};
  if (c == 0xE0) return {3, 0xA0, 0xBF};  // no overlong 3-byte forms
  if (c == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (c >= 0xE1 && c <= 0xEF) return {3, 0x80, 0xBF};
  if (c == 0xF0) return {4, 0x90, 0xBF};  // no overlong 4-byte forms
  if (c >= 0xF1 && c <= 0xF3) return {4, 0x80, 0xBF};
  if (c == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};                       // 0x80-0xC1, 0xF5-0xFF
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  Utf8Validator v;
  return v.feed(text) && v.complete();
}

bool Utf8Validator::fail() noexcept {
  failed_ = true;
  return false;
}

bool Utf8Validator::continue_sequence(const unsigned char* s, std::size_t n, std::size_t& i) noexcept {
  for (; need_ > 0 && i < n; ++i, --need_) {
    if (s[i] < lo_ || s[i] > hi_) return false;
    lo_ = 0x80, hi_ = 0xBF;
  }
  return true;
}

// Whole sequences are checked in place; only one cut by the end of `text`
// goes through the state, so a single feed costs what a one-shot check does.
bool Utf8Validator::feed(std::string_view text) noexcept {
  if (failed_) return false;
  auto s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  if (!continue_sequence(s, n, i)) return fail();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    Lead l = lead(c);
    if (l.len == 0) return fail();
    if (i + l.len > n) {  // cut short: the next feed may finish it
      need_ = static_cast<unsigned char>(l.len - 1), lo_ = l.lo, hi_ = l.hi;
      ++i;
      return continue_sequence(s, n, i) || fail();
    }
    if (s[i + 1] < l.lo || s[i + 1] > l.hi) return fail();
    for (std::size_t k = 2; k < l.len; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return fail();
    i += l.len;
  }
  return true;
}

}  // namespace fern::http
