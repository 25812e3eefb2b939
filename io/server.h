#pragma once
// gevent.server.StreamServer: accepts connections and runs
// handle(socket, address) for each in its own task (SRV-3).
//
// Mapping from gevent:
//   StreamServer(('127.0.0.1', 0), handle)   StreamServer(Address::ip("127.0.0.1", 0), handle)
//   StreamServer(listening_socket, handle)   StreamServer(std::move(socket), handle)
//   spawn=Pool(n) / spawn=n                  options.pool = &pool (bounds concurrency, SRV-6)
//   backlog, reuse_addr                      options.backlog, reuse_addr, reuse_port
//   start(), serve_forever(), stop(timeout)  same; stop_accepting(), start_accepting()
//   server_port, address, started            server_port(), address(), started()
// The client socket is closed when the handler returns or throws; a
// handler's exception is reported by the hub and the server keeps serving
// (SRV-4). accept failing for lack of fds or memory (EMFILE, ENFILE,
// ENOBUFS, ENOMEM) backs off: at most one log line a second, accepting
// again within 50 ms of resources coming back, never a busy loop. accept
// failing in a way no retry cures (EBADF, EINVAL, ENOTSOCK, EOPNOTSUPP: the
// listener shut down or closed behind the server's back, or never
// listening) is reported once and closes the server as gevent's does:
// started() false, serve_forever() returns, running handlers go on (a
// later stop() or the destructor ends them).
// One thread: the hub's.
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/address.h"
#include "fern/io/socket.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"

namespace fern {

class StreamServer {
 public:
  using Handler = std::function<void(Socket&, const Address&)>;
  struct Options {
    std::optional<int> backlog;  // listen(2)'s; not given: SOMAXCONN
    bool reuse_addr = true;   // SO_REUSEADDR (not for an adopted listener)
    bool reuse_port = false;  // SO_REUSEPORT
    Pool* pool = nullptr;     // bounds concurrent handlers; must outlive the server
  };

  // Binds and listens on start() (SRV-2: nothing is accepted before).
  // An empty handle is std::invalid_argument (gevent's TypeError).
  StreamServer(const Address& address, Handler handle, Options options);
  StreamServer(const Address& address, Handler handle) : StreamServer(address, std::move(handle), Options()) {}
  // Serves an already listening socket (SRV-1). A backlog given with it is
  // std::invalid_argument (gevent's TypeError: the socket already listens).
  StreamServer(Socket listener, Handler handle, Options options);
  StreamServer(Socket listener, Handler handle) : StreamServer(std::move(listener), std::move(handle), Options()) {}
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;
  // stop(0) if still started; handlers still running (one that stopped its
  // own server) are killed and waited for. Blocks when there are any.
  ~StreamServer();

  // Binds/listens if needed and starts accepting in a task; no-op if
  // started. Throws SocketError (e.g. EADDRINUSE). No switch.
  void start();
  // start(), then blocks (switches to the hub) until stop().
  void serve_forever();
  // Closes the listener (new connections are refused), waits up to
  // `timeout` for running handlers, then kills those left and waits up to
  // one second more (SRV-5, as gevent): a handler that swallows its kill
  // is left running then (the destructor kills it again and waits). Blocks.
  // A no-op once stopped with no handler running.
  // A handler may call it: it does not wait for (or kill) itself; it must
  // end before the server is destroyed, or is killed then.
  void stop(Duration timeout = 1.0);
  // Pause / resume accepting, keeping the listener open (SRV-5).
  void stop_accepting();
  void start_accepting();

  bool started() const noexcept { return started_; }
  // The bound address (the ephemeral port once started, SRV-7).
  Address address() const;
  std::uint16_t server_port() const { return address().port(); }
  // Handler tasks not yet ended.
  std::size_t connection_count() const noexcept { return connection_count_; }
  // accept(2) failures for lack of resources seen so far (EMFILE, ...).
  std::size_t resource_errors() const noexcept { return resource_errors_; }

 private:
  class Connection;  // one handler task: its socket, peer and list hook in one allocation
  void accept_loop();
  void spawn_handler(Socket::Accepted conn);
  void back_off(const SocketError& e);
  std::vector<AnyTask> running() const;

  Address address_;
  Handler handle_;  // the server outlives its running handlers (stop() ends them)
  Options options_;
  Socket listener_;
  Connection* connections_ = nullptr;  // intrusive list of handler tasks not yet ended
  std::size_t connection_count_ = 0;
  Task<void> acceptor_;
  Event stopped_;
  Nanos last_log_ = 0;
  std::size_t resource_errors_ = 0;
  bool started_ = false;
};

}  // namespace fern
