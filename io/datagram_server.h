#pragma once
// gevent.server.DatagramServer: receives datagrams on a UDP (or Unix
// datagram) socket and runs handle(data, address) for each in its own task.
//
// Mapping from gevent:
//   DatagramServer(('127.0.0.1', 0), handle)  DatagramServer(Address::ip("127.0.0.1", 0), handle)
//   DatagramServer(bound_socket, handle)      DatagramServer(std::move(socket), handle)
//   handle(self, data, address)               handle(const std::string& data, const Address& from)
//   server.sendto(data, address)              same (one sender at a time, gevent's write lock)
//   spawn=Pool(n)                             options.pool = &pool (reading pauses while it is full)
//   reuse_addr                                options.reuse_addr (true, as gevent's default), reuse_port
//   start(), serve_forever(), stop(timeout)   same; stop_accepting(), start_accepting()
//   server_port, address, started             server_port(), address(), started()
// A datagram is read whole up to Options::max_datagram bytes (64 KiB: any
// UDP datagram; gevent reads 8192 and drops the rest silently). A longer one
// (a Unix datagram socket's) is handed over cut to that size, counted in
// truncated(), and a line says so on stderr at most once a second. A
// handler's exception is reported by the hub and the server goes on; so does
// a failed read that a retry may cure (ENOBUFS, ENOMEM, an ICMP error on a
// connected socket), after a pause, reported at most once a second. A socket that cannot be read at all
// (EBADF, ENOTSOCK, EINVAL: closed behind the server's back) is reported
// once and closes the server: started() false, serve_forever() returns.
// One thread: the hub's.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "fern/core/deadline.h"
#include "fern/core/task.h"
#include "fern/io/address.h"
#include "fern/io/socket.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "fern/sync/semaphore.h"

namespace fern {

class DatagramServer {
 public:
  using Handler = std::function<void(const std::string& data, const Address& from)>;
  struct Options {
    bool reuse_addr = true;   // SO_REUSEADDR (not for an adopted socket)
    bool reuse_port = false;  // SO_REUSEPORT
    Pool* pool = nullptr;     // bounds concurrent handlers; must outlive the server
    std::size_t max_datagram = 64 * 1024;  // 1 or more (0: std::invalid_argument)
  };

  // Binds on start() (nothing is read before). An empty handle is
  // std::invalid_argument (gevent's TypeError).
  DatagramServer(const Address& address, Handler handle, Options options);
  DatagramServer(const Address& address, Handler handle) : DatagramServer(address, std::move(handle), Options()) {}
  // Serves an already bound datagram socket; another kind of socket is
  // std::invalid_argument.
  DatagramServer(Socket socket, Handler handle, Options options);
  DatagramServer(Socket socket, Handler handle) : DatagramServer(std::move(socket), std::move(handle), Options()) {}
  DatagramServer(const DatagramServer&) = delete;
  DatagramServer& operator=(const DatagramServer&) = delete;
  // stop(0) if still started; handlers still running are killed and waited
  // for. Blocks when there are any.
  ~DatagramServer();

  // Binds if needed and starts reading in a task; no-op if started. Throws
  // SocketError (e.g. EADDRINUSE). No switch.
  void start();
  // start(), then blocks until stop() (or a socket that cannot be read).
  void serve_forever();
  // Closes the socket, waits up to `timeout` for running handlers, then
  // kills those left and waits up to one second more (as StreamServer).
  // A handler may call it: it does not wait for (or kill) itself.
  void stop(Duration timeout = 1.0);
  // Pause / resume reading, keeping the socket open (datagrams queue in the
  // kernel meanwhile, up to its receive buffer).
  void stop_accepting();
  void start_accepting();

  // Sends one datagram from the server's socket (a reply, usually). Blocks
  // while the socket's send buffer is full; SocketError once stopped.
  std::size_t sendto(std::string_view data, const Address& to);

  bool started() const noexcept { return started_; }
  // The bound address (the ephemeral port once started).
  Address address() const { return address_; }
  std::uint16_t server_port() const { return address_.port(); }
  // Handler tasks not yet ended.
  std::size_t handler_count() const noexcept { return handlers_.size(); }
  // Datagrams longer than max_datagram, handed over cut.
  std::size_t truncated() const noexcept { return truncated_; }
  // Reads that failed and were tried again (an ICMP error, ENOBUFS, ...).
  std::size_t read_errors() const noexcept { return read_errors_; }

 private:
  void read_loop();
  void spawn_handler(std::string data, const Address& from);
  void note_truncated(std::size_t length);
  std::vector<AnyTask> running() const;

  Address address_;
  Handler handle_;  // the server outlives its running handlers (stop() ends them)
  Options options_;
  Socket socket_;
  std::unique_ptr<char[]> buffer_;  // one datagram, max_datagram bytes
  Group handlers_;
  Lock write_lock_;
  Task<void> reader_;
  Event stopped_;
  Nanos last_log_ = 0;        // the last truncation line
  Nanos last_error_log_ = 0;  // the last read error reported
  std::size_t truncated_ = 0;
  std::size_t read_errors_ = 0;
  bool started_ = false;
};

}  // namespace fern
