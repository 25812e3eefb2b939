/* The ceiling for the echo benchmark: a plain single-threaded epoll echo
 * server in C (level-triggered, one read and one write per event, as a
 * careful hand-written server would do). Protocol shared with
 * echo_fern_server: prints its port on stdout; each line on stdin is
 * answered with "user_us sys_us rss_bytes connections" from getrusage and
 * /proc; EOF on stdin ends it. RLIMIT_NOFILE is raised to its hard limit. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static long rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

int main(void) {
  struct rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);

  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(l, (struct sockaddr*)&a, sizeof a) || listen(l, SOMAXCONN) || getsockname(l, (struct sockaddr*)&a, &len)) {
    perror("raw_epoll_echo");
    return 1;
  }
  printf("%u\n", ntohs(a.sin_port));
  fflush(stdout);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  ev.data.fd = 0;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
  struct epoll_event events[256];
  char buf[4096];
  long connections = 0;
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == l) {
        int c;
        while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          ++connections;
        }
      } else if (fd == 0) {
        ssize_t r = read(0, buf, sizeof buf);
        if (r <= 0) return 0;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("%ld %ld %ld %ld\n", ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec,
               ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec, rss_bytes(), connections);
        fflush(stdout);
      } else {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          /* 64-byte messages fit the socket buffer: a short write does not happen here. */
          if (write(fd, buf, (size_t)r) < 0 && errno != EAGAIN) r = 0;
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          close(fd);
          --connections;
        }
      }
    }
  }
}
