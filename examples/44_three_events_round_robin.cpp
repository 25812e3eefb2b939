// Twin of gevent's tutorial program 44_three_events_round_robin.py: three
// tasks hand a turn round with three Events, 10 rounds each, sleeping with a
// *blocking* sleep (Python's unpatched time.sleep, which blocks the whole
// process). After the last round the two tasks still waiting can never be
// woken, so joinall raises LoopExit ("This operation would block forever").
// Deliberate differences: the blocking time.sleep(1) -> a blocking
// std::this_thread::sleep_for(10 ms) (the output order does not depend on
// it); C++ has no traceback, so main catches fern::LoopExit, prints the
// traceback's exception line "LoopExit: This operation would block forever"
// as the last stderr line and returns 1 (Python's exit status). The unused
// `num` argument is kept.
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "fern/core/hub.h"
#include "fern/core/task.h"
#include "fern/sync/event.h"

namespace {

void blocking_sleep() { std::this_thread::sleep_for(std::chrono::milliseconds(10)); }

void fun1(int /*num*/, fern::Event* event1, fern::Event* event2) {
  int i = 0;
  while (i < 10) {  // 10 rounds
    i += 1;
    blocking_sleep();
    std::puts("進程一:111111111");
    event2->set();    // event2 becomes true
    event1->clear();  // event1 becomes false
    event1->wait();   // wait until event1 is true
  }
}

void fun2(int /*num*/, fern::Event* event2, fern::Event* event3) {
  int i = 0;
  while (i < 10) {
    i += 1;
    blocking_sleep();
    std::puts("進程二:222222222");
    event3->set();
    event2->clear();
    event2->wait();
  }
}

void fun3(int /*num*/, fern::Event* event3, fern::Event* event1) {
  int i = 0;
  while (i < 10) {
    i += 1;
    blocking_sleep();
    std::puts("進程三:333333333");
    event1->set();
    event3->clear();
    event3->wait();
  }
}

}  // namespace

int main() {
  fern::Event act1;
  fern::Event act2;
  fern::Event act3;
  std::vector<fern::AnyTask> gevent_list;
  fern::Task<void> g = fern::Task<void>::create(fun1, 1, &act1, &act2);
  g.start();
  gevent_list.push_back(fern::any_task(g));
  std::puts("進程一啟動:");
  g = fern::Task<void>::create(fun2, 2, &act2, &act3);
  g.start();
  gevent_list.push_back(fern::any_task(g));
  std::puts("進程二啟動:");
  g = fern::Task<void>::create(fun3, 3, &act3, &act1);
  g.start();
  gevent_list.push_back(fern::any_task(g));
  std::puts("進程三啟動:");
  std::puts("所有進程都已啟動!");
  try {
    fern::joinall(gevent_list);
  } catch (const fern::LoopExit&) {
    std::fflush(stdout);
    std::fputs("LoopExit: This operation would block forever\n", stderr);
    return 1;
  }
}
