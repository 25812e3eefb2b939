// FP control and greenlets: each greenlet keeps its own (where the build
// keeps FP control per greenlet) unless it is FP-neutral, and an FP-neutral
// one runs with the thread's (Greenlet::set_fp_neutral).
#include <cfenv>
#include <thread>

#include "fern/config.h"  // FERN_FP_CONTROL_PER_GREENLET, FERN_FP_CHECKS
#include "fern/core/task.h"
#include "fern_test.h"
#include "hub_fixture.h"

namespace {

using fern::Greenlet;
using GreenletFp = fern::testing::FernTest;
using TaskFp = fern::testing::HubTest;

// Restores round-to-nearest and clear flags, whatever a test left.
struct RoundingGuard {
  ~RoundingGuard() {
    std::fesetround(FE_TONEAREST);
    std::feclearexcept(FE_ALL_EXCEPT);
  }
};

TEST_F(GreenletFp, TheFlagIsOffByDefaultAndReadsBack) {
  Greenlet g([] {});
  EXPECT_FALSE(g.fp_neutral());
  g.set_fp_neutral(true);
  EXPECT_TRUE(g.fp_neutral());
  g.set_fp_neutral(false);
  EXPECT_FALSE(g.fp_neutral());
  EXPECT_FALSE(Greenlet().fp_neutral());
  g.switch_to();
  EXPECT_TRUE(g.dead());
  g.set_fp_neutral(true);  // a dead one: the flag only
  EXPECT_TRUE(g.fp_neutral());
}

TEST_F(GreenletFp, AnEmptyHandleOrAnotherThreadsGreenletIsATypedError) {
  EXPECT_THROW(Greenlet().set_fp_neutral(true), fern::GreenletError);
  Greenlet here([] {});
  bool threw_cross = false;
  std::thread([&] {
    try {
      here.set_fp_neutral(true);
    } catch (const fern::CrossThreadError&) {
      threw_cross = true;
    }
  }).join();
  EXPECT_TRUE(threw_cross);
  EXPECT_FALSE(here.fp_neutral());
}

#if FERN_FP_CONTROL_PER_GREENLET
// The baseline: a greenlet that owns FP control starts with the FP control of
// the switch that starts it (as Python's greenlet: its first frame is made
// then) and keeps its own across switches.
TEST_F(GreenletFp, AGreenletKeepsItsOwnRoundingMode) {
  RoundingGuard guard;
  int saw_at_start = -1, saw_later = -1;
  std::fesetround(FE_DOWNWARD);
  Greenlet g([&] {
    saw_at_start = std::fegetround();
    std::fesetround(FE_UPWARD);
    Greenlet::current().parent().switch_to();
    saw_later = std::fegetround();
  });
  std::fesetround(FE_TOWARDZERO);
  g.switch_to();
  EXPECT_EQ(std::fegetround(), FE_TOWARDZERO);
  std::fesetround(FE_TONEAREST);
  g.switch_to();
  EXPECT_EQ(saw_at_start, FE_TOWARDZERO);
  EXPECT_EQ(saw_later, FE_UPWARD);
}

#if defined(__x86_64__)
// Each greenlet keeps its own exception flags, as each thread does (Python's
// greenlet restores the whole MXCSR too): a computation that checks its
// flags around a blocking switch sees what it raised, not what another
// greenlet raised or cleared meanwhile. (The flags of SSE arithmetic, all
// of double and float math on x86-64: the x87 status word, which long
// double arithmetic sets, stays with the CPU, as in greenlet and Boost.)
TEST_F(GreenletFp, AGreenletKeepsItsOwnExceptionFlagsAcrossSwitches) {
  RoundingGuard guard;
  bool kept_divbyzero = false, saw_inexact = true;
  std::feclearexcept(FE_ALL_EXCEPT);
  Greenlet g([&] {
    std::feclearexcept(FE_ALL_EXCEPT);
    volatile double zero = 0.0;
    volatile double inf = 1.0 / zero;  // FE_DIVBYZERO (exact: no FE_INEXACT)
    (void)inf;
    Greenlet::current().parent().switch_to();  // "blocks"
    kept_divbyzero = std::fetestexcept(FE_DIVBYZERO) != 0;
    saw_inexact = std::fetestexcept(FE_INEXACT) != 0;
  });
  g.switch_to();
  EXPECT_FALSE(std::fetestexcept(FE_DIVBYZERO));  // g's, not ours
  volatile double third = 1.0;
  third = third / 3.0;  // FE_INEXACT, ours
  g.switch_to();
  EXPECT_TRUE(g.dead());
  EXPECT_TRUE(kept_divbyzero);
  EXPECT_FALSE(saw_inexact);
  EXPECT_TRUE(std::fetestexcept(FE_INEXACT));
  EXPECT_FALSE(std::fetestexcept(FE_DIVBYZERO));
}
#endif

// An FP-neutral greenlet, unstarted, suspended or running when it becomes
// so, runs with whatever the thread has each time it is resumed.
TEST_F(GreenletFp, AnFpNeutralGreenletRunsWithTheThreadsRoundingMode) {
  RoundingGuard guard;
  int saw[3] = {-1, -1, -1};
  Greenlet g([&] {
    saw[0] = std::fegetround();
    Greenlet::current().parent().switch_to();
    saw[1] = std::fegetround();
    Greenlet::current().parent().switch_to();
    saw[2] = std::fegetround();
  });
  g.set_fp_neutral(true);
  std::fesetround(FE_UPWARD);
  g.switch_to();
  EXPECT_EQ(std::fegetround(), FE_UPWARD);  // carried back as it was
  std::fesetround(FE_TOWARDZERO);
  g.switch_to();
  std::fesetround(FE_TONEAREST);
  g.switch_to();
  EXPECT_EQ(saw[0], FE_UPWARD);
  EXPECT_EQ(saw[1], FE_TOWARDZERO);
  EXPECT_EQ(saw[2], FE_TONEAREST);
}

TEST_F(GreenletFp, MarkingASuspendedGreenletTakesEffectAtItsNextResume) {
  RoundingGuard guard;
  int saw = -1;
  Greenlet g([&] {
    std::fesetround(FE_UPWARD);  // its own, while it owns FP control
    Greenlet::current().parent().switch_to();
    saw = std::fegetround();
  });
  g.switch_to();
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);  // owned: main's came back
  g.set_fp_neutral(true);
  std::fesetround(FE_DOWNWARD);
  g.switch_to();
  EXPECT_EQ(saw, FE_DOWNWARD);
}

// Owning FP control again, a suspended greenlet starts from the FP control
// of the greenlet that made it own it, and keeps it from then on.
TEST_F(GreenletFp, OwningFpControlAgainStartsFromTheCallers) {
  RoundingGuard guard;
  int saw = -1;
  Greenlet g([&] {
    Greenlet::current().parent().switch_to();
    saw = std::fegetround();
  });
  g.set_fp_neutral(true);
  g.switch_to();
  std::fesetround(FE_UPWARD);
  g.set_fp_neutral(false);
  std::fesetround(FE_DOWNWARD);
  g.switch_to();
  EXPECT_EQ(saw, FE_UPWARD);
  EXPECT_EQ(std::fegetround(), FE_DOWNWARD);
}

// The running greenlet may mark itself; main may be FP-neutral too. Between
// two FP-neutral greenlets nothing is saved or loaded; switching to one that
// owns FP control loads its own.
TEST_F(GreenletFp, TheRunningGreenletAndMainMayBeFpNeutral) {
  RoundingGuard guard;
  Greenlet main = Greenlet::current();
  int neutral_saw = -1, owner_saw = -1;
  Greenlet owner([&] {
    std::fesetround(FE_UPWARD);  // its own from here
    main.switch_to();
    owner_saw = std::fegetround();
  });
  owner.switch_to();
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  Greenlet neutral([&] {
    Greenlet::current().set_fp_neutral(true);
    main.switch_to();
    neutral_saw = std::fegetround();
    owner.switch_to();  // the owner ends into its parent, main
  });
  neutral.switch_to();
  std::fesetround(FE_DOWNWARD);
  main.set_fp_neutral(true);  // after the change: it must leave what it has now
  neutral.switch_to();
  EXPECT_EQ(neutral_saw, FE_DOWNWARD);  // main's, carried as it was
  EXPECT_EQ(owner_saw, FE_UPWARD);      // the owner's own, loaded
  EXPECT_EQ(std::fegetround(), FE_UPWARD);    // main is neutral: it runs with what the owner left
  main.set_fp_neutral(false);
  EXPECT_FALSE(main.fp_neutral());
  neutral.switch_to();  // ends
  EXPECT_TRUE(neutral.dead());
}

// A task's greenlet may be made FP-neutral before the task starts.
TEST_F(TaskFp, ATasksGreenletMayBeFpNeutral) {
  RoundingGuard guard;
  int saw = -1;
  std::fesetround(FE_DOWNWARD);
  auto task = fern::Task<void>::create([&] { saw = std::fegetround(); });
  task->greenlet().set_fp_neutral(true);
  std::fesetround(FE_UPWARD);
  task->start();
  task->join();
  EXPECT_EQ(saw, FE_UPWARD);
}
#endif

#if FERN_FP_CHECKS
// Debug and sanitizer builds check the FP-neutral contract at each switch
// out, including the last one of a greenlet that ends.
TEST(GreenletFpDeathTest, AnFpNeutralGreenletThatChangesRoundingAndSwitchesAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Greenlet g([] {
          std::fesetround(FE_UPWARD);
          Greenlet::current().parent().switch_to();
        });
        g.set_fp_neutral(true);
        g.switch_to();
      },
      "FP-neutral greenlet [0-9]+ changed the thread's FP control");
  EXPECT_DEATH(
      {
        Greenlet g([] { std::fesetround(FE_DOWNWARD); });
        g.set_fp_neutral(true);
        g.switch_to();
      },
      "FP-neutral greenlet [0-9]+ changed");
}

TEST_F(GreenletFp, AnFpNeutralGreenletThatRestoresWhatItChangedPassesTheCheck) {
  Greenlet g([] {
    std::fesetround(FE_UPWARD);
    std::fesetround(FE_TONEAREST);
    Greenlet::current().parent().switch_to();
  });
  g.set_fp_neutral(true);
  g.switch_to();
  g.switch_to();
  EXPECT_TRUE(g.dead());
}
#endif

}  // namespace
