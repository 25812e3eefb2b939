// Helper for server_test: a StreamServer under a low RLIMIT_NOFILE. Prints
// its port, greets each connection with "hi" and holds it until the client
// closes; after N connections prints "resource_errors K" and exits 0.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include "fern/io/server.h"
#include "fern/sync/event.h"
#include "io_fixture.h"

int main(int argc, char** argv) {
  int total = argc > 1 ? std::atoi(argv[1]) : 16;
  int handled = 0;
  fern::Event done;
  fern::StreamServer server(fern::Address::ip("127.0.0.1", 0), [&](fern::Socket& s, const fern::Address&) {
    s.sendall("hi");
    char c;
    while (s.recv_into(&c, 1)) {
    }
    if (++handled == total) done.set();
  });
  server.start();
  // Room for a few connections only: the rest meet EMFILE in accept.
  rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = fern::testing::open_fd_count() + 4;
  setrlimit(RLIMIT_NOFILE, &lim);
  std::printf("%u\n", server.server_port());
  std::fflush(stdout);
  done.wait();
  std::printf("resource_errors %zu\n", server.resource_errors());
  server.stop();
  return 0;
}
