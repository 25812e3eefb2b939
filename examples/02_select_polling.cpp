// Twin of gevent's tutorial program 02_select_polling.py: two tasks wait in
// a cooperative select() with no fds (a 2 s wait) at the same time while a
// third runs at once. No deliberate differences (not scaled: the printed
// times are the point; it takes 2 s).
#include <chrono>
#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/io/wait.h"

namespace {

const auto start = std::chrono::steady_clock::now();

std::string tic() {
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  char text[64];
  std::snprintf(text, sizeof text, "at %1.1f seconds", elapsed.count());
  return text;
}

void gr1() {
  // Busy waits for a second, but we don't want to stick around...
  std::printf("Started Polling: %s\n", tic().c_str());
  fern::select_for({}, {}, {}, 2);
  std::printf("Ended Polling: %s\n", tic().c_str());
}

void gr2() {
  // Busy waits for a second, but we don't want to stick around...
  std::printf("Started Polling: %s\n", tic().c_str());
  fern::select_for({}, {}, {}, 2);
  std::printf("Ended Polling: %s\n", tic().c_str());
}

void gr3() {
  std::printf("Hey lets do some stuff while the greenlets poll, %s\n", tic().c_str());
  fern::sleep(1);
}

}  // namespace

int main() {
  fern::joinall({
      fern::any_task(fern::spawn(gr1)),
      fern::any_task(fern::spawn(gr2)),
      fern::any_task(fern::spawn(gr3)),
  });
}
