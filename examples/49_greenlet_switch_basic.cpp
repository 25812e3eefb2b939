// Twin of greenlet's tutorial program 49_greenlet_switch_basic.py: two raw
// greenlets switch to each other; gr1 finishes first and returns to its
// parent (main), so gr2 is never resumed and "78" is never printed.
// No deliberate differences.
#include <cstdio>

#include "fern/core/greenlet.h"

int main() {
  fern::Greenlet gr1;
  fern::Greenlet gr2;

  auto test1 = [&gr2] {
    std::puts("12");
    gr2.switch_to();
    std::puts("34");
  };
  auto test2 = [&gr1] {
    std::puts("56");
    gr1.switch_to();
    std::puts("78");
  };

  gr1 = fern::Greenlet(test1);
  gr2 = fern::Greenlet(test2);
  gr1.switch_to();
}
