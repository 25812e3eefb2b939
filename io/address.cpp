#include "fern/io/address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace fern {
namespace {

// An IPv6 zone ("lo", "eth0" or a number, after the '%' of "fe80::1%eth0")
// as a scope id; std::invalid_argument for an empty, unknown or out of
// range one.
std::uint32_t scope_id_of(const std::string& zone, const std::string& literal) {
  if (!zone.empty() && zone.find_first_not_of("0123456789") == std::string::npos) {
    errno = 0;
    unsigned long long n = std::strtoull(zone.c_str(), nullptr, 10);
    if (errno == 0 && n <= 0xffffffffULL) return static_cast<std::uint32_t>(n);
  } else if (!zone.empty() && zone.size() < IF_NAMESIZE) {
    if (unsigned index = if_nametoindex(zone.c_str())) return index;
  }
  throw std::invalid_argument("fern: '" + literal + "': no network interface '" + zone + "'");
}

}  // namespace

Address::Address() noexcept : storage_{}, size_(0) { storage_.ss_family = AF_UNSPEC; }

Address Address::ip(std::string_view host, int port) {
  if (port < 0 || port > 65535)
    throw std::invalid_argument("fern: port must be 0-65535, not " + std::to_string(port));
  Address a;
  std::string h(host.empty() ? "0.0.0.0" : host);
  // inet_pton reads a C string: what follows a NUL would go unread.
  if (h.find('\0') != std::string::npos)
    throw std::invalid_argument("fern: an IP address literal cannot contain a NUL byte");
  // Brackets are accepted around IPv6 literals, as in URLs (only there:
  // "[1.2.3.4]" is no address).
  const bool bracketed = h.size() > 2 && h.front() == '[' && h.back() == ']';
  if (bracketed) h = h.substr(1, h.size() - 2);
  // An IPv6 literal may name its zone (RFC 4007): "fe80::1%eth0", "fe80::1%2".
  std::string zone;
  const std::size_t percent = h.find('%');
  const std::string bare = percent == std::string::npos ? h : h.substr(0, percent);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
  if (!bracketed && percent == std::string::npos && inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    a.size_ = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, bare.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    if (percent != std::string::npos) v6->sin6_scope_id = scope_id_of(h.substr(percent + 1), h);
    a.size_ = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument("fern: '" + h + "' is not a numeric IPv4 or IPv6 address; resolve names with fern::getaddrinfo");
  }
  return a;
}

Address Address::unix_path(std::string_view path) {
  Address a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage_);
  // All of sun_path may be used, without a terminating NUL (Linux and
  // Python take 108 bytes).
  if (path.empty() || path.size() > sizeof un->sun_path)
    throw std::invalid_argument("fern: a Unix socket path must be 1.." + std::to_string(sizeof un->sun_path) + " bytes");
  // A Linux abstract name starts with a NUL and is exactly its bytes; the
  // kernel reads any other path as a C string, which a NUL would cut short.
  bool abstract = path[0] == '\0';
#ifndef __linux__
  if (abstract) throw std::invalid_argument("fern: abstract Unix socket names (a leading NUL) are Linux only");
#endif
  if (!abstract && path.find('\0') != std::string_view::npos)
    throw std::invalid_argument("fern: a Unix socket path cannot contain a NUL byte");
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  const bool terminated = !abstract && path.size() < sizeof un->sun_path;
  a.size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (terminated ? 1 : 0));
  return a;
}

Address Address::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Address a;
  if (len == 0) return a;  // memcpy from a null sa would be undefined, even of nothing
  if (sa == nullptr) throw std::invalid_argument("fern: Address::from_sockaddr: no sockaddr for " + std::to_string(len) + " bytes");
  if (len > sizeof a.storage_) len = sizeof a.storage_;
  std::memcpy(&a.storage_, sa, len);
  a.size_ = len;
  return a;
}

std::string Address::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (family()) {
    case AF_INET:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text, sizeof text);
      return text;
    case AF_INET6: {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
      if (v6->sin6_scope_id == 0) return text;
      // The zone, as Python prints it: the interface's name, else its number.
      char name[IF_NAMESIZE] = {};
      if (if_indextoname(v6->sin6_scope_id, name)) return std::string(text) + "%" + name;
      return std::string(text) + "%" + std::to_string(v6->sin6_scope_id);
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      std::size_t n = size_ > offsetof(sockaddr_un, sun_path) ? size_ - offsetof(sockaddr_un, sun_path) : 0;
      if (n > 0 && un->sun_path[0] == '\0') return std::string(un->sun_path, n);  // abstract: all its bytes
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default:
      return "";
  }
}

std::uint16_t Address::port() const noexcept {
  switch (family()) {
    case AF_INET:
      return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6:
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default:
      return 0;
  }
}

std::string Address::to_string() const {
  switch (family()) {
    case AF_INET:
      return host() + ":" + std::to_string(port());
    case AF_INET6:
      return "[" + host() + "]:" + std::to_string(port());
    default:
      return host();
  }
}

bool operator==(const Address& a, const Address& b) noexcept {
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

}  // namespace fern
