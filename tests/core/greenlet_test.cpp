// Greenlet basics: creation, switching values, finishing into the parent,
// current/main, lifecycle flags, scale.
#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "fern/config.h"  // FERN_TSAN
#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletBasics = fern::testing::FernTest;

// GL-1, GL-16
// Greenlets' frames do not all sit at the same offset in their stacks'
// pages (arch::stack_color): the same frame of 32 greenlets lands at several
// different page offsets, so that their top frames spread over the cache
// sets instead of evicting each other.
TEST_F(GreenletBasics, NeighbouringGreenletsFramesSitAtDifferentPageOffsets) {
  Greenlet main = Greenlet::current();
  std::vector<Greenlet> gs;  // all 32 suspended at once, each on its own stack
  std::vector<std::uintptr_t> offsets;
  for (int i = 0; i < 32; ++i) {
    gs.emplace_back([&offsets, &main] {
      // The frame's own address: a local's may be in ASan's fake stack.
      offsets.push_back(reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)) % 4096);
      main.switch_to();
    });
    gs.back().switch_to();
  }
  std::sort(offsets.begin(), offsets.end());
  auto distinct = std::unique(offsets.begin(), offsets.end()) - offsets.begin();
  EXPECT_GE(distinct, 4) << "32 greenlets' first frames at " << distinct << " page offset(s)";
}

TEST_F(GreenletBasics, CreatingDoesNotRunTheBody) {
  bool ran = false;
  Greenlet g([&] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_FALSE(g.started());
  EXPECT_FALSE(g.active());
  EXPECT_FALSE(g.dead());
  g.switch_to();
  EXPECT_TRUE(ran);
}

// GL-1, GL-2
TEST_F(GreenletBasics, FirstSwitchRunsBodyWithItsValueAndValuesTravelBothWays) {
  std::vector<std::string> log;
  Greenlet g([&](fern::Value first) {
    log.push_back("run " + fern::value_cast<std::string>(first));
    fern::Value back = Greenlet::current().parent().switch_to(std::string("to-main"));
    log.push_back("resumed " + fern::value_cast<std::string>(back));
    return std::string("done");
  });
  fern::Value a = g.switch_to(std::string("hello"));
  log.push_back("main got " + fern::value_cast<std::string>(a));
  fern::Value b = g.switch_to(std::string("again"));
  log.push_back("main got " + fern::value_cast<std::string>(b));
  EXPECT_EQ(log, (std::vector<std::string>{"run hello", "main got to-main", "resumed again",
                                           "main got done"}));
}

// GL-3: no arguments -> empty, one -> itself, several -> a tuple.
TEST_F(GreenletBasics, SwitchArgumentsArePackedLikeGreenlet) {
  Greenlet echo([](fern::Value v) {
    Greenlet parent = Greenlet::current().parent();
    for (;;) v = parent.switch_value(std::move(v));
  });
  EXPECT_FALSE(echo.switch_to().has_value());
  EXPECT_EQ(fern::value_cast<int>(echo.switch_to(5)), 5);
  auto t = fern::value_cast<std::tuple<int, std::string>>(echo.switch_to(1, std::string("x")));
  EXPECT_EQ(t, std::make_tuple(1, std::string("x")));
  EXPECT_FALSE(echo.switch_to().has_value());
  echo.throw_in();  // end it before the leak check
  EXPECT_TRUE(echo.dead());
}

// GL-4: the result goes to the parent, not to whoever switched in last.
TEST_F(GreenletBasics, FinishedChildReturnsValueToParentNotToLastSwitcher) {
  std::vector<std::string> log;
  Greenlet child([&] {
    log.push_back("child");
    return 42;
  });
  Greenlet other([&] {
    fern::Value r = child.switch_to();  // child finishes -> main, not us
    log.push_back("never");
    return r;
  });
  fern::Value got = other.switch_to();
  EXPECT_EQ(fern::value_cast<int>(got), 42);
  EXPECT_TRUE(child.dead());
  EXPECT_TRUE(other.active());
  EXPECT_EQ(log, std::vector<std::string>{"child"});
  other.throw_in();
}

// GL-5, GL-15
TEST_F(GreenletBasics, DefaultParentIsCurrentAndMainHasNone) {
  Greenlet main = Greenlet::current();
  EXPECT_TRUE(main.is_main());
  EXPECT_TRUE(main.active());
  EXPECT_FALSE(main.parent());
  EXPECT_EQ(main.id(), 0u);
  Greenlet inner_parent;
  Greenlet outer([&] {
    Greenlet inner([] {});
    inner_parent = inner.parent();
    EXPECT_EQ(Greenlet::current().parent(), main);
  });
  EXPECT_EQ(outer.parent(), main);
  outer.switch_to();
  EXPECT_FALSE(inner_parent.is_main());
  EXPECT_EQ(inner_parent, outer);
  EXPECT_EQ(Greenlet::current(), main);
}

// GL-16
TEST_F(GreenletBasics, LifecycleFlagsFollowTheStates) {
  Greenlet self_seen;
  bool active_inside = false;
  Greenlet g([&] {
    self_seen = Greenlet::current();
    active_inside = self_seen.active() && self_seen.started() && !self_seen.dead();
    Greenlet::current().parent().switch_to();
  });
  EXPECT_FALSE(g.started());
  g.switch_to();
  EXPECT_TRUE(active_inside);
  EXPECT_EQ(self_seen, g);
  EXPECT_TRUE(g.active());
  EXPECT_TRUE(g.started());
  g.switch_to();
  EXPECT_TRUE(g.dead());
  EXPECT_FALSE(g.active());
  EXPECT_TRUE(g.started());
  self_seen = Greenlet();
}

// GL-17
TEST_F(GreenletBasics, SwitchingToEmptyHandleOrMissingRunIsATypedError) {
  Greenlet empty;
  EXPECT_THROW(empty.switch_to(), fern::GreenletError);
  Greenlet no_run{Greenlet::Run()};
  EXPECT_THROW(no_run.switch_to(), fern::GreenletError);
  EXPECT_FALSE(no_run.started());
  EXPECT_THROW(Greenlet::current().throw_in(std::exception_ptr()), fern::GreenletError);
}

// Counts the moves of the object it is; copying it is a compile error.
struct MoveCounter {
  int* moves;
  explicit MoveCounter(int* m) : moves(m) {}
  MoveCounter(MoveCounter&& o) noexcept : moves(o.moves) { ++*moves; }
  MoveCounter(const MoveCounter&) = delete;
};

// GL-3: the value goes from the sender's frame into the receiver's result in one move.
TEST_F(GreenletBasics, SwitchMovesTheValueOnceAndNeverCopiesIt) {
  int moves = 0, moves_seen = -1;
  bool held = false;
  Greenlet g([&] {
    fern::Value got = Greenlet::current().parent().switch_to();
    moves_seen = moves;
    held = got.holds<MoveCounter>();
  });
  g.switch_to();
  g.switch_value(fern::make_value<MoveCounter>(&moves));
  EXPECT_EQ(moves_seen, 1);
  EXPECT_TRUE(held);
}

// Counts how often the copies of it that a run callable captures are destroyed.
struct Capture {
  int* destroyed;
  char pad[8];
  ~Capture() {
    if (destroyed) ++*destroyed;
  }
  explicit Capture(int* d) : destroyed(d), pad{} {}
  Capture(Capture&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)), pad{} {}
};

// GL-16: a started greenlet has no run: its captures die when the body ends
// (whether they fit inside the greenlet or not), an unstarted one's with it.
TEST_F(GreenletBasics, RunCallableDiesWhenTheBodyEnds) {
  int destroyed = 0;
  std::array<char, 200> big{};
  Greenlet small([c = Capture(&destroyed)] { return c.pad[0]; });
  Greenlet large([c = Capture(&destroyed), big] { return c.pad[0] + big[0]; });
  small.switch_to();
  EXPECT_EQ(destroyed, 1);
  large.switch_to();
  EXPECT_EQ(destroyed, 2);
  EXPECT_TRUE(small.dead() && large.dead());
  {
    Greenlet never([c = Capture(&destroyed)] {});
  }
  EXPECT_EQ(destroyed, 3);
}

TEST_F(GreenletBasics, SwitchingToItselfReturnsTheValue) {
  EXPECT_EQ(fern::value_cast<int>(Greenlet::current().switch_to(9)), 9);
}

TEST_F(GreenletBasics, DeepRecursionOnAGreenletStack) {
  struct R {
    static int depth(int n) {
      volatile char pad[64];
      pad[0] = static_cast<char>(n);
      return n == 0 ? pad[0] : 1 + depth(n - 1);
    }
  };
  Greenlet g([] { return R::depth(400); }, Greenlet(), 256 * 1024);
  EXPECT_EQ(fern::value_cast<int>(g.switch_to()), 400);
}

TEST_F(GreenletBasics, ThousandsOfLiveGreenletsInterleave) {
#if FERN_TSAN
  // Each greenlet is a TSan fiber, whose bookkeeping grows faster than
  // linearly with the fibers alive: 5000 ran past the test's 60 s alarm in CI.
  constexpr int kCount = 1000;
#else
  constexpr int kCount = 5000;
#endif
  std::vector<Greenlet> gs;
  long sum = 0;
  for (int i = 0; i < kCount; ++i)
    gs.emplace_back([&sum, i] {
      sum += i;
      Greenlet::current().parent().switch_to();
      sum += i;
    });
  for (auto& g : gs) g.switch_to();
  EXPECT_EQ(fern::Greenlet::live_count(), 1u + kCount);
  for (auto& g : gs) g.switch_to();
  for (auto& g : gs) EXPECT_TRUE(g.dead());
  EXPECT_EQ(sum, 2L * (kCount - 1) * kCount / 2);
}

TEST_F(GreenletBasics, FinishedGreenletsReturnTheirStacks) {
  auto before = fern::arch::stack_stats().live;
  for (int i = 0; i < 100; ++i) {
    Greenlet g([] { return 1; });
    g.switch_to();
    EXPECT_EQ(fern::arch::stack_stats().live, before);
  }
}

}  // namespace
