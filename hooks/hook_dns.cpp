// Name resolution in fern's thread pool (the resolver's way, io/resolver.h):
// the calling greenlet parks while libc's own function runs in a worker, so
// the results are libc's (getaddrinfo's list is freed by libc's
// freeaddrinfo). Numeric hosts are answered inline, without a thread.
// The job owns copies of everything it reads and writes: the caller may be
// killed while it runs (its frames, and the library's, are gone then), and
// a result nobody takes is freed with the job.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fern/hooks/detail.h"
#include "fern/io/thread_pool.h"
#include "fern/sync/local.h"

using namespace fern;
using namespace fern::hooks::detail;

namespace {

bool numeric_host(const char* host) {
  unsigned char buf[sizeof(in6_addr)];
  return host == nullptr || inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

std::optional<std::string> copy(const char* s) { return s ? std::optional<std::string>(s) : std::nullopt; }
const char* c_str(const std::optional<std::string>& s) { return s ? s->c_str() : nullptr; }

struct AddrList {
  addrinfo* head = nullptr;
  AddrList() = default;
  AddrList(const AddrList&) = delete;
  AddrList& operator=(const AddrList&) = delete;
  ~AddrList() {
    if (head) freeaddrinfo(head);
  }
};
struct AddrResult {
  int rc = 0;
  int err = 0;  // errno in the worker (EAI_SYSTEM's cause)
  std::shared_ptr<AddrList> list;
};

struct HostResult {
  int rc = 0;
  int herr = 0;
  int err = 0;
  bool found = false;
  hostent entry{};
  std::shared_ptr<std::vector<char>> data;  // what entry points into
};

// The worker's hostent, copied into the caller's buffer: every pointer in
// it (and in its alias and address arrays) moved by the same offset.
hostent* relocate(const HostResult& r, hostent* ret, char* buf) {
  const char* base = r.data->data();
  std::memcpy(buf, base, r.data->size());
  auto move = [&](auto* p) { return p ? reinterpret_cast<decltype(p)>(buf + (reinterpret_cast<const char*>(p) - base)) : p; };
  *ret = r.entry;
  ret->h_name = move(r.entry.h_name);
  ret->h_aliases = move(r.entry.h_aliases);
  ret->h_addr_list = move(r.entry.h_addr_list);
  for (char** a = ret->h_aliases; a && *a; ++a) *a = move(*a);
  for (char** a = ret->h_addr_list; a && *a; ++a) *a = move(*a);
  return ret;
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
  std::optional<addrinfo> own_hints;
  if (hints) {
    own_hints = *hints;
    own_hints->ai_addr = nullptr;  // a hints structure carries no pointers (POSIX)
    own_hints->ai_canonname = nullptr;
    own_hints->ai_next = nullptr;
  }
  AddrResult r = default_thread_pool().apply([n = copy(node), s = copy(service), own_hints] {
    AddrResult out;
    out.list = std::make_shared<AddrList>();
    out.rc = FERN_REAL(getaddrinfo)(c_str(n), c_str(s), own_hints ? &*own_hints : nullptr, &out.list->head);
    out.err = errno;
    return out;
  });
  errno = r.err;
  if (r.rc == 0) *res = std::exchange(r.list->head, nullptr);
  return r.rc;
}

int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t len, hostent** result, int* h_errnop) {
  if (cooperative_hub(fern::hooks::kDns) == nullptr || numeric_host(name))
    return FERN_REAL(gethostbyname_r)(name, ret, buf, len, result, h_errnop);
  // The worker's buffer grows from 1 KiB only as far as libc asks (ERANGE),
  // never past the caller's: what the caller gets is copied, not `len`.
  HostResult r = default_thread_pool().apply([n = std::string(name), len] {
    HostResult out;
    for (std::size_t size = std::min<std::size_t>(len, 1024);; size = size > len / 4 ? len : size * 4) {
      out.data = std::make_shared<std::vector<char>>(size);
      hostent* found = nullptr;
      out.rc = FERN_REAL(gethostbyname_r)(n.c_str(), &out.entry, out.data->data(), size, &found, &out.herr);
      out.err = errno;
      out.found = found != nullptr;
      if (out.rc != ERANGE || size == len) return out;
    }
  });
  errno = r.err;
  if (h_errnop) *h_errnop = r.herr;
  *result = r.rc == 0 && r.found ? relocate(r, ret, buf) : nullptr;
  return r.rc;
}

// Not reentrant, as libc's, whose result buffer is per thread (valid until
// the thread's next call): here one per greenlet (gevent's threads), valid
// until that greenlet's next call. One of the thread would be rewritten, or
// reallocated, by another greenlet's call while this one is parked with it.
hostent* gethostbyname(const char* name) {
  if (cooperative_hub(fern::hooks::kDns) == nullptr || numeric_host(name)) return FERN_REAL(gethostbyname)(name);
  static thread_local fern::local<HostentBuffer> buffers;  // made after the hub: destroyed before it
  HostentBuffer& buffer = buffers.get();
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
