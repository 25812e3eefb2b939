// A greenlet that overflows its stack hits the guard page; the report names
// the greenlet and its stack size, then the process aborts.
#include <gtest/gtest.h>

#include <string>

#include "fern/core/greenlet.h"

namespace {

// Unbounded recursion the optimiser cannot turn into a loop.
int recurse(int n) {
  volatile char frame[512];
  frame[0] = static_cast<char>(n);
  return recurse(n + 1) + frame[0];
}

void overflow_in_greenlet() {
  fern::Greenlet g([] { return recurse(0); }, fern::Greenlet(), 32 * 1024);
  g.switch_to();
}

TEST(StackOverflowDeathTest, ReportsGreenletAndStackSizeThenAborts) {
  // The death test's child continues this thread's numbering: the greenlet
  // it creates gets the number after the probe's.
  unsigned long next_id = fern::Greenlet([] {}).id() + 1;
  EXPECT_DEATH(overflow_in_greenlet(), "fern: stack overflow in greenlet #" + std::to_string(next_id) +
                                           " \\(stack size 32768 bytes");
}

}  // namespace
