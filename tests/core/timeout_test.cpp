// Timeout: SEMANTICS TO-1 .. TO-10 (TO-9 with F13 in scheduling_test).
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::Timeout;
using Vec = std::vector<std::string>;
using Timeouts = fern::testing::HubTest;

// TO-1
static_assert(!std::is_base_of_v<std::exception, Timeout>, "catch (std::exception&) must not swallow a Timeout");

// TO-2
TEST_F(Timeouts, InertUntilStartedThenRaisesInTheStarterWhileItBlocks) {
  Timeout t(0.001);
  EXPECT_FALSE(t.pending());
  sleep(0.002);  // not started: nothing happens
  t.start();
  EXPECT_TRUE(t.pending());
  try {
    sleep(1);
    FAIL() << "not raised";
  } catch (const Timeout& fired) {
    EXPECT_TRUE(fired == t);
  }
  EXPECT_FALSE(t.pending());
  Timeout c(0.001);
  c.start();
  c.cancel();
  EXPECT_FALSE(c.pending());
  sleep(0.002);  // cancelled: nothing raised
}

// TO-3
TEST_F(Timeouts, StartingAPendingTimeoutIsATypedErrorButRestartingWorks) {
  Timeout t(0.001);
  t.start();
  EXPECT_THROW(t.start(), fern::TimeoutPendingError);
  EXPECT_THROW(sleep(1), Timeout);
  t.start();  // after it fired
  t.cancel();
  t.start();  // after cancel
  t.cancel();
}

// TO-4
struct TooLong {
  int code;
};

TEST_F(Timeouts, CustomExceptionIsRaisedInsteadOfTheTimeout) {
  Timeout t(0.001, TooLong{7});
  t.start();
  try {
    sleep(1);
    FAIL();
  } catch (const TooLong& e) {
    EXPECT_EQ(e.code, 7);
  }
}

// TO-11 (test__timeout::TestDirectRaise): a Timeout thrown like any
// exception is caught as one, is not pending and arms nothing.
TEST_F(Timeouts, ThrownDirectlyItIsAnOrdinaryExceptionAndNotPending) {
  for (Timeout thrown : {Timeout(), Timeout(1.0)}) {
    try {
      throw thrown;
    } catch (const Timeout& t) {
      EXPECT_TRUE(t == thrown);
      EXPECT_FALSE(t.pending());
    }
  }
  EXPECT_EQ(fern::Hub::current().armed_timers(), 0u);
}

// TO-11, GL-27 (test__api_timeout::test_ref): a Timeout lets go of its
// custom exception once it is gone, whether it fired or not.
TEST_F(Timeouts, DropsItsCustomExceptionAfterUse) {
  struct Held {
    std::shared_ptr<int> ref;
  };
  auto ref = std::make_shared<int>(0);
  {
    fern::TimeoutScope scope(Timeout(10.0, Held{ref}));
    sleep(0.001);
  }
  EXPECT_EQ(ref.use_count(), 1);
  {
    Timeout t = Timeout::start_new(0.001, std::make_exception_ptr(Held{ref}));
    EXPECT_THROW(sleep(1), Held);
  }
  sleep(0);  // the hub's frame that fired it resumes and lets go
  EXPECT_EQ(ref.use_count(), 1);
}

// TO-4, TO-5: a silent timeout ends its own block and nothing else.
TEST_F(Timeouts, SilentTimeoutEndsOnlyItsOwnScope) {
  bool finished = Timeout::silently(0.001, [&] {
    log.push_back("inside");
    sleep(1);
    log.push_back("not reached");
  });
  EXPECT_FALSE(finished);
  EXPECT_TRUE(Timeout::silently(1, [&] { log.push_back("quick"); }));
  EXPECT_EQ(log, (Vec{"inside", "quick"}));
}

// TO-5
TEST_F(Timeouts, NestedTimeoutsEachReactOnlyToTheirOwn) {
  Timeout outer(10);
  outer.start();
  try {
    fern::TimeoutScope inner(0.001);
    sleep(1);
    FAIL();
  } catch (const Timeout& fired) {
    EXPECT_FALSE(fired == outer);
    EXPECT_TRUE(outer.pending());
  }
  outer.cancel();
  Timeout outer2(0.001);
  outer2.start();
  try {
    fern::TimeoutScope inner(10);
    sleep(1);
    FAIL();
  } catch (const Timeout& fired) {
    EXPECT_TRUE(fired == outer2);  // the inner one was cancelled at its scope's exit
  }
}

// TO-6
TEST_F(Timeouts, NoneNeverFiresAndZeroFiresOnTheNextIteration) {
  Timeout never;
  never.start();
  EXPECT_FALSE(never.pending());
  sleep(0.001);
  Timeout zero = Timeout::start_new(0);
  EXPECT_THROW(sleep(1), Timeout);
}

// TO-7
TEST_F(Timeouts, StrSpellsSecondsLikeGevent) {
  EXPECT_EQ(Timeout(1).str(), "1 second");
  EXPECT_EQ(Timeout(2).str(), "2 seconds");
  EXPECT_EQ(Timeout::silent(0.5).str(), "0.5 seconds (silent)");
  EXPECT_EQ(Timeout::with_message(1, "XXX").str(), "1 second: XXX");
  EXPECT_EQ(Timeout().str(), "");
}

// TO-8
TEST_F(Timeouts, WithTimeoutReturnsTheValueOrTheTimeoutValue) {
  EXPECT_EQ(fern::with_timeout(1, [] { return 5; }, -1), 5);
  EXPECT_EQ(fern::with_timeout(0.001, [] { sleep(1); return 5; }, -1), -1);
  EXPECT_THROW(fern::with_timeout(0.001, [] { sleep(1); return 5; }), Timeout);
  // An outer timeout passes through an inner with_timeout's timeout_value.
  Timeout outer(0.001);
  outer.start();
  try {
    fern::with_timeout(10, [] { sleep(1); return 5; }, -1);
    FAIL();
  } catch (const Timeout& fired) {
    EXPECT_TRUE(fired == outer);
  }
}

// TO-2, seed 10: raised in the starter even while it is joining another task.
TEST_F(Timeouts, FiresInTheStarterWhileItJoinsAnotherTask) {
  Timeout t(0.001);
  t.start();
  auto sleeper = fern::spawn([] { sleep(1); });
  try {
    sleeper.join();
    FAIL();
  } catch (const Timeout& fired) {
    EXPECT_TRUE(fired == t);
  }
  EXPECT_FALSE(sleeper.dead());
  EXPECT_FALSE(sleeper->has_links());  // the interrupted join unlinked itself (TO-10)
  sleeper.kill();
}

TEST_F(Timeouts, SleepNeverReturnsEarly) {
  for (double s : {0.0002, 0.001, 0.003}) {
    fern::Nanos start = fern::monotonic_now();
    sleep(s);
    EXPECT_GE(fern::monotonic_now() - start, fern::seconds_to_nanos(s));
  }
}

}  // namespace

namespace {

// A Timeout's timer is in the hub of the thread that started it: another
// thread's cancel() is refused with CrossThreadError and disarms nothing.
TEST_F(Timeouts, CancelFromAnotherThreadThrowsCrossThreadError) {
  fern::Timeout t = fern::Timeout::start_new(60.0);
  bool refused = false;
  std::thread other([&] {
    try {
      t.cancel();
    } catch (const fern::CrossThreadError&) {
      refused = true;
    }
  });
  other.join();
  EXPECT_TRUE(refused);
  EXPECT_TRUE(t.pending());
  t.cancel();
  EXPECT_FALSE(t.pending());
}

}  // namespace
