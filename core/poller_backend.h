#pragma once
// What the poller backend files share: argument checks and error messages,
// so every backend reports misuse the same way ("fern: <backend> ...").
#include <memory>
#include <string>

#include "fern/core/poller.h"

namespace fern::detail {

// The backends' factories, each defined in its own file (poller.cpp picks).
std::unique_ptr<Poller> make_poll_poller();
std::unique_ptr<Poller> make_epoll_poller();
std::unique_ptr<Poller> make_kqueue_poller();

// std::system_error with errno `err`: "fern: <backend> <what>".
[[noreturn]] void throw_poller_errno(const char* backend, int err, const std::string& what);
// ... naming the operation and the fd: "fern: <backend> <op> fd <fd>".
[[noreturn]] void throw_poller_errno(const char* backend, int err, const char* op, int fd);
// std::invalid_argument unless interest is kReadable, kWritable or both.
void check_interest(const char* backend, unsigned interest, const char* op, int fd);

}  // namespace fern::detail
