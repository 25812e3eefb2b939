// Twin of gevent's tutorial program 14_raw_greenlet_with_gevent_sleep.py:
// raw greenlets switched by hand, one of which blocks in the hub's sleep;
// the hub switches back to it and its result goes to its parent, main.
// Deliberate differences: the sleep is scaled 2 s -> 0.2 s. In gevent the
// hub is created lazily inside gr2 (so gr2 is its parent); fern's hub is
// always a child of the main greenlet. The output is the same.
#include <cstdio>
#include <string>

#include "fern/core/greenlet.h"
#include "fern/core/task.h"

namespace {

void no() {
  for (int i = 0; i < 10; ++i) std::printf("%d\n", i);
}

}  // namespace

int main() {
  fern::Greenlet gr1;
  fern::Greenlet gr2;

  auto test1 = []() -> std::string {
    std::puts("12");
    // fern::sleep(2);
    std::puts("34");
    return "a";
  };
  auto test2 = [&gr1]() -> std::string {
    std::puts("56");
    gr1.switch_to();
    // std::this_thread::sleep_for(2s);
    fern::sleep(0.2);
    std::puts("78");
    return "b";
  };

  gr1 = fern::Greenlet(test1);
  gr2 = fern::Greenlet(test2);
  fern::Value r1 = gr2.switch_to();
  std::puts(fern::value_cast<const std::string&>(r1).c_str());
  no();
  fern::Value r2 = gr2.switch_to();
  std::printf("'%s'\n", fern::value_cast<const std::string&>(r2).c_str());  // repr(r2)
}
