// Twin of gevent's tutorial program 33_multiprocessing_pipe_wait.py: a
// child process relays messages between two pipes; in the parent, one task
// waits for each pipe to be writable and sends "hi", another waits for the
// other to be readable and prints each relayed message (IO-1).
// multiprocessing.Pipe() is a socketpair carrying length-prefixed messages;
// the twin frames them the same way (4-byte length, then the bytes), and
// like multiprocessing it waits for the child at exit. The connections are
// blocking fds, as multiprocessing's: wait_read/wait_write only poll.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/io/wait.h"

namespace {

struct Pipe {  // one end each side, as multiprocessing.Pipe()
  int a, b;
  Pipe() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::perror("socketpair");
    a = fds[0];
    b = fds[1];
  }
};

void send_msg(int fd, const std::string& msg) {
  std::uint32_t n = static_cast<std::uint32_t>(msg.size());
  std::string frame(reinterpret_cast<const char*>(&n), sizeof n);
  frame += msg;
  for (std::size_t off = 0; off < frame.size();) {
    ssize_t w = write(fd, frame.data() + off, frame.size() - off);
    if (w <= 0) return;
    off += static_cast<std::size_t>(w);
  }
}

bool read_exact(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

std::string recv_msg(int fd) {
  std::uint32_t n = 0;
  if (!read_exact(fd, reinterpret_cast<char*>(&n), sizeof n)) return "";
  std::string msg(n, '\0');
  read_exact(fd, msg.data(), n);
  return msg;
}

}  // namespace

int main() {
  Pipe to_child, from_child;  // a, b = Pipe(); c, d = Pipe()
  pid_t pid = fork();
  if (pid == 0) {  // relay(): plain blocking code, as in the child process
    for (int i = 0; i < 10; ++i) send_msg(from_child.a, recv_msg(to_child.b) + " in " + std::to_string(i));
    _exit(0);
  }
  auto g1 = fern::spawn([&] {  // get_msg
    for (int i = 0; i < 10; ++i) {
      fern::wait_read(from_child.b);
      std::puts(recv_msg(from_child.b).c_str());
    }
  });
  auto g2 = fern::spawn([&] {  // put_msg
    for (int i = 0; i < 10; ++i) {
      fern::wait_write(to_child.a);
      send_msg(to_child.a, "hi");
    }
  });
  fern::joinall({fern::any_task(g1), fern::any_task(g2)}, fern::JoinAll().within(1.0));
  std::fflush(stdout);
  int status;
  waitpid(pid, &status, 0);  // multiprocessing joins its children at exit
  return 0;
}
