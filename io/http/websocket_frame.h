#pragma once
// The WebSocket frame format (RFC 6455 section 5), server side: parsing a
// client frame's header (which must be masked), unmasking its payload, and
// writing an (unmasked) server frame's header. No I/O: the decoder works on
// whatever bytes it is given and never reads past them, so it can be fuzzed
// on its own.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fern::http {

enum class Opcode : std::uint8_t { kContinuation = 0, kText = 1, kBinary = 2, kClose = 8, kPing = 9, kPong = 10 };

// Close status codes used by the server (RFC 6455 section 7.4.1).
namespace close_code {
constexpr std::uint16_t kNormal = 1000;
constexpr std::uint16_t kGoingAway = 1001;
constexpr std::uint16_t kProtocolError = 1002;
constexpr std::uint16_t kNoStatus = 1005;    // never sent: "the close frame had no code"
constexpr std::uint16_t kAbnormal = 1006;    // never sent: "the connection ended without a close frame"
constexpr std::uint16_t kInvalidData = 1007;  // a text message that is not UTF-8
constexpr std::uint16_t kTooBig = 1009;
}  // namespace close_code

struct FrameHeader {
  bool fin = false;
  Opcode opcode = Opcode::kContinuation;
  std::uint8_t mask[4] = {};
  std::uint64_t length = 0;      // payload bytes
  std::size_t header_size = 0;   // bytes before the payload (2 to 14)
};

struct FrameParse {
  enum Status { kNeedMore, kDone, kError } status = kNeedMore;
  FrameHeader header;
  std::uint16_t close_code = 0;  // kError: the code to close with (1002 or 1009)
  const char* error = "";
};

// Parses the frame header at the start of `in` (a client frame). Errors:
// RSV bits set, an unknown opcode, an unmasked frame, a fragmented or
// over-125-byte control frame, a 64-bit length with its top bit set (1002);
// a payload longer than max_payload (1009). O(1), never throws.
FrameParse parse_frame_header(std::string_view in, std::uint64_t max_payload) noexcept;

// XORs data with the mask key; `offset` is the position of data[0] within
// the payload (for unmasking a payload in pieces).
void unmask(char* data, std::size_t n, const std::uint8_t mask[4], std::uint64_t offset = 0) noexcept;

// Writes an unmasked frame header into out (at least 10 bytes); returns its size.
std::size_t write_frame_header(char* out, bool fin, Opcode opcode, std::uint64_t length) noexcept;

// A close code a peer may send (RFC 6455 7.4): 1000-1003, 1007-1011,
// 3000-4999.
bool is_valid_close_code(std::uint16_t code) noexcept;

}  // namespace fern::http
