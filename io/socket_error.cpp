#include "fern/io/socket_error.h"

#include <netdb.h>

#include <cerrno>

namespace fern {

SocketError::SocketError(int err, const char* op)
    : std::system_error(err, std::generic_category(), std::string("fern: ") + op), op_(op) {}

void throw_socket_error(int err, const char* op) {
  switch (err) {
    case ECONNREFUSED:
      throw ConnectionRefusedError(op);
    case ECONNRESET:
    case ECONNABORTED:
      throw ConnectionResetError(err, op);
    case EPIPE:
      throw BrokenPipeError(op);
    case ETIMEDOUT:
      throw SocketTimeout(op);
    default:
      throw SocketError(err, op);
  }
}

namespace {
class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return gai_strerror(code); }
};
}  // namespace

const std::error_category& gai_category() noexcept {
  static const GaiCategory category;
  return category;
}

ResolveError::ResolveError(int eai, const std::string& what, int sys_errno)
    : std::system_error(eai, gai_category(), what), sys_errno_(sys_errno) {}

}  // namespace fern
