// Load generator for the echo and idle benchmarks (plain epoll, one thread,
// loopback only (127.0.0.1; 127.0.0.2.. as extra source addresses past
// 20,000 idle connections), bounded in time and count). It starts the server given on
// its command line with pipes on the server's stdin/stdout; the server
// prints its port, and answers each line on its stdin with
// "user_us sys_us rss_bytes connections" (its own getrusage and RSS).
//
//   echo_load echo SERVER C SECONDS   closed loop: C connections, one 64-byte
//       message in flight each; prints "rt=N user_us_per_rt=U sys_us_per_rt=S
//       p50_us=A p99_us=B" for the measured window (after a warm-up).
//   echo_load ws SERVER C SECONDS     the same over WebSocket: the server is
//       started with the argument "ws"; each message is a masked 64-byte
//       binary frame (70 bytes), each reply an unmasked one (66 bytes).
//   echo_load idle SERVER N           N idle connections; prints
//       "n=N rss_bytes_per_connection=B" (server RSS after - before, / N).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMessage = 64;

struct Server {
  pid_t pid = -1;
  FILE* in = nullptr;   // the server's stdin
  FILE* out = nullptr;  // the server's stdout
  int port = 0;
};

Server start_server(const char* path, const char* arg = nullptr) {
  int to[2], from[2];
  if (pipe(to) || pipe(from)) std::exit(2);
  Server s;
  s.pid = fork();
  if (s.pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    close(to[1]);
    close(from[0]);
    execl(path, path, arg, static_cast<char*>(nullptr));
    std::perror(path);
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  s.in = fdopen(to[1], "w");
  s.out = fdopen(from[0], "r");
  if (std::fscanf(s.out, "%d", &s.port) != 1) {
    std::fprintf(stderr, "echo_load: %s printed no port\n", path);
    std::exit(2);
  }
  return s;
}

struct Usage {
  long user_us = 0, sys_us = 0, rss = 0, connections = 0;
};

Usage query(Server& s) {
  std::fputs("r\n", s.in);
  std::fflush(s.in);
  Usage u;
  if (std::fscanf(s.out, "%ld %ld %ld %ld", &u.user_us, &u.sys_us, &u.rss, &u.connections) != 4) {
    std::fprintf(stderr, "echo_load: the server did not report its usage\n");
    std::exit(2);
  }
  return u;
}

void stop_server(Server& s) {
  std::fclose(s.in);
  int status;
  for (int i = 0; i < 200 && waitpid(s.pid, &status, WNOHANG) == 0; ++i) usleep(10000);
  kill(s.pid, SIGKILL);
  waitpid(s.pid, &status, 0);
  std::fclose(s.out);
}

// Connection i comes from 127.0.0.(1 + i / 20000): one source address has
// about 28,000 ephemeral ports, and 100,000 idle connections need more.
int connect_to(int port, int i = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && i >= 20000) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + static_cast<std::uint32_t>(i / 20000));
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      std::perror("echo_load: bind a loopback source address");
      std::exit(2);
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("echo_load: connect");
    std::exit(2);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void raise_fd_limit() {
  rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
}

struct Conn {
  int fd;
  std::size_t got = 0;
  Clock::time_point sent;
};

// The WebSocket opening handshake, blocking (before the measured loop).
void handshake(int fd) {
  const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (write(fd, req, sizeof req - 1) != static_cast<ssize_t>(sizeof req - 1)) std::exit(2);
  std::string got;
  char c;
  while (got.size() < 4 || got.compare(got.size() - 4, 4, "\r\n\r\n") != 0) {
    if (read(fd, &c, 1) != 1) std::exit(2);
    got += c;
  }
  if (got.compare(0, 12, "HTTP/1.1 101") != 0) {
    std::fprintf(stderr, "echo_load: the WebSocket handshake was refused\n");
    std::exit(2);
  }
}

int run_echo(const char* path, int c, double seconds, bool ws) {
  raise_fd_limit();
  Server s = start_server(path, ws ? "ws" : nullptr);
  std::vector<Conn> conns;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  // A plain message, or a masked binary frame of it (mask 0: XOR is a no-op
  // but the server still does the work).
  char msg[kMessage + 6];
  std::size_t msg_len = kMessage, reply_len = kMessage;
  std::memset(msg, 'e', sizeof msg);
  if (ws) {
    const char frame[] = {'\x82', static_cast<char>(0x80 | kMessage), 0, 0, 0, 0};
    std::memcpy(msg, frame, sizeof frame);
    msg_len = kMessage + 6;
    reply_len = kMessage + 2;
  }
  for (int i = 0; i < c; ++i) {
    conns.push_back(Conn{connect_to(s.port), 0, Clock::now()});
    if (ws) handshake(conns.back().fd);
  }
  for (int i = 0; i < c; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    conns[i].sent = Clock::now();
    if (write(conns[i].fd, msg, msg_len) != static_cast<ssize_t>(msg_len)) return 2;
  }
  std::vector<double> latencies;
  latencies.reserve(1 << 22);
  long rts = 0;
  bool measuring = false;
  Usage before{};
  rusage own_before{};
  Clock::time_point window_start;
  auto start = Clock::now();
  auto warm_until = start + std::chrono::milliseconds(300);
  auto end_at = warm_until + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  epoll_event events[512];
  char buf[4096];
  for (;;) {
    int n = epoll_wait(ep, events, 512, 100);
    auto now = Clock::now();
    if (!measuring && now >= warm_until) {
      before = query(s);  // the server's CPU so far: the window starts here
      getrusage(RUSAGE_SELF, &own_before);
      measuring = true;
      now = Clock::now();
      window_start = now;
    }
    if (now >= end_at) break;
    for (int i = 0; i < n; ++i) {
      Conn& k = conns[events[i].data.u32];
      ssize_t r = read(k.fd, buf, sizeof buf);
      if (r <= 0) {
        std::fprintf(stderr, "echo_load: the server closed a connection\n");
        return 2;
      }
      k.got += static_cast<std::size_t>(r);
      if (k.got < reply_len) continue;
      k.got -= reply_len;
      if (measuring) {
        latencies.push_back(std::chrono::duration<double, std::micro>(now - k.sent).count());
        ++rts;
      }
      k.sent = now;
      if (write(k.fd, msg, msg_len) != static_cast<ssize_t>(msg_len)) return 2;
    }
  }
  Usage after = query(s);
  rusage own_after{};
  getrusage(RUSAGE_SELF, &own_after);
  double window_s = std::chrono::duration<double>(Clock::now() - window_start).count();
  auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
  double load_cpu_us = us(own_after.ru_utime) - us(own_before.ru_utime) + us(own_after.ru_stime) - us(own_before.ru_stime);
  for (Conn& k : conns) close(k.fd);
  stop_server(s);
  if (rts == 0) return 2;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) { return latencies[static_cast<std::size_t>(p * static_cast<double>(latencies.size() - 1))]; };
  // rt_per_s, load_cpu_share and server_cpu_share (this generator's and the
  // server's CPU over the window, in cores) are for the scaling table: the
  // generator shares the machine with the server.
  std::printf("rt=%ld user_us_per_rt=%.3f sys_us_per_rt=%.3f p50_us=%.0f p99_us=%.0f rt_per_s=%.0f load_cpu_share=%.2f server_cpu_share=%.2f\n",
              rts, static_cast<double>(after.user_us - before.user_us) / static_cast<double>(rts),
              static_cast<double>(after.sys_us - before.sys_us) / static_cast<double>(rts), pct(0.50), pct(0.99),
              static_cast<double>(rts) / window_s, load_cpu_us / 1e6 / window_s,
              static_cast<double>(after.user_us - before.user_us + after.sys_us - before.sys_us) / 1e6 / window_s);
  return 0;
}

int run_idle(const char* path, int n) {
  raise_fd_limit();
  Server s = start_server(path);
  // Warm the server with one connection, so that one-time costs (the first
  // task, the poller's tables) are in the baseline.
  close(connect_to(s.port));
  while (query(s).connections != 0) usleep(1000);
  Usage before = query(s);
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) fds.push_back(connect_to(s.port, i));
  Usage after;
  for (int i = 0; i < 3000; ++i) {  // at most 30 s for the server to accept them all
    after = query(s);
    if (after.connections >= n) break;
    usleep(10000);
  }
  if (after.connections < n) {
    std::fprintf(stderr, "echo_load: the server accepted %ld of %d\n", after.connections, n);
    return 2;
  }
  // Accepted is not yet parked: a handler touches its stack when it first
  // runs. Measure once the RSS has held still for three readings 20 ms apart.
  for (int still = 0, i = 0; still < 3 && i < 250; ++i) {
    usleep(20000);
    Usage now = query(s);
    still = now.rss == after.rss ? still + 1 : 0;
    after = now;
  }
  std::printf("n=%d rss_bytes_per_connection=%.0f\n", n,
              static_cast<double>(after.rss - before.rss) / static_cast<double>(n));
  for (int fd : fds) close(fd);
  stop_server(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc == 5 && std::strcmp(argv[1], "echo") == 0) return run_echo(argv[2], std::atoi(argv[3]), std::atof(argv[4]), false);
  if (argc == 5 && std::strcmp(argv[1], "ws") == 0) return run_echo(argv[2], std::atoi(argv[3]), std::atof(argv[4]), true);
  if (argc == 4 && std::strcmp(argv[1], "idle") == 0) return run_idle(argv[2], std::atoi(argv[3]));
  std::fprintf(stderr, "usage: echo_load echo|ws SERVER C SECONDS | echo_load idle SERVER N\n");
  return 2;
}
