#include "fern/io/http/websocket_frame.h"

namespace fern::http {
namespace {

FrameParse error(std::uint16_t code, const char* why) noexcept {
  FrameParse p;
  p.status = FrameParse::kError;
  p.close_code = code;
  p.error = why;
  return p;
}

}  // namespace

FrameParse parse_frame_header(std::string_view in, std::uint64_t max_payload) noexcept {
  FrameParse p;
  if (in.size() < 2) return p;
  auto b0 = static_cast<std::uint8_t>(in[0]), b1 = static_cast<std::uint8_t>(in[1]);
  if (b0 & 0x70) return error(close_code::kProtocolError, "reserved bits set without an extension");
  std::uint8_t op = b0 & 0x0F;
  if (op != 0 && op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
    return error(close_code::kProtocolError, "unknown opcode");
  FrameHeader& h = p.header;
  h.fin = (b0 & 0x80) != 0;
  h.opcode = static_cast<Opcode>(op);
  if (!(b1 & 0x80)) return error(close_code::kProtocolError, "a client frame must be masked");
  std::uint64_t len = b1 & 0x7F;
  std::size_t pos = 2;
  if (len == 126 || len == 127) {
    std::size_t bytes = len == 126 ? 2 : 8;
    if (in.size() < pos + bytes) return p;
    len = 0;
    for (std::size_t i = 0; i < bytes; ++i) len = len << 8 | static_cast<std::uint8_t>(in[pos + i]);
    pos += bytes;
    if (len >> 63) return error(close_code::kProtocolError, "payload length with its top bit set");
  }
  if (op >= 8 && (!h.fin || len > 125)) return error(close_code::kProtocolError, "fragmented or long control frame");
  if (len > max_payload) return error(close_code::kTooBig, "message too big");
  if (in.size() < pos + 4) return p;
  for (int i = 0; i < 4; ++i) h.mask[i] = static_cast<std::uint8_t>(in[pos + i]);
  h.header_size = pos + 4;
  h.length = len;
  p.status = FrameParse::kDone;
  return p;
}

void unmask(char* data, std::size_t n, const std::uint8_t mask[4], std::uint64_t offset) noexcept {
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>(data[i] ^ mask[(offset + i) & 3]);
}

std::size_t write_frame_header(char* out, bool fin, Opcode opcode, std::uint64_t length) noexcept {
  out[0] = static_cast<char>((fin ? 0x80 : 0) | static_cast<std::uint8_t>(opcode));
  if (length < 126) {
    out[1] = static_cast<char>(length);
    return 2;
  }
  std::size_t bytes = length <= 0xFFFF ? 2 : 8;
  out[1] = static_cast<char>(bytes == 2 ? 126 : 127);
  for (std::size_t i = 0; i < bytes; ++i) out[2 + i] = static_cast<char>(length >> (8 * (bytes - 1 - i)));
  return 2 + bytes;
}

bool is_valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

}  // namespace fern::http
