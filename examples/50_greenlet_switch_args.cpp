// Twin of greenlet's tutorial program 50_greenlet_switch_args.py: the first
// switch's arguments become run's arguments; a later switch's argument
// becomes the return value of the switch that suspended the receiver.
// No deliberate differences (several switch arguments arrive as one
// fern::Value holding a std::tuple).
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>

#include "fern/core/greenlet.h"

int main() {
  fern::Greenlet gr1;
  fern::Greenlet gr2;

  auto test1 = [&gr2](fern::Value args) {
    auto [x, y] = fern::value_cast<std::tuple<std::string, std::string>>(std::move(args));
    fern::Value z = gr2.switch_to(x + y);
    std::printf("%d\n", fern::value_cast<int>(z));
  };
  auto test2 = [&gr1](fern::Value u) {
    std::puts(fern::value_cast<const std::string&>(u).c_str());
    gr1.switch_to(42);
  };

  gr1 = fern::Greenlet(test1);
  gr2 = fern::Greenlet(test2);
  gr1.switch_to(std::string("hello"), std::string(" world"));
}
