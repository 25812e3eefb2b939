// Twin of gevent's tutorial program 15_run_forever_then_kill_scaled.py:
// join a sleeping task, then kill it; killing a dead task is a no-op.
// No output. Deliberate difference: sleep scaled 1 s -> 0.1 s (the
// reference itself is the 1000 s -> 1 s scaled variant).
#include "fern/core/task.h"

namespace {

void run_forever() { fern::sleep(0.1); }

}  // namespace

int main() {
  fern::Task<void> thread = fern::spawn(run_forever);
  thread.join();
  thread.kill_async();  // gevent.kill(thread)
}
