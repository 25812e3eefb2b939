// Twin of gevent's tutorial program 12_timeout_arguments.py: three ways to
// bound a wait with a Timeout: join(timeout=<Timeout>), get(timeout=<started
// Timeout>), with_timeout(seconds, f).
// Passing a Timeout object as `timeout=` is gevent's shorthand for "start it
// if needed, cancel it afterwards", which is TimeoutScope(timer).
// Deliberate difference: timeouts 1 s -> 0.1 s, the sleep 2 s -> 0.2 s.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/core/timeout.h"

namespace {

void wait() { fern::sleep(0.2); }

}  // namespace

int main() {
  fern::Timeout timer = fern::Timeout(0.1).start();
  fern::Task<void> thread1 = fern::spawn(wait);

  try {
    fern::TimeoutScope scope(timer);
    thread1.join();
  } catch (const fern::Timeout&) {
    std::puts("Thread 1 timed out");
  }

  // --

  timer = fern::Timeout::start_new(0.1);
  fern::Task<void> thread2 = fern::spawn(wait);

  try {
    fern::TimeoutScope scope(timer);
    thread2.get();
  } catch (const fern::Timeout&) {
    std::puts("Thread 2 timed out");
  }

  // --

  try {
    fern::with_timeout(0.1, wait);
  } catch (const fern::Timeout&) {
    std::puts("Thread 3 timed out");
  }
}
