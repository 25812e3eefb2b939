// Twin of gevent's tutorial program 10_timeout_start_join_scaled.py: a
// Timeout started in the main greenlet fires while it is blocked joining a
// task that sleeps as long as the timeout.
// Deliberate difference: 1 s -> 0.1 s for both the Timeout and the sleep
// (the reference itself is the 10 s -> 1 s scaled variant).
#include <cstdio>

#include "fern/core/task.h"
#include "fern/core/timeout.h"

namespace {

const double seconds = 0.1;

void wait() { fern::sleep(0.1); }

}  // namespace

int main() {
  fern::Timeout timeout(seconds);
  timeout.start();

  try {
    fern::spawn(wait).join();
  } catch (const fern::Timeout&) {
    std::puts("Could not complete");
  }
}
