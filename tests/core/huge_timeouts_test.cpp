// One deadline rule everywhere (issue 7): NaN and negative durations mean
// "now", +inf and huge ones "never"; nothing overflows into "at once".
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "hub_fixture.h"

namespace {

using fern::Hub;
using fern::sleep;
using HugeTimeouts = fern::testing::HubTest;
using namespace std::chrono_literals;

// Runs fn under an outer Timeout of 20 ms; true when that Timeout cut it short.
template <class F>
bool cut_short_by_outer_timeout(F&& fn) {
  return !fern::Timeout::silently(0.02, std::forward<F>(fn));
}

TEST_F(HugeTimeouts, HugeAndInfiniteSleepsBlockUntilAnOuterTimeout) {
  EXPECT_TRUE(cut_short_by_outer_timeout([] { sleep(1e10); }));
  EXPECT_TRUE(cut_short_by_outer_timeout([] { sleep(INFINITY); }));
  EXPECT_TRUE(cut_short_by_outer_timeout([] { sleep(std::chrono::hours::max()); }));
  EXPECT_TRUE(cut_short_by_outer_timeout([] { sleep(1e300); }));
}

// Three sleep(1e10) tasks used to freeze the loop (an overflowed poll
// timeout): an outer 0.03 s Timeout must still fire.
TEST_F(HugeTimeouts, HugeSleepersDoNotFreezeTheLoop) {
  std::vector<fern::AnyTask> sleepers;
  for (int i = 0; i < 3; ++i) sleepers.push_back(fern::spawn([] { sleep(1e10); }));
  EXPECT_FALSE(fern::Timeout::silently(0.03, [] { sleep(1e10); }));
  fern::killall(sleepers);
}

TEST_F(HugeTimeouts, HugeWaitsOnEventsTasksAndScopesDoNotReturnAtOnce) {
  fern::Event ev;
  EXPECT_TRUE(cut_short_by_outer_timeout([&] { ev.wait_for(1e10); }));
  EXPECT_TRUE(cut_short_by_outer_timeout([&] { ev.wait_for(std::chrono::seconds::max()); }));
  auto forever = fern::spawn([] { sleep(INFINITY); });
  EXPECT_TRUE(cut_short_by_outer_timeout([&] { forever.join_for(1e10); }));
  EXPECT_TRUE(cut_short_by_outer_timeout([&] { forever.join_for(INFINITY); }));
  forever.kill();
  auto later = fern::spawn_later(1e10, [] {});
  sleep(0.005);
  EXPECT_FALSE(later.started() && later.dead());
  later.kill();
  EXPECT_TRUE(cut_short_by_outer_timeout([] {
    fern::TimeoutScope scope(1e10);  // never fires early
    sleep(1);
  }));
}

TEST_F(HugeTimeouts, NanAndNegativeMeanNowEverywhere) {
  fern::Event ev;
  EXPECT_FALSE(ev.wait_for(NAN));
  EXPECT_FALSE(ev.wait_for(-1.0));
  auto t = fern::spawn([] { sleep(1); });
  EXPECT_FALSE(t.join_for(NAN));
  EXPECT_THROW(t.get_for(-5.0), fern::Timeout);
  t.kill();
  sleep(NAN);  // a yield
  sleep(-1.0);
  // A Timeout of NaN seconds fires at once, at the next block.
  EXPECT_FALSE(fern::Timeout::silently(NAN, [] { sleep(1); }));
  EXPECT_FALSE(fern::Timeout::silently(-3.0, [] { sleep(1); }));
}

TEST_F(HugeTimeouts, HugeRunUntilIdleAndGroupKillWaitForTheWork) {
  bool done = false;
  fern::spawn([&] {
    sleep(0.005);
    done = true;
  });
  EXPECT_TRUE(Hub::current().run_until_idle_for(1e10));
  EXPECT_TRUE(done);
  fern::Group g;
  g.spawn([] {
    try {
      sleep(10);
    } catch (const fern::GreenletExit&) {
      sleep(0.005);  // dies slowly
      throw;
    }
  });
  sleep(0);
  EXPECT_TRUE(g.kill_for(1e10));
  EXPECT_EQ(g.size(), 0u);
}

// The poll timeout of a far timer is clamped, not wrapped: a near timer
// armed beside a "never" timer still fires on time.
TEST_F(HugeTimeouts, NearTimerFiresBesideANeverTimer) {
  auto forever = fern::spawn([] { sleep(INFINITY); });
  sleep(0);
  auto t0 = std::chrono::steady_clock::now();
  sleep(0.005);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 5ms);
  forever.kill();
}

}  // namespace
