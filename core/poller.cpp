// The poller factories. CMake compiles poll always and at most one native
// backend, and says which through FERN_POLLER_DEFAULT_<BACKEND>; a backend
// is available here exactly when its file was compiled.
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "fern/core/poller.h"
#include "fern/core/poller_backend.h"

#if defined(FERN_POLLER_DEFAULT_EPOLL) && !defined(__linux__)
#error "fern: the epoll poller backend needs Linux; set FERN_POLLER_BACKEND to kqueue or poll"
#endif
#if defined(FERN_POLLER_DEFAULT_KQUEUE) &&                                          \
    !(defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) ||         \
      defined(__NetBSD__) || defined(__DragonFly__))
#error "fern: the kqueue poller backend needs macOS or a BSD; set FERN_POLLER_BACKEND to epoll or poll"
#endif
#if !defined(FERN_POLLER_DEFAULT_EPOLL) && !defined(FERN_POLLER_DEFAULT_KQUEUE) && \
    !defined(FERN_POLLER_DEFAULT_POLL)
#error "fern: no FERN_POLLER_DEFAULT_<BACKEND> defined; CMake's FernPoller.cmake sets it"
#endif

namespace fern {

namespace detail {

void throw_poller_errno(const char* backend, int err, const std::string& what) {
  throw std::system_error(err, std::system_category(), std::string("fern: ") + backend + " " + what);
}

void throw_poller_errno(const char* backend, int err, const char* op, int fd) {
  throw_poller_errno(backend, err, std::string(op) + " fd " + std::to_string(fd));
}

void check_interest(const char* backend, unsigned interest, const char* op, int fd) {
  if (interest == kNone || (interest & ~unsigned{kReadable | kWritable}) != 0)
    throw std::invalid_argument(std::string("fern: ") + backend + " " + op + " fd " + std::to_string(fd) +
                                ": interest must be kReadable, kWritable or both");
}

}  // namespace detail

std::unique_ptr<Poller> Poller::create() {
#if defined(FERN_POLLER_DEFAULT_EPOLL)
  return detail::make_epoll_poller();
#elif defined(FERN_POLLER_DEFAULT_KQUEUE)
  return detail::make_kqueue_poller();
#else
  return detail::make_poll_poller();
#endif
}

std::unique_ptr<Poller> Poller::create(std::string_view backend) {
  if (backend == "poll") return detail::make_poll_poller();
#ifdef FERN_POLLER_DEFAULT_EPOLL
  if (backend == "epoll") return detail::make_epoll_poller();
#endif
#ifdef FERN_POLLER_DEFAULT_KQUEUE
  if (backend == "kqueue") return detail::make_kqueue_poller();
#endif
  return nullptr;
}

}  // namespace fern
