// Twin of gevent's tutorial program 23_queue_maxsize_timeout.py: the boss
// blocks on put() into a Queue of maxsize 3 until a worker takes an item;
// workers get_for(timeout) and quit when it comes back empty (gevent raises
// queue.Empty) once the work is done. Strict steve, john, bob rotation as real gevent 22.10.
// Deliberate difference: get timeout 1 s -> 0.1 s.
#include <cstdio>
#include <optional>

#include "fern/core/task.h"
#include "fern/sync/queue.h"

namespace {

fern::Queue<int> tasks(3);

void worker(const char* n) {
  while (std::optional<int> task = tasks.get_for(0.1)) {  // decrements queue size by 1
    std::printf("Worker %s got task %d\n", n, *task);
    fern::sleep(0);
  }
  std::puts("Quitting time!");
}

// Boss will wait to hand out work until an individual worker is free since
// the maxsize of the task queue is 3.
void boss() {
  for (int i = 1; i < 10; ++i) tasks.put(i);
  std::puts("Assigned all work in iteration 1");

  for (int i = 10; i < 20; ++i) tasks.put(i);
  std::puts("Assigned all work in iteration 2");
}

}  // namespace

int main() {
  fern::joinall({
      fern::any_task(fern::spawn(boss)),
      fern::any_task(fern::spawn(worker, "steve")),
      fern::any_task(fern::spawn(worker, "john")),
      fern::any_task(fern::spawn(worker, "bob")),
  });
}
