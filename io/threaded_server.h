#pragma once
// A StreamServer on N OS threads, each with its own hub and its own
// SO_REUSEPORT listener on the same address: the kernel spreads new
// connections over the listeners, and each connection lives on one thread
// for good (its handler is a task of that thread's hub). gevent has one hub
// per thread too but no such server; this is how a fern program uses every
// core. The handler runs concurrently on several threads: what it shares
// across connections must be thread-safe (or reached through Remote handles,
// sync/remote.h).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "fern/io/server.h"
#include "fern/sync/remote.h"

namespace fern {

class ThreadedStreamServer {
 public:
  // threads >= 1, a handle, an IPv4 or IPv6 address and no options.pool (a
  // Pool is one hub's; else std::invalid_argument). options.reuse_port is
  // forced on. Nothing runs before start().
  ThreadedStreamServer(const Address& address, StreamServer::Handler handle, std::size_t threads,
                       StreamServer::Options options = {});
  ThreadedStreamServer(const ThreadedStreamServer&) = delete;
  ThreadedStreamServer& operator=(const ThreadedStreamServer&) = delete;
  // stop(0) if started.
  ~ThreadedStreamServer();

  // Starts the threads; returns once every listener accepts (the first
  // binds, so port 0 gives one ephemeral port to all). Blocks the calling OS
  // thread (not cooperatively) for that short while. Throws what a thread's
  // StreamServer::start threw (the threads already started are stopped).
  void start();
  // Each thread: StreamServer::stop(timeout), then its hub is destroyed and
  // the thread joined. Blocks the calling OS thread.
  void stop(Duration timeout = 1.0);

  std::uint16_t server_port() const noexcept { return port_; }
  std::size_t threads() const noexcept { return count_; }

 private:
  struct Worker;
  void launch(Worker& w, const Address& address);

  Address address_;
  StreamServer::Handler handle_;
  StreamServer::Options options_;
  std::size_t count_;
  std::uint16_t port_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace fern
