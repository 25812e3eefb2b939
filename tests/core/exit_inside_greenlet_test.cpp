// std::exit inside a task or a greenlet ends the process with its code:
// thread-local destructors that run on that greenlet (the hub's, killing
// its tasks) must not switch into frames that will never be returned to.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdlib>
#include <string>

#include "fern/core/greenlet.h"
#include "fern/core/task.h"
#include "exit_death_test.h"

namespace {

// The child exits on a greenlet's stack; LeakSanitizer, scanning from
// there, would call objects on main's stack leaked and change the exit code.
using ExitInsideGreenletDeathTest = fern::testing::ExitDeathTest;

TEST_F(ExitInsideGreenletDeathTest, ExitInsideATaskExitsWithItsCode) {
  auto run = [] {
    fern::spawn([] { std::exit(0); });
    fern::spawn([] { fern::sleep(0); });  // another task, suspended at the exit
    fern::sleep(0);
    std::abort();  // not reached: the first task exits
  };
  EXPECT_EXIT(run(), ::testing::ExitedWithCode(0), "");
}

TEST_F(ExitInsideGreenletDeathTest, ExitInsideAGreenletUnderATaskExitsWithItsCode) {
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

// Many plain greenlets made and started before the hub existed: the hub
// itself is abandoned (not destroyed) when thread-locals end on a task.
TEST_F(ExitInsideGreenletDeathTest, ExitInsideATaskAfterManyEarlierGreenletsExitsWithItsCode) {
  auto run = [] {
    for (int i = 0; i < 40; ++i) {
      fern::Greenlet g([] {});
      g.switch_to();
    }
    fern::spawn([] { std::exit(4); });
    fern::spawn([] { fern::sleep(1); });
    fern::sleep(0);
    std::abort();
  };
  EXPECT_EXIT(run(), ::testing::ExitedWithCode(4), "");
}

}  // namespace
