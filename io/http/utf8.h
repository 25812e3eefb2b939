#pragma once
// UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF. For WebSocket text messages and close reasons.
#include <string_view>

namespace fern::http {

// True when `text` is entirely well-formed UTF-8. O(n), no allocation.
bool is_valid_utf8(std::string_view text) noexcept;

// UTF-8 validation of a text that arrives in pieces (a WebSocket message's
// fragments): a code point may be split across feeds, and a byte that no
// continuation can make valid fails the feed that brings it (RFC 6455 8.1,
// "fail fast"). O(n) per feed, no allocation.
class Utf8Validator {
 public:
  // Checks the next piece; false once anything so far is invalid (and on
  // every feed after that).
  bool feed(std::string_view text) noexcept;
  // True when everything fed is valid and no code point is left unfinished.
  bool complete() const noexcept { return !failed_ && need_ == 0; }

 private:
  bool fail() noexcept;
  // Takes s[i..n) while a code point is unfinished; false on a byte out of range.
  bool continue_sequence(const unsigned char* s, std::size_t n, std::size_t& i) noexcept;

  unsigned char need_ = 0;               // continuation bytes still to come
  unsigned char lo_ = 0x80, hi_ = 0xBF;  // the range the next of them must lie in
  bool failed_ = false;
};

}  // namespace fern::http
