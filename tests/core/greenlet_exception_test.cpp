// Exceptions: errors go to the parent, GreenletExit is a value, throw_in,
// and C++ exception state that stays with each greenlet.
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletExceptions = fern::testing::FernTest;

static_assert(!std::is_base_of_v<std::exception, fern::GreenletExit>,
              "GreenletExit must not be caught by catch (const std::exception&)");

// GL-6
TEST_F(GreenletExceptions, UncaughtExceptionKillsAndIsRethrownInTheParent) {
  Greenlet g([]() -> int { throw std::runtime_error("boom"); });
  try {
    g.switch_to();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  EXPECT_TRUE(g.dead());
}

// GL-7
TEST_F(GreenletExceptions, EscapingGreenletExitComesBackAsAValue) {
  Greenlet g([] { throw fern::GreenletExit("bye"); });
  fern::Value r = g.switch_to();
  ASSERT_TRUE(r.holds<fern::GreenletExit>());
  EXPECT_EQ(fern::value_cast<fern::GreenletExit>(r).message(), "bye");
  EXPECT_TRUE(g.dead());
}

// GL-10: raised at the switch point; throw_in returns what comes back next.
TEST_F(GreenletExceptions, ThrowInRaisesAtTheSwitchPointAndReturnsTheNextValue) {
  std::vector<std::string> log;
  Greenlet g([&] {
    Greenlet main = Greenlet::current().parent();
    try {
      main.switch_to();
    } catch (const std::logic_error& e) {
      log.push_back(std::string("caught ") + e.what());
      main.switch_to(std::string("handled"));
    }
    log.push_back("end");
    return std::string("result");
  });
  g.switch_to();
  fern::Value r = g.throw_in(std::logic_error("oops"));
  EXPECT_EQ(fern::value_cast<std::string>(r), "handled");
  EXPECT_EQ(fern::value_cast<std::string>(g.switch_to()), "result");
  EXPECT_EQ(log, (std::vector<std::string>{"caught oops", "end"}));
}

// GL-10: throw_in() with no argument is GreenletExit, which ends as a value.
TEST_F(GreenletExceptions, ThrowInWithoutArgumentKills) {
  Greenlet g([] { Greenlet::current().parent().switch_to(); });
  g.switch_to();
  fern::Value r = g.throw_in();
  EXPECT_TRUE(r.holds<fern::GreenletExit>());
  EXPECT_TRUE(g.dead());
}

// GL-11
TEST_F(GreenletExceptions, ThrowIntoUnstartedGreenletKillsItWithoutRunning) {
  bool ran = false;
  Greenlet g([&] { ran = true; });
  EXPECT_THROW(g.throw_in(std::out_of_range("nostart")), std::out_of_range);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(g.dead());
  Greenlet h([&] { ran = true; });
  EXPECT_TRUE(h.throw_in().holds<fern::GreenletExit>());
  EXPECT_FALSE(ran);
}

// GL-12: an uncaught thrown-in error goes to g's parent, not to the thrower.
TEST_F(GreenletExceptions, ThrownErrorPropagatesToTheOriginalParent) {
  std::vector<std::string> log;
  Greenlet parent([&] {
    Greenlet main = Greenlet::current().parent();
    try {
      main.switch_to();  // parked; its child will fail into here
    } catch (const std::runtime_error& e) {
      log.push_back(std::string("parent caught ") + e.what());
    }
    return std::string("parent done");
  });
  parent.switch_to();
  Greenlet child([] { Greenlet::current().parent().parent().switch_to(); }, parent);
  child.switch_to();  // child parks back in main
  fern::Value r = child.throw_in(std::runtime_error("thrown"));
  EXPECT_EQ(fern::value_cast<std::string>(r), "parent done");
  EXPECT_EQ(log, std::vector<std::string>{"parent caught thrown"});
}

// GL-21: a greenlet started from inside a catch block sees no current exception.
TEST_F(GreenletExceptions, NewGreenletStartsWithoutTheSwitchersException) {
  bool inner_had_exception = true;
  bool outer_still_has = false;
  try {
    throw std::runtime_error("outer");
  } catch (...) {
    Greenlet g([&] { inner_had_exception = std::current_exception() != nullptr; });
    g.switch_to();
    outer_still_has = std::current_exception() != nullptr;
  }
  EXPECT_FALSE(inner_had_exception);
  EXPECT_TRUE(outer_still_has);
}

// GL-22: `throw;` after switching inside a catch block rethrows our own exception.
TEST_F(GreenletExceptions, RethrowAfterSwitchingInsideCatchRethrowsOwnException) {
  std::vector<std::string> log;
  Greenlet g([&] {
    Greenlet main = Greenlet::current().parent();
    try {
      throw std::runtime_error("from g");
    } catch (...) {
      main.switch_to();  // main handles its own exception meanwhile
      try {
        throw;
      } catch (const std::runtime_error& e) {
        log.push_back(std::string("g rethrew ") + e.what());
      }
    }
  });
  try {
    throw std::logic_error("from main");
  } catch (...) {
    g.switch_to();  // g is inside its catch and switches back
    try {
      throw std::out_of_range("nested in main");
    } catch (const std::out_of_range&) {
      g.switch_to();  // g rethrows while main is inside two catches
    }
    try {
      throw;
    } catch (const std::logic_error& e) {
      log.push_back(std::string("main rethrew ") + e.what());
    }
  }
  EXPECT_EQ(log, (std::vector<std::string>{"g rethrew from g", "main rethrew from main"}));
}

// GL-22: std::uncaught_exceptions() counts only this greenlet's unwinding.
TEST_F(GreenletExceptions, UncaughtExceptionsCountIsPerGreenlet) {
  int inside_other = -1;
  int during_unwind = -1;
  Greenlet other([&] { inside_other = std::uncaught_exceptions(); });
  struct SwitchesWhileUnwinding {
    Greenlet* other;
    int* during;
    ~SwitchesWhileUnwinding() {
      *during = std::uncaught_exceptions();
      other->switch_to();
    }
  };
  try {
    SwitchesWhileUnwinding s{&other, &during_unwind};
    throw std::runtime_error("unwinding");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(during_unwind, 1);
  EXPECT_EQ(inside_other, 0);
  EXPECT_EQ(std::uncaught_exceptions(), 0);
}

}  // namespace
