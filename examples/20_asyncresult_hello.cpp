// Twin of gevent's tutorial program 20_asyncresult_hello.py: the setter
// puts "Hello!" into an AsyncResult after a sleep; the waiter's get()
// unblocks and prints it.
// Deliberate difference: the sleep 3 s -> 0.3 s.
#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/sync/event.h"

namespace {

fern::AsyncResult<std::string> a;

// After 0.3 seconds set the result of a.
void setter() {
  fern::sleep(0.3);
  a.set("Hello!");
}

// After 0.3 seconds the get call will unblock after the setter puts a value
// into the AsyncResult.
void waiter() { std::puts(a.get().c_str()); }

}  // namespace

int main() {
  fern::joinall({
      fern::any_task(fern::spawn(setter)),
      fern::any_task(fern::spawn(waiter)),
  });
}
