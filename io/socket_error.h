#pragma once
// Typed socket and resolver errors. Every one is a std::system_error that
// keeps its errno (code()) and names the operation that failed (op()), so
// `catch (const std::system_error&)` sees them all and callers that care can
// catch the specific kind (gevent / Python: ConnectionRefusedError, ...).
#include <string>
#include <system_error>

namespace fern {

class SocketError : public std::system_error {
 public:
  SocketError(int err, const char* op);
  // The operation that failed: "connect", "recv", "sendall", ...
  const char* op() const noexcept { return op_; }

 protected:
  // what() is `what` and the errno's message (not "fern: op").
  SocketError(int err, const char* op, const std::string& what)
      : std::system_error(err, std::generic_category(), what), op_(op) {}

 private:
  const char* op_;
};

// ECONNREFUSED: nothing listens at the address (IO-7).
class ConnectionRefusedError : public SocketError {
 public:
  explicit ConnectionRefusedError(const char* op) : SocketError(ECONNREFUSED, op) {}
};
// ECONNRESET / ECONNABORTED: the peer reset the connection.
class ConnectionResetError : public SocketError {
 public:
  ConnectionResetError(int err, const char* op) : SocketError(err, op) {}
};
// EPIPE: writing to a connection the peer (or we) shut down. SIGPIPE is
// never raised by fern's sockets; this error is.
class BrokenPipeError : public SocketError {
 public:
  explicit BrokenPipeError(const char* op) : SocketError(EPIPE, op) {}
};
// The socket's timeout passed in a blocking call (gevent's socket.timeout,
// IO-4). code() is ETIMEDOUT; what() ends with "timed out".
class SocketTimeout : public SocketError {
 public:
  explicit SocketTimeout(const char* op) : SocketError(ETIMEDOUT, op) {}
};

// Throws the typed error for errno `err` from operation `op`.
[[noreturn]] void throw_socket_error(int err, const char* op);

// The error category of getaddrinfo's EAI_* codes (gai_strerror messages).
const std::error_category& gai_category() noexcept;

// A name-resolution failure (gevent's socket.gaierror, IO-9): code() is the
// EAI_* value in gai_category(); for EAI_SYSTEM, sys_errno() is the errno.
class ResolveError : public std::system_error {
 public:
  ResolveError(int eai, const std::string& what, int sys_errno = 0);
  int eai() const noexcept { return code().value(); }
  int sys_errno() const noexcept { return sys_errno_; }

 private:
  int sys_errno_;
};

}  // namespace fern
