#include "fern/io/http/sha1.h"

#include <cstring>

namespace fern::http {
namespace {

std::uint32_t rol(std::uint32_t x, int n) noexcept { return (x << n) | (x >> (32 - n)); }

}  // namespace

Sha1::Sha1() noexcept : h_{0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u} {}

void Sha1::block(const std::uint8_t* p) noexcept {
  std::uint32_t w[80];
  for (int i = 0; i < 16; ++i)  // big-endian words (RFC 3174 section 6.1)
    w[i] = std::uint32_t(p[4 * i]) << 24 | std::uint32_t(p[4 * i + 1]) << 16 | std::uint32_t(p[4 * i + 2]) << 8 |
           std::uint32_t(p[4 * i + 3]);
  for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
  for (int i = 0; i < 80; ++i) {
    std::uint32_t f, k;
    if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
    else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
    else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
    else f = b ^ c ^ d, k = 0xCA62C1D6u;
    std::uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d;
    d = c;
    c = rol(b, 30);
    b = a;
    a = t;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
}

void Sha1::update(std::string_view data) noexcept {
  auto p = reinterpret_cast<const std::uint8_t*>(data.data());
  std::size_t n = data.size();
  total_ += n;
  while (n > 0) {
    std::size_t k = 64 - buffered_ < n ? 64 - buffered_ : n;
    std::memcpy(buf_ + buffered_, p, k);
    buffered_ += k;
    p += k;
    n -= k;
    if (buffered_ == 64) {
      block(buf_);
      buffered_ = 0;
    }
  }
}

std::array<std::uint8_t, 20> Sha1::finish() noexcept {
  std::uint64_t bits = total_ * 8;
  std::uint8_t pad[72] = {0x80};
  std::size_t pad_len = buffered_ < 56 ? 56 - buffered_ : 120 - buffered_;
  for (int i = 0; i < 8; ++i) pad[pad_len + i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
  update(std::string_view(reinterpret_cast<const char*>(pad), pad_len + 8));
  std::array<std::uint8_t, 20> out{};
  for (int i = 0; i < 20; ++i) out[i] = static_cast<std::uint8_t>(h_[i / 4] >> (24 - 8 * (i % 4)));
  return out;
}

std::array<std::uint8_t, 20> sha1(std::string_view data) noexcept {
  Sha1 s;
  s.update(data);
  return s.finish();
}

}  // namespace fern::http
