#pragma once
// A real redis-server on a free 127.0.0.1 port, for one test suite: started
// with posix_spawn, ready once it logs that it accepts connections, stopped
// (SIGTERM, waited for) by the destructor. No persistence, no files.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

extern char** environ;

namespace fern::testing {

class RedisServer {
 public:
  explicit RedisServer(const char* binary) {
    port_ = free_port();
    int out[2];
    if (pipe(out) < 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, out[1]);
    std::string port = std::to_string(port_);
    const char* argv[] = {binary, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                          "--daemonize", "no", "--dir", "/tmp", "--loglevel", "notice", nullptr};
    int rc = posix_spawn(&pid_, binary, &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      throw std::runtime_error(std::string("posix_spawn redis-server: ") + std::strerror(rc));
    }
    // stdio reads through libc's own read: never a hooked call.
    FILE* log = fdopen(out[0], "r");
    char line[512];
    bool ready = false;
    while (!ready && std::fgets(line, sizeof line, log)) ready = std::strstr(line, "Ready to accept connections");
    std::fclose(log);  // redis-server's later log lines go to a closed pipe: it ignores SIGPIPE
    if (!ready) {
      stop();
      throw std::runtime_error("redis-server did not start");
    }
  }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }

 private:
  static int free_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    close(s);
    return ntohs(a.sin_port);
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace fern::testing
