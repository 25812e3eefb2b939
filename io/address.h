#pragma once
// A socket address (IPv4, IPv6 or a Unix path), a value type holding a
// sockaddr_storage. Numeric only: names go through the resolver.
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace fern {

class Address {
 public:
  Address() noexcept;  // AF_UNSPEC, size 0

  // An IPv4 or IPv6 literal ("127.0.0.1", "::1" or "[::1]", "" = IPv4 any)
  // and a port.
  // An IPv6 literal may carry its zone: "fe80::1%eth0" or "fe80::1%2" sets
  // the scope id. Throws std::invalid_argument for anything that is not a
  // numeric address (a NUL byte included) or names no interface, and for a
  // port outside 0..65535 (Python's OverflowError; never wrapped: 65536 is
  // not port 0, -1 not 65535).
  static Address ip(std::string_view host, int port);
  // A Unix-domain path of 1..108 bytes (all of sun_path, as Linux and
  // Python take it); std::invalid_argument if it does not fit or has a
  // NUL inside. A leading NUL names a Linux abstract socket (exactly these
  // bytes, as Python's b"\0name"; host() gives them back).
  static Address unix_path(std::string_view path);
  // A copy of a kernel-filled sockaddr (len bytes, at most sockaddr_storage).
  // len 0 (sa may be null): an empty address, as Address(); a null sa with
  // a length: std::invalid_argument.
  static Address from_sockaddr(const sockaddr* sa, socklen_t len);

  int family() const noexcept { return storage_.ss_family; }
  // Numeric host ("127.0.0.1", "::1", "fe80::1%eth0" with a scope id) or
  // the Unix path; port 0 for Unix.
  std::string host() const;
  std::uint16_t port() const noexcept;
  // "127.0.0.1:80", "[::1]:80", "/tmp/sock" (gevent prints the tuple).
  std::string to_string() const;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return size_; }
  // For kernel calls that fill the address: capacity in, length out.
  socklen_t* size_ptr() noexcept { return &size_; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t size_;
};

}  // namespace fern
