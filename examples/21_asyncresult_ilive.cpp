// Twin of gevent's tutorial program 21_asyncresult_ilive.py: a.set() with no
// value (Python's None) unblocks the waiter's get() -> "I live!".
// A valueless set() is AsyncResult<void> in fern.
// Deliberate difference: the sleep 3 s -> 0.3 s.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/sync/event.h"

namespace {

fern::AsyncResult<void> a;

// After 0.3 seconds wake all tasks waiting on the value of a.
void setter() {
  fern::sleep(0.3);
  a.set();
}

// After 0.3 seconds the get call will unblock.
void waiter() {
  a.get();  // blocking
  std::puts("I live!");
}

}  // namespace

int main() {
  fern::joinall({
      fern::any_task(fern::spawn(setter)),
      fern::any_task(fern::spawn(waiter)),
  });
}
