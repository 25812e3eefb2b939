// std::exit inside a task or a greenlet ends the process with its code:
// thread-local destructors that run on that greenlet (the hub's, killing
// its tasks) must not switch into frames that will never be returned to.
#include <gtest/gtest.h>

#include <cstdlib>

#include "fern/core/greenlet.h"
#include "fern/core/task.h"

namespace {

TEST(ExitInsideGreenletDeathTest, ExitInsideATaskExitsWithItsCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // a fresh process with one hub
  auto run = [] {
    fern::spawn([] { std::exit(0); });
    fern::spawn([] { fern::sleep(0); });  // another task, suspended at the exit
    fern::sleep(0);
    std::abort();  // not reached: the first task exits
  };
  EXPECT_EXIT(run(), ::testing::ExitedWithCode(0), "");
}

TEST(ExitInsideGreenletDeathTest, ExitInsideAGreenletUnderATaskExitsWithItsCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto run = [] {
    fern::spawn([] {
      fern::Greenlet g([] { std::exit(3); });
      g.switch_to();
    });
    fern::sleep(0);
    std::abort();
  };
  EXPECT_EXIT(run(), ::testing::ExitedWithCode(3), "");
}

}  // namespace
