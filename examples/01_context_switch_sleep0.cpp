// Twin of gevent's tutorial program 01_context_switch_sleep0.py: two tasks
// hand control to each other with sleep(0). No deliberate differences.
#include <cstdio>

#include "fern/core/task.h"

void foo() {
  std::puts("Running in foo");
  fern::sleep(0);
  std::puts("Explicit context switch to foo again");
}

void bar() {
  std::puts("Explicit context to bar");
  fern::sleep(0);
  std::puts("Implicit context switch back to bar");
}

int main() {
  fern::joinall({
      fern::any_task(fern::spawn(foo)),
      fern::any_task(fern::spawn(bar)),
  });
}
