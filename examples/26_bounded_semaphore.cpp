// Twin of gevent's tutorial program 26_bounded_semaphore.py: a
// BoundedSemaphore(2) taken by Pool.map workers, by hand (acquire/release)
// and as a scope (std::lock_guard for Python's `with sem:`).
// Deliberate difference: fern's map needs a function that returns a value,
// so the workers return their number (Python's return None, unused).
#include <cstdio>
#include <mutex>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/group.h"
#include "fern/sync/semaphore.h"

namespace {

fern::BoundedSemaphore sem(2);

int worker1(int n) {
  sem.acquire();
  std::printf("Worker %i acquired semaphore\n", n);
  fern::sleep(0);
  sem.release();
  std::printf("Worker %i released semaphore\n", n);
  return n;
}

int worker2(int n) {
  {
    std::lock_guard<fern::BoundedSemaphore> with(sem);
    std::printf("Worker %i acquired semaphore\n", n);
    fern::sleep(0);
  }
  std::printf("Worker %i released semaphore\n", n);
  return n;
}

}  // namespace

int main() {
  fern::Pool pool;
  pool.map(worker1, std::vector<int>{0, 1});
  pool.map(worker2, std::vector<int>{3, 4, 5});
}
