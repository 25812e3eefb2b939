// fern's side of the echo and idle benchmarks: a StreamServer whose handler
// echoes (recv_into + sendall) until the peer closes; an idle connection is
// one handler task parked in recv. With the argument "ws": an HttpServer
// whose handler accepts a WebSocket and echoes each message (issue 10: the
// framing's cost over the plain echo). Same protocol as raw_epoll_echo.c: the
// port on stdout, and for each line on stdin "user_us sys_us rss_bytes
// connections"; EOF on stdin stops the server.
//
// For the scaling table (bench/scale_report.sh): FERN_ECHO_THREADS=N serves
// on N threads, each with its own hub and SO_REUSEPORT listener
// (ThreadedStreamServer; the connections column is then 0), and
// FERN_ECHO_WORK_US=U spends U microseconds of CPU on each message before
// echoing it (a server that computes, so that its own CPU is what scales).
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fern/core/clock.h"
#include "fern/io/fd_stream.h"
#include "fern/io/http/server.h"
#include "fern/io/http/websocket.h"
#include "fern/io/server.h"
#include "fern/io/threaded_server.h"

namespace {

long rss_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

long env_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atol(v) : fallback;
}

// CPU work standing in for a request's computation: spins on the clock.
void work_for(fern::Nanos ns) {
  fern::Nanos until = fern::monotonic_now() + ns;
  while (fern::monotonic_now() < until) {
  }
}

}  // namespace

// Starts `server`, prints its port, and answers each line on stdin with its
// usage; EOF on stdin stops it.
std::size_t connections(fern::ThreadedStreamServer&) { return 0; }  // per-thread servers: not counted
template <class Server>
std::size_t connections(Server& server) {
  return server.connection_count();
}
template <class Server>
int serve(Server& server) {
  server.start();
  std::printf("%u\n", server.server_port());
  std::fflush(stdout);

  fern::FdStream control(dup(0));
  char line[256];
  while (control.read(line, sizeof line) > 0) {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("%ld %ld %ld %zu\n", ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec,
                ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec, rss_bytes(), connections(server));
    std::fflush(stdout);
  }
  control.close();
  server.stop(0.0);
  return 0;
}

int main(int argc, char** argv) {
  rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);

  const fern::Address address = fern::Address::ip("127.0.0.1", 0);
  if (argc > 1 && std::string(argv[1]) == "ws") {
    fern::http::HttpServer ws_server(address, [](fern::http::Request& q, fern::http::Response& r) {
      auto ws = fern::http::WebSocket::accept(q, r);
      while (auto m = ws.receive()) ws.send_binary(m->data);
    });
    return serve(ws_server);
  }
  const long threads = env_number("FERN_ECHO_THREADS", 1);
  const fern::Nanos work = env_number("FERN_ECHO_WORK_US", 0) * 1000;
  auto echo = [work](fern::Socket& s, const fern::Address&) {
    s.set_nodelay();
    char buf[512];  // 64-byte messages; a small frame keeps a parked handler's stack to its first page
    try {
      while (std::size_t n = s.recv_into(buf, sizeof buf)) {
        if (work) work_for(work);
        s.sendall(buf, n);
      }
    } catch (const fern::ConnectionResetError&) {
      // The load generator closes with replies unread: a reset, not a failure.
    }
  };
  if (threads > 1) {
    fern::ThreadedStreamServer threaded(address, echo, static_cast<std::size_t>(threads));
    return serve(threaded);
  }
  fern::StreamServer server(address, echo);
  return serve(server);
}
