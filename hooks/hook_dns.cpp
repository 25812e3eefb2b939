// Name resolution in fern's thread pool (the resolver's way, io/resolver.h):
// the calling greenlet parks while libc's own function runs in a worker, so
// the results are libc's (freed by libc's freeaddrinfo). Numeric hosts are
// answered inline, without a thread.
#include <arpa/inet.h>

#include <utility>
#include <vector>

#include "fern/hooks/detail.h"
#include "fern/io/thread_pool.h"

using namespace fern;
using namespace fern::hooks::detail;

namespace {

bool numeric_host(const char* host) {
  unsigned char buf[sizeof(in6_addr)];
  return host == nullptr || inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

// Runs f() in a worker; the errno it left is set in the caller too.
template <class F>
auto in_worker(F f) {
  auto [result, err] = default_thread_pool().apply([&] {
    auto r = f();
    return std::make_pair(r, errno);
  });
  errno = err;
  return result;
}

struct HostentBuffer {
  hostent entry{};
  std::vector<char> data = std::vector<char>(1024);
};

}  // namespace

extern "C" {

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  if (cooperative_hub(fern::hooks::kDns) == nullptr || numeric_host(node) ||
      (hints && (hints->ai_flags & AI_NUMERICHOST)))
    return FERN_REAL(getaddrinfo)(node, service, hints, res);
  return in_worker([&] { return FERN_REAL(getaddrinfo)(node, service, hints, res); });
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t len, hostent** result, int* h_errnop) {
  if (cooperative_hub(fern::hooks::kDns) == nullptr || numeric_host(name))
    return FERN_REAL(gethostbyname_r)(name, ret, buf, len, result, h_errnop);
  return in_worker([&] { return FERN_REAL(gethostbyname_r)(name, ret, buf, len, result, h_errnop); });
}

// Not reentrant, as libc's: one result buffer per thread, valid until the
// next call on this thread.
hostent* gethostbyname(const char* name) {
  if (cooperative_hub(fern::hooks::kDns) == nullptr || numeric_host(name)) return FERN_REAL(gethostbyname)(name);
  static thread_local HostentBuffer buffer;
  hostent* result = nullptr;
  int herr = 0;
  for (;;) {
    int rc = gethostbyname_r(name, &buffer.entry, buffer.data.data(), buffer.data.size(), &result, &herr);
    if (rc != ERANGE || buffer.data.size() >= (1u << 20)) break;
    buffer.data.resize(buffer.data.size() * 4);
  }
  h_errno = herr;
  return result;
}

}  // extern "C"
