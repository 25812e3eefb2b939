// Twin of gevent's tutorial program 11_timeout_context_toolong.py:
// `with Timeout(5, TooLong): gevent.sleep(10)` throws TooLong out of the
// scope after 5 s; uncaught, Python prints a traceback ending in "TooLong"
// and exits 1.
// Deliberate differences: 5 s -> 0.5 s and 10 s -> 1 s; C++ has no
// traceback, so main catches TooLong, prints its class name as the last
// stderr line (as Python's traceback ends) and returns 1.
#include <cstdio>
#include <exception>

#include "fern/core/task.h"
#include "fern/core/timeout.h"

namespace {

const double time_to_wait = 0.5;  // seconds

class TooLong : public std::exception {};

}  // namespace

int main() {
  try {
    fern::TimeoutScope scope(fern::Timeout(time_to_wait, TooLong()));
    fern::sleep(1);
  } catch (const TooLong&) {
    std::fputs("TooLong\n", stderr);
    return 1;
  }
}
