#pragma once
// Fixture for hub-level tests: a fresh hub per test, a watchdog, and a leak
// check (greenlets, stacks, armed timers, queued callbacks, watched fds) at
// the end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "fern/arch/stack.h"
#include "fern/core/greenlet.h"
#include "fern/core/hub.h"

namespace fern::testing {

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    alarm(60);  // a deadlock fails the test instead of hanging it
    (void)Greenlet::current();
    greenlets_ = Greenlet::live_count();
    stacks_ = arch::stack_stats().live;
    Hub::current();
    fds_ = Hub::current().watched_fds();  // the hub's own wake-up fd
  }
  void TearDown() override {
    Hub& hub = Hub::current();
    hub.run_until_idle();  // let queued links and callbacks finish
    EXPECT_EQ(hub.armed_timers(), 0u) << "timers leaked";
    EXPECT_EQ(hub.queued_callbacks(), 0u) << "callbacks left queued";
    EXPECT_EQ(hub.watched_fds(), fds_) << "fd watchers leaked";
    Hub::destroy_current();
    alarm(0);
    EXPECT_EQ(Greenlet::live_count(), greenlets_) << "greenlets leaked";
    EXPECT_EQ(arch::stack_stats().live, stacks_) << "stacks leaked";
  }

  std::vector<std::string> log;

 private:
  std::size_t greenlets_ = 0;
  std::size_t stacks_ = 0;
  std::size_t fds_ = 0;
};

}  // namespace fern::testing
