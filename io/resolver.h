#pragma once
// Cooperative name resolution (gevent's default threaded resolver, IO-9):
// the blocking libc calls run in default_thread_pool(), so they block only
// the calling greenlet. Numeric hosts are answered at once, without a thread.
// Failures throw ResolveError carrying the EAI_* code (gevent's gaierror);
// a host or service with a NUL byte inside, std::invalid_argument.
#include <netdb.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "fern/io/address.h"
#include "fern/io/socket_error.h"

namespace fern {

struct AddrInfo {
  int family = 0;
  int socktype = 0;
  int protocol = 0;
  std::string canonname;  // only with AI_CANONNAME, on the first entry
  Address address;
};

// getaddrinfo(3): addresses in the resolver's order. service may be a port
// number or a service name ("" for none); a number outside 0..65535 is
// ResolveError EAI_SERVICE (never cut to 16 bits, as glibc would). Blocks:
// switches to the hub.
std::vector<AddrInfo> getaddrinfo(const std::string& host, const std::string& service, int family = AF_UNSPEC,
                                  int socktype = 0, int protocol = 0, int flags = 0);

// The first IPv4 address of host as dotted text (socket.gethostbyname).
// As in Python, "" is "0.0.0.0" and "<broadcast>" "255.255.255.255".
// Blocks: switches to the hub.
std::string gethostbyname(const std::string& host);

struct NameInfo {
  std::string host;
  std::string service;
};
// getnameinfo(3) for addr (NI_* flags). Blocks: switches to the hub.
NameInfo getnameinfo(const Address& addr, int flags = 0);

}  // namespace fern
