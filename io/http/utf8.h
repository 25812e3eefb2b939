#pragma once
// UTF-8 validation (RFC 3629): no overlong forms, no surrogates, nothing
// above U+10FFFF. For WebSocket text messages and close reasons.
#include <string_view>

namespace fern::http {

// True when `text` is entirely well-formed UTF-8. O(n), no allocation.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace fern::http
