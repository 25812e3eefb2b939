// Twin of gevent's tutorial program 03_random_task_sync_async.py: the same
// task run one after another, then spawned all at once; each sleeps a
// random 0, 1 or 2 ms, so the asynchronous half finishes in random order.
// No deliberate differences.
#include <cstdio>
#include <random>
#include <vector>

#include "fern/core/task.h"

namespace {

std::mt19937 rng{std::random_device{}()};

// Some non-deterministic task.
void task(int pid) {
  fern::sleep(std::uniform_int_distribution<int>(0, 2)(rng) * 0.001);
  std::printf("Task %d done\n", pid);
}

void synchronous() {
  for (int i = 1; i < 10; ++i) task(i);
}

void asynchronous() {
  std::vector<fern::AnyTask> threads;
  for (int i = 0; i < 10; ++i) threads.push_back(fern::any_task(fern::spawn(task, i)));
  fern::joinall(threads);
}

}  // namespace

int main() {
  std::puts("Synchronous:");
  synchronous();

  std::puts("Asynchronous:");
  asynchronous();
}
