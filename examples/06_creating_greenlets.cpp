// Twin of gevent's tutorial program 06_creating_greenlets.py: three ways to
// start a task (create + start, spawn, a lambda); joinall waits for all.
// Deliberate difference: sleeps scaled 1 s -> 0.1 s and 2 s -> 0.2 s.
#include <cstdio>
#include <string>
#include <vector>

#include "fern/core/task.h"

// Each task is passed the message and n in its initialization.
void foo(const std::string& message, double n) {
  fern::sleep(n);
  std::puts(message.c_str());
}

int main() {
  // Create a new Task running the named function foo, and start it
  // (gevent's Greenlet.spawn).
  fern::Task<void> thread1 = fern::Task<void>::create(foo, std::string("Hello"), 0.1).start();

  // Wrapper for creating and starting a new Task from the named function
  // foo, with the passed arguments.
  fern::Task<void> thread2 = fern::spawn(foo, std::string("I live!"), 0.2);

  // Lambda expressions.
  fern::Task<int> thread3 = fern::spawn([](int x) { return x + 1; }, 2);

  std::vector<fern::AnyTask> threads{fern::any_task(thread1), fern::any_task(thread2), fern::any_task(thread3)};

  // Block until all tasks complete.
  fern::joinall(threads);
}
