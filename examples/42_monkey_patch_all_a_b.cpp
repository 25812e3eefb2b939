// Twin of gevent's tutorial program 42_monkey_patch_all_a_b.py: two endless
// loops, A sleeping 1 s and B 0.5 s between prints; at each whole second A
// prints before B. (monkey.patch_all() has no C++ counterpart: fern's
// sleep is already cooperative.)
// Deliberate differences: sleeps scaled 1 s -> 0.1 s and 0.5 s -> 0.05 s;
// the reference runs forever and was killed by its harness at 3.2 s after
// 11 lines (exit status -9); the twin stops after the same 11 lines by
// killing both loops, so both joins return and it exits 0.
#include <cstdio>
#include <functional>

#include "fern/core/task.h"

namespace {

const int kLinesShown = 11;  // what the reference printed before its harness killed it

struct Loops {
  fern::Task<void> g1;
  fern::Task<void> g2;
  int lines = 0;
};

void print_line(Loops& loops, const char* text) {
  std::puts(text);
  if (++loops.lines == kLinesShown) {
    // Killed from a task of their own: killall waits, and a loop cannot wait for itself.
    fern::spawn([&loops] { fern::killall({fern::any_task(loops.g1), fern::any_task(loops.g2)}); });
  }
}

void func_a(Loops& loops) {
  while (true) {
    print_line(loops, "-------A-------");
    // Simulates a blocking operation; note it is fern's sleep, not the OS's:
    // whenever one would block, the hub switches to another task.
    fern::sleep(0.1);
  }
}

void func_b(Loops& loops) {
  while (true) {
    print_line(loops, "-------B-------");
    fern::sleep(0.05);
  }
}

}  // namespace

int main() {
  Loops loops;
  loops.g1 = fern::spawn(func_a, std::ref(loops));  // start the tasks
  loops.g2 = fern::spawn(func_b, std::ref(loops));
  loops.g1.join();  // wait for them to end
  loops.g2.join();
}
