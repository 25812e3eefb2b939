// ThreadedStreamServer: a StreamServer per thread, each with its own hub and
// SO_REUSEPORT listener (issue 12, "a hub per thread, used"); the handler
// semantics are StreamServer's (SRV-3, SRV-4, SRV-7).
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/io/threaded_server.h"
#include "io_fixture.h"

namespace {

using fern::Address;
using fern::Socket;
using ThreadedServerIo = fern::testing::IoTest;

struct Seen {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::set<const fern::Hub*> hubs;
  void note() {
    std::lock_guard<std::mutex> lock(mutex);
    threads.insert(std::this_thread::get_id());
    hubs.insert(&fern::Hub::current());
  }
};

// SRV-3, SRV-7: one port for every thread; each connection echoed by a task
// of the hub of the thread whose listener took it.
TEST_F(ThreadedServerIo, EveryThreadServesOnOnePortWithItsOwnHub) {
  Seen seen;
  fern::ThreadedStreamServer server(Address::ip("127.0.0.1", 0), [&seen](Socket& s, const Address&) {
    seen.note();
    char buf[64];
    while (std::size_t n = s.recv_into(buf, sizeof buf)) s.sendall(buf, n);
  }, 2);
  server.start();
  ASSERT_NE(server.server_port(), 0);
  // 64 connections: the kernel hashes them over both listeners (all on one
  // has probability 2^-63).
  std::vector<fern::Task<std::string>> clients;
  for (int i = 0; i < 64; ++i) {
    clients.push_back(fern::spawn([&server, i] {
      Socket c(AF_INET, SOCK_STREAM);
      c.connect(Address::ip("127.0.0.1", server.server_port()));
      std::string msg = "message " + std::to_string(i);
      c.sendall(msg);
      c.shutdown(SHUT_WR);
      std::string back;
      char buf[64];
      while (std::size_t n = c.recv_into(buf, sizeof buf)) back.append(buf, n);
      return back;
    }));
  }
  for (int i = 0; i < 64; ++i) EXPECT_EQ(clients[static_cast<std::size_t>(i)].get(), "message " + std::to_string(i));
  server.stop();
  EXPECT_EQ(seen.threads.size(), 2u);
  EXPECT_EQ(seen.hubs.size(), 2u);
  EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 0u);
}

TEST_F(ThreadedServerIo, ZeroThreadsIsRejected) {
  EXPECT_THROW(fern::ThreadedStreamServer(Address::ip("127.0.0.1", 0), [](Socket&, const Address&) {}, 0),
               std::invalid_argument);
}

// A thread that cannot listen fails start() with its error.
TEST_F(ThreadedServerIo, StartRethrowsAListenersError) {
  Socket taken(AF_INET, SOCK_STREAM);
  taken.bind(Address::ip("127.0.0.1", 0));
  taken.listen(1);
  fern::ThreadedStreamServer server(taken.local_address(), [](Socket&, const Address&) {}, 2);
  EXPECT_THROW(server.start(), fern::SocketError);  // EADDRINUSE: `taken` has no SO_REUSEPORT
}

// As StreamServer (test__server.py::TestDefaultSpawn::test_invalid_callback):
// no handler is std::invalid_argument when the server is made.
TEST_F(ThreadedServerIo, AServerWithoutAHandlerIsRefusedWhenMade) {
  EXPECT_THROW(fern::ThreadedStreamServer(Address::ip("127.0.0.1", 0), fern::StreamServer::Handler(), 2),
               std::invalid_argument);
}

// A Pool belongs to one hub: the server's threads would all take and
// return its slots at once (a data race). Refused when the server is made.
TEST_F(ThreadedServerIo, APoolIsRefusedWhenMade) {
  fern::Pool pool(4);
  fern::StreamServer::Options options;
  options.pool = &pool;
  EXPECT_THROW(fern::ThreadedStreamServer(Address::ip("127.0.0.1", 0), [](Socket&, const Address&) {}, 2, options),
               std::invalid_argument);
}

// Each thread binds the address again with SO_REUSEPORT, which Unix
// sockets cannot share: refused when the server is made, not left to the
// kernel's answer in start() (older kernels took the option, and the
// second thread's address, made from the first one's port, was no address).
TEST_F(ThreadedServerIo, AUnixAddressIsRefusedWhenMade) {
  const Address path = Address::unix_path("/tmp/fern_threaded_server_" + std::to_string(getpid()));
  EXPECT_THROW(fern::ThreadedStreamServer(path, [](Socket&, const Address&) {}, 1), std::invalid_argument);
}

}  // namespace
