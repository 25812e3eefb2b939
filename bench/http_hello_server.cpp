// fern's side of bench/http_report.sh: a hello-world HTTP/1.1 keep-alive
// server answering every request with the same 13-byte body nginx's
// `return 200 "Hello, World!"` sends. Prints its port on stdout; runs until
// killed (SIGTERM).
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

#include "fern/io/http/server.h"

int main(int argc, char** argv) {
  rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 0);
  fern::http::HttpServer server(fern::Address::ip("127.0.0.1", port),
                                [](fern::http::Request&, fern::http::Response& response) {
                                  response.add_header("Server", "fern");
                                  response.add_header("Content-Type", "text/plain");
                                  response.send("Hello, World!");
                                });
  server.start();
  std::printf("%u\n", server.server_port());
  std::fflush(stdout);
  server.serve_forever();
  return 0;
}
