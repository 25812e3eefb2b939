// The switch's fast path and the cases it sends down the general one
// (core/greenlet_core.h): values in registers and in a Transfer, a running
// greenlet without references, exception state on one side only.
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "fern_test.h"

namespace {

using fern::Greenlet;
using fern::Value;
using GreenletSwitch = fern::testing::FernTest;

struct Pair8 {
  std::int32_t a, b;
};
struct Triple24 {
  std::int64_t a, b, c;
};

// GL-2, GL-3: every form a value can take travels both ways, the first
// switch into an unstarted greenlet and its result included.
TEST_F(GreenletSwitch, ValuesOfEveryFormTravelBothWays) {
  int x = 7;
  Greenlet g([&](Value first) {
    Greenlet main = Greenlet::current().parent();
    EXPECT_EQ(fern::value_cast<int>(first), 1);  // register form into a fresh greenlet
    Value v = main.switch_to(&x);                  // a pointer
    EXPECT_DOUBLE_EQ(fern::value_cast<double>(v), 2.5);
    v = main.switch_to(Pair8{3, 4});               // an 8-byte POD
    EXPECT_EQ(fern::value_cast<Triple24>(v).c, 9);
    v = main.switch_to(std::string(100, 's'));    // a heap value: a Transfer
    EXPECT_FALSE(v.has_value());
    v = main.switch_to(1, std::string("two"));     // a tuple
    EXPECT_EQ(fern::value_cast<long>(v), 5L);
    return 42;                                     // the result in registers
  });
  Value r = g.switch_to(1);
  EXPECT_EQ(fern::value_cast<int*>(r), &x);
  r = g.switch_to(2.5);
  EXPECT_EQ(fern::value_cast<Pair8>(r).b, 4);
  r = g.switch_to(Triple24{7, 8, 9});
  EXPECT_EQ(fern::value_cast<std::string>(r), std::string(100, 's'));
  r = g.switch_to();
  auto t = fern::value_cast<std::tuple<int, std::string>>(r);
  EXPECT_EQ(std::get<1>(t), "two");
  r = g.switch_to(5L);
  EXPECT_EQ(fern::value_cast<int>(r), 42);
  EXPECT_TRUE(g.dead());
}

// GL-19: a running greenlet whose last handle goes while it runs lives on,
// and is killed once it switches out (its destructors run), as when it is
// dropped while suspended.
TEST_F(GreenletSwitch, RunningGreenletWithoutHandlesIsKilledWhenItSwitchesOut) {
  std::size_t before = Greenlet::live_count();
  std::optional<Greenlet> holder;
  bool unwound = false, resumed = false, went_on = false;
  holder.emplace([&] {
    struct Guard {
      bool* unwound;
      ~Guard() { *unwound = true; }
    } guard{&unwound};
    Greenlet main = Greenlet::current().parent();  // on its own stack: does not count
    holder.reset();                                // its last counting handle
    went_on = true;                                // still running
    main.switch_to();
    resumed = true;  // never: it is killed once it is out
  });
  holder->switch_to();  // (the handle it is called on goes during the call: not used after)
  EXPECT_TRUE(went_on);
  EXPECT_TRUE(unwound);
  EXPECT_FALSE(resumed);
  EXPECT_FALSE(holder.has_value());
  // After the general switch that handled it, the fast path is back: plain
  // switches between two greenlets still work.
  int n = 0;
  Greenlet echo([&] {
    for (;;) Greenlet::current().parent().switch_to(++n);
  });
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(fern::value_cast<int>(echo.switch_to()), i);
  echo = Greenlet();
  EXPECT_EQ(Greenlet::live_count(), before);
}

// GL-19 with a value in registers: the landing that drops the lent
// reference (and so kills the greenlet) is told so in the value's word
// (kXferLanding); the value arrives as sent, and so does a finished
// greenlet's int (whose landing buries the greenlet's stack).
TEST_F(GreenletSwitch, ARegisterValueArrivesIntactWhenItsLandingHasWork) {
  std::size_t before = Greenlet::live_count();
  std::optional<Greenlet> holder;
  bool unwound = false;
  holder.emplace([&] {
    struct Guard {
      bool* unwound;
      ~Guard() { *unwound = true; }
    } guard{&unwound};
    Greenlet main = Greenlet::current().parent();
    holder.reset();
    main.switch_to(std::int64_t{-2});
  });
  fern::Value got = holder->switch_to();
  EXPECT_TRUE(unwound);
  // Moved and copied: both go by the value's word, which must be the
  // int64's own (the flag gone), not one that says "move through the table".
  fern::Value moved = std::move(got);
  fern::Value copy = moved;
  EXPECT_EQ(fern::value_cast<std::int64_t>(moved), -2);
  EXPECT_EQ(fern::value_cast<std::int64_t>(copy), -2);
  Greenlet ends([] { return 0x7ffffffe; });
  fern::Value result = ends.switch_to();
  fern::Value result_moved = std::move(result);
  EXPECT_EQ(fern::value_cast<int>(result_moved), 0x7ffffffe);
  EXPECT_TRUE(ends.dead());
  ends = Greenlet();
  EXPECT_EQ(Greenlet::live_count(), before);
}

// GL-19: the same greenlet held again before it switches out is not killed.
TEST_F(GreenletSwitch, RunningGreenletHeldAgainBeforeItSwitchesOutLives) {
  std::optional<Greenlet> holder;
  Greenlet again;
  int steps = 0;
  holder.emplace([&] {
    Greenlet main = Greenlet::current().parent();
    holder.reset();                   // no handle left ...
    again = Greenlet::current();      // ... and one again (off its stack)
    main.switch_to(++steps);
    main.switch_to(++steps);
  });
  EXPECT_EQ(fern::value_cast<int>(holder->switch_to()), 1);
  ASSERT_TRUE(again.active());
  EXPECT_EQ(fern::value_cast<int>(again.switch_to()), 2);
  again.switch_to();  // finishes
  EXPECT_TRUE(again.dead());
}

// GL-21, GL-22: a switch out of a catch block (the general path) and plain
// switches (the fast path) in any mix: each greenlet keeps its own state.
TEST_F(GreenletSwitch, ExceptionStateSurvivesMixedFastAndGeneralSwitches) {
  bool plain_saw_none = true;
  Greenlet plain([&] {
    Greenlet main = Greenlet::current().parent();
    for (;;) {
      if (std::current_exception() != nullptr || std::uncaught_exceptions() != 0) plain_saw_none = false;
      main.switch_to();
    }
  });
  std::string rethrown;
  Greenlet catcher([&] {
    Greenlet main = Greenlet::current().parent();
    try {
      throw std::runtime_error("catcher's");
    } catch (...) {
      main.switch_to();  // suspended with exception state
      try {
        throw;
      } catch (const std::runtime_error& e) {
        rethrown = e.what();
      }
    }
  });
  catcher.switch_to();
  for (int i = 0; i < 3; ++i) plain.switch_to();  // fast switches meanwhile
  EXPECT_EQ(std::current_exception(), nullptr);
  try {
    throw std::logic_error("main's");
  } catch (...) {
    plain.switch_to();  // out of a catch block: the general path
    EXPECT_NE(std::current_exception(), nullptr);
  }
  catcher.switch_to();  // rethrows its own
  EXPECT_EQ(rethrown, "catcher's");
  EXPECT_TRUE(plain_saw_none);
  EXPECT_EQ(std::current_exception(), nullptr);
  plain = Greenlet();
}

}  // namespace
