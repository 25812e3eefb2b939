#include "fern/io/resolver.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "fern/io/thread_pool.h"

namespace fern {
namespace {

bool is_numeric_host(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  // An IPv6 literal with its zone ("fe80::1%eth0") is numeric too.
  const std::string bare = host.substr(0, host.find('%'));
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, bare.c_str(), buf) == 1;
}

// glibc reads a service that strtoul takes whole as a port number cut to 16
// bits ("65536" is port 0, "99999999999" 59391, "-65535" 1): a silently
// wrong port. As musl, and as Address::ip refuses such a port, one outside
// 0..65535 is EAI_SERVICE; a name ("http") is left to the lookup.
void check_port_number(const std::string& host, const std::string& service) {
  if (service.empty()) return;
  errno = 0;
  char* end = nullptr;
  unsigned long port = std::strtoul(service.c_str(), &end, 10);
  if (end == service.c_str() || *end != '\0') return;
  if (errno == ERANGE || port > 65535 || service.find('-') != std::string::npos)
    throw ResolveError(EAI_SERVICE, "fern: getaddrinfo(" + host + ", " + service + "): a port must be 0-65535");
}

// Runs in a worker thread (or inline for numeric hosts): no hub calls here.
std::vector<AddrInfo> resolve_blocking(const std::string& host, const std::string& service, addrinfo hints) {
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.empty() ? nullptr : service.c_str(),
                         &hints, &res);
  if (rc != 0) {
    int sys = rc == EAI_SYSTEM ? errno : 0;
    throw ResolveError(rc, "fern: getaddrinfo(" + host + ", " + service + ")", sys);
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(res, ::freeaddrinfo);
  std::vector<AddrInfo> out;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    AddrInfo info;
    info.family = ai->ai_family;
    info.socktype = ai->ai_socktype;
    info.protocol = ai->ai_protocol;
    if (ai->ai_canonname) info.canonname = ai->ai_canonname;
    info.address = Address::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace

std::vector<AddrInfo> getaddrinfo(const std::string& host, const std::string& service, int family, int socktype,
                                  int protocol, int flags) {
  // getaddrinfo reads C strings: "good.example\0evil" would resolve "good.example".
  if (host.find('\0') != std::string::npos || service.find('\0') != std::string::npos)
    throw std::invalid_argument("fern: getaddrinfo: a host or service cannot contain a NUL byte");
  check_port_number(host, service);
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = socktype;
  hints.ai_protocol = protocol;
  hints.ai_flags = flags;
  if (host.empty() || is_numeric_host(host)) {
    hints.ai_flags |= AI_NUMERICHOST;
    return resolve_blocking(host, service, hints);
  }
  return default_thread_pool().apply([host, service, hints] { return resolve_blocking(host, service, hints); });
}

std::string gethostbyname(const std::string& host) {
  // Python's names for the wildcard and broadcast addresses (its setipaddr).
  if (host.empty()) return "0.0.0.0";
  if (host == "<broadcast>") return "255.255.255.255";
  std::vector<AddrInfo> infos = getaddrinfo(host, "", AF_INET, SOCK_STREAM);
  if (infos.empty()) throw ResolveError(EAI_NONAME, "fern: gethostbyname(" + host + ")");
  return infos.front().address.host();
}

NameInfo getnameinfo(const Address& addr, int flags) {
  auto lookup = [addr, flags] {
    char host[NI_MAXHOST];
    char service[NI_MAXSERV];
    int rc = ::getnameinfo(addr.data(), addr.size(), host, sizeof host, service, sizeof service, flags);
    if (rc != 0) throw ResolveError(rc, "fern: getnameinfo(" + addr.to_string() + ")", rc == EAI_SYSTEM ? errno : 0);
    return NameInfo{host, service};
  };
  if ((flags & NI_NUMERICHOST) && (flags & NI_NUMERICSERV)) return lookup();
  return default_thread_pool().apply(lookup);
}

}  // namespace fern
