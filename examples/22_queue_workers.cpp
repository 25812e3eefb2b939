// Twin of gevent's tutorial program 22_queue_workers.py: the boss fills a
// Queue with 24 tasks; three workers drain it with sleep(0) between items,
// in strict steve, john, nancy rotation (as real gevent 22.10 prints; the
// tutorial text shows an older order). No deliberate differences.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/sync/queue.h"

namespace {

fern::Queue<int> tasks;

void worker(const char* n) {
  while (!tasks.empty()) {
    int task = tasks.get();
    std::printf("Worker %s got task %d\n", n, task);
    fern::sleep(0);
  }
  std::puts("Quitting time!");
}

void boss() {
  for (int i = 1; i < 25; ++i) tasks.put_nowait(i);
}

}  // namespace

int main() {
  fern::spawn(boss).join();

  fern::joinall({
      fern::any_task(fern::spawn(worker, "steve")),
      fern::any_task(fern::spawn(worker, "john")),
      fern::any_task(fern::spawn(worker, "nancy")),
  });
}
