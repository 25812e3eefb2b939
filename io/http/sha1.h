#pragma once
// SHA-1 (RFC 3174), for the WebSocket handshake's Sec-WebSocket-Accept
// only: SHA-1 is broken for signatures and must not be used for anything
// that needs collision resistance.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fern::http {

class Sha1 {
 public:
  Sha1() noexcept;
  // Absorbs bytes; any number of calls. O(n), no allocation.
  void update(std::string_view data) noexcept;
  // The 20-byte digest; the object is spent afterwards.
  std::array<std::uint8_t, 20> finish() noexcept;

 private:
  void block(const std::uint8_t* p) noexcept;
  std::uint32_t h_[5];
  std::uint8_t buf_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

// One-shot digest.
std::array<std::uint8_t, 20> sha1(std::string_view data) noexcept;

}  // namespace fern::http
