#pragma once
// Shared fixture: a watchdog (a deadlock fails the test instead of hanging
// it) and a leak check (no greenlet or stack outlives the test).
#include <gtest/gtest.h>
#include <unistd.h>

#include "fern/arch/stack.h"
#include "fern/core/greenlet.h"

namespace fern::testing {

class FernTest : public ::testing::Test {
 protected:
  void SetUp() override {
    alarm(60);  // SIGALRM's default action ends a hung test
    (void)fern::Greenlet::current();  // main greenlet exists before the baseline
    greenlets_ = fern::Greenlet::live_count();
    stacks_ = fern::arch::stack_stats().live;
  }
  void TearDown() override {
    alarm(0);
    EXPECT_EQ(fern::Greenlet::live_count(), greenlets_) << "greenlets leaked";
    EXPECT_EQ(fern::arch::stack_stats().live, stacks_) << "stacks leaked";
  }

 private:
  std::size_t greenlets_ = 0;
  std::size_t stacks_ = 0;
};

}  // namespace fern::testing
