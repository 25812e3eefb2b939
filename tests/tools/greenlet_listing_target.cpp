// Target for the gdb listing test (tools/gdb_greenlets.sh): tasks parked at
// known places, a hand-switched greenlet, one unstarted, and a second thread
// with its own hub; then a breakpoint in main. Also prints dump_greenlets.
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "fern/core/debug.h"
#include "fern/core/greenlet.h"
#include "fern/core/task.h"
#include "fern/io/wait.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"

extern "C" __attribute__((noinline)) void fern_test_breakpoint_here() { asm volatile(""); }

// Each park site is its own frame: the test looks for these names.
__attribute__((noinline)) void park_in_sleep() {
  fern::sleep(3600);
  asm volatile("");
}
__attribute__((noinline)) void park_on_event(fern::Event& e) {
  e.wait();
  asm volatile("");
}
__attribute__((noinline)) int park_on_queue(fern::Queue<int>& q) {
  int v = q.get();
  asm volatile("");
  return v;
}
__attribute__((noinline)) void park_on_fd(int fd) {
  fern::wait_read(fd);
  asm volatile("");
}
__attribute__((noinline)) void switched_away(fern::Greenlet& back) {
  back.switch_to();
  asm volatile("");
}

int main() {
  int fds[2];
  if (pipe(fds) != 0) return 1;
  fern::Event event, other_ready, other_stop;
  fern::Queue<int> queue;
  auto sleeper = fern::spawn([] { park_in_sleep(); });
  sleeper->set_name("sleeper");
  auto waiter = fern::spawn([&] { park_on_event(event); });
  waiter->set_name("event-waiter");
  auto getter = fern::spawn([&] { park_on_queue(queue); });
  getter->set_name("queue-getter");
  auto reader = fern::spawn([&] { park_on_fd(fds[0]); });
  reader->set_name("fd-reader");
  fern::Greenlet main_g = fern::Greenlet::current();
  fern::Greenlet raw([&] { switched_away(main_g); });
  raw.switch_to();
  fern::Greenlet unstarted([] {});
  fern::sleep(0);  // every task starts and parks

  // A second thread with its own hub, its greenlet parked in sleep.
  std::shared_ptr<fern::RemoteQueue> door;
  std::mutex m;
  std::condition_variable cv;
  bool up = false;
  std::thread other([&] {
    auto t = fern::spawn([] { park_in_sleep(); });
    t->set_name("other-thread-sleeper");
    {
      std::lock_guard<std::mutex> lock(m);
      door = fern::Hub::current().remote();
      up = true;
    }
    cv.notify_one();
    t->join();
  });
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return up; });
  }
  // The other thread's task is parked once its hub has run one batch: ask
  // that hub to tell us, from a callback queued behind the task's start.
  fern::Event parked_there;
  auto here = fern::Hub::current().remote();
  door->post([&] { here->post([&] { parked_there.set(); }); });
  parked_there.wait();

  fern::dump_greenlets(stdout);
  fern_test_breakpoint_here();

  // The other thread blocks for an hour: leave without joining it.
  std::fflush(stdout);
  _exit(0);
}
