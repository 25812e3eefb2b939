// local<T>::get() when storing the new value fails (out of memory): the
// value is freed exactly once and the error propagates (issue 7: it was a
// double free). Its own binary: it replaces operator new.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>

#include "fern/core/greenlet.h"
#include "fern/sync/local.h"

namespace {
thread_local int t_fail_in = 0;  // > 0: the t_fail_in-th allocation from now throws
int g_live_values = 0;

struct Counted {
  Counted() { ++g_live_values; }
  ~Counted() { --g_live_values; }
};
}  // namespace

void* operator new(std::size_t n) {
  if (t_fail_in > 0 && --t_fail_in == 0) throw std::bad_alloc();
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

TEST(LocalOutOfMemory, FailedInsertFreesTheNewValueOnce) {
  fern::local<Counted> local;
  bool threw = false;
  fern::Greenlet g([&] {
    t_fail_in = 2;  // 1: the value itself, 2: the table's node
    try {
      local.get();
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    t_fail_in = 0;
    EXPECT_FALSE(local.has_value());
    local.get();  // works once memory is back
    EXPECT_TRUE(local.has_value());
  });
  g.switch_to();
  EXPECT_TRUE(threw);
  EXPECT_EQ(g_live_values, 0);
}

// Every allocation of a first get() in a fresh greenlet failing in turn
// (the value, the table's node and buckets, the greenlet's block of exit
// hooks): each time the get throws, no value is left and none leaks, and
// the next get works.
TEST(LocalOutOfMemory, EveryAllocationOfAFirstGetMayFail) {
  fern::local<Counted> local;
  for (int fail_at = 1; fail_at <= 6; ++fail_at) {
    bool threw = false;
    fern::Greenlet g([&] {
      t_fail_in = fail_at;
      try {
        local.get();
      } catch (const std::bad_alloc&) {
        threw = true;
      }
      t_fail_in = 0;
      EXPECT_EQ(local.has_value(), !threw) << fail_at;
      EXPECT_EQ(g_live_values, threw ? 0 : 1) << fail_at;
      local.get();
      EXPECT_TRUE(local.has_value());
    });
    g.switch_to();
    EXPECT_TRUE(g.dead());
    EXPECT_EQ(g_live_values, 0) << fail_at;  // freed when the greenlet ended
    if (fail_at <= 3) EXPECT_TRUE(threw) << fail_at;
  }
}

}  // namespace
