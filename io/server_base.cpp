#include "fern/io/server_base.h"

#include <sys/socket.h>

#include <utility>

namespace fern::detail {

Socket bound_socket(const Address& address, int type, bool reuse_addr, bool reuse_port) {
  Socket s(address.family(), type);
  if (reuse_addr && address.family() != AF_UNIX) s.set_reuse_addr();
#ifdef SO_REUSEPORT
  if (reuse_port) s.set_option(SOL_SOCKET, SO_REUSEPORT, 1);
#else
  (void)reuse_port;
#endif
  s.bind(address);
  return s;
}

void resume_serving(Task<void>& task, std::function<void()> loop) {
  if (task && !task.dead()) return;
  task = spawn(std::move(loop));
}

void pause_serving(Task<void>& task) {
  if (!task) return;
  Task<void> t = std::exchange(task, Task<void>());
  t.kill();
}

void end_handlers(Deadline deadline, const std::function<std::vector<AnyTask>()>& running) {
  std::vector<AnyTask> handlers = running();
  if (joinall(handlers, JoinAll().until(deadline)).size() < handlers.size()) {
    std::vector<AnyTask> left = running();
    killall_async(left);
    joinall(left, JoinAll().until(Duration(1.0).from_now()));
  }
}

std::vector<AnyTask> all_but_current(std::vector<AnyTask> tasks) {
  Greenlet me = Greenlet::current();
  for (auto it = tasks.begin(); it != tasks.end(); ++it) {
    if ((*it)->greenlet() == me) {
      tasks.erase(it);
      break;
    }
  }
  return tasks;
}

bool once_a_second(Nanos& last) noexcept {
  Nanos now = monotonic_now();
  if (last != 0 && now - last < 1'000'000'000) return false;
  last = now;
  return true;
}

}  // namespace fern::detail
