// Twin of gevent's tutorial program 18_event_three_waiters.py: three
// waiters block on an Event; the setter sets it after a sleep and all three
// wake, in the order they started waiting.
// Deliberate difference: the setter's sleep 3 s -> 0.3 s.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/sync/event.h"

namespace {

fern::Event evt;

// After 0.3 seconds, wake all tasks waiting on the value of evt.
void setter() {
  std::puts("A: Hey wait for me, I have to do something");
  fern::sleep(0.3);
  std::puts("Ok, I'm done");
  evt.set();
}

// After 0.3 seconds the wait call will unblock.
void waiter() {
  std::puts("I'll wait for you");
  evt.wait();  // blocking
  std::puts("It's about time");
}

}  // namespace

int main() {
  fern::joinall({
      fern::any_task(fern::spawn(setter)),
      fern::any_task(fern::spawn(waiter)),
      fern::any_task(fern::spawn(waiter)),
      fern::any_task(fern::spawn(waiter)),
  });
}
