#pragma once
// Base64 (RFC 4648 section 4, the standard alphabet with '=' padding).
#include <optional>
#include <string>
#include <string_view>

namespace fern::http {

std::string base64_encode(std::string_view bytes);
// nullopt for anything that is not canonical padded base64 (wrong length,
// a character outside the alphabet, misplaced '=', non-zero pad bits).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace fern::http
