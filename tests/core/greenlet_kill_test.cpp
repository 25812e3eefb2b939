// Killing: GreenletExit at the switch point runs every destructor on the
// stack, whether thrown in or caused by dropping the last handle (GL-19).
#include <stdexcept>
#include <string>
#include <vector>

#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletKill = fern::testing::FernTest;

struct Counted {
  int* destroyed;
  ~Counted() { ++*destroyed; }
};

void park_with_frames(int depth, int* destroyed) {
  Counted c{destroyed};
  if (depth == 0) {
    Greenlet::current().parent().switch_to();
    return;
  }
  park_with_frames(depth - 1, destroyed);
}

// GL-10, GL-19
TEST_F(GreenletKill, ThrowInGreenletExitRunsEveryDestructorOnItsStack) {
  int destroyed = 0;
  Greenlet g([&] { park_with_frames(9, &destroyed); });
  g.switch_to();
  EXPECT_EQ(destroyed, 0);
  g.throw_in();
  EXPECT_EQ(destroyed, 10);
  EXPECT_TRUE(g.dead());
}

// GL-19
TEST_F(GreenletKill, DroppingTheLastHandleOfASuspendedGreenletKillsIt) {
  int destroyed = 0;
  bool saw_exit = false;
  {
    Greenlet g([&] {
      try {
        park_with_frames(4, &destroyed);
      } catch (const fern::GreenletExit&) {
        saw_exit = true;
        throw;
      }
    });
    g.switch_to();
    EXPECT_EQ(destroyed, 0);
  }
  EXPECT_TRUE(saw_exit);
  EXPECT_EQ(destroyed, 5);
}

// GL-19: the kill returns to whoever dropped the handle, even from another greenlet.
TEST_F(GreenletKill, DroppingInsideAnotherGreenletKillsBackIntoIt) {
  std::vector<std::string> log;
  Greenlet victim([&] {
    try {
      Greenlet::current().parent().switch_to();
    } catch (const fern::GreenletExit&) {
      log.push_back("victim killed");
      throw;
    }
  });
  victim.switch_to();
  Greenlet dropper([&, v = std::move(victim)]() mutable {
    v = Greenlet();
    log.push_back("dropper continues");
  });
  dropper.switch_to();
  EXPECT_EQ(log, (std::vector<std::string>{"victim killed", "dropper continues"}));
}

// GL-19: anything else raised while dying is reported, not propagated.
TEST_F(GreenletKill, OtherExceptionDuringKillIsReportedNotPropagated) {
  ::testing::internal::CaptureStderr();
  {
    Greenlet g([] {
      try {
        Greenlet::current().parent().switch_to();
      } catch (const fern::GreenletExit&) {
        throw std::runtime_error("refuses to die quietly");
      }
    });
    g.switch_to();
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("raised an exception while being killed"), std::string::npos) << err;
}

TEST_F(GreenletKill, DroppingAnUnstartedGreenletNeverRunsIt) {
  bool ran = false;
  { Greenlet g([&] { ran = true; }); }
  EXPECT_FALSE(ran);
}

// GL-19: the parent chain keeps a parked parent alive while a child needs it.
TEST_F(GreenletKill, ChildKeepsItsParentAlive) {
  std::string got;
  Greenlet child;
  {
    Greenlet parent([&](fern::Value v) { got = fern::value_cast<std::string>(v); });
    child = Greenlet([] { return std::string("to parent"); }, parent);
  }
  child.switch_to();
  EXPECT_EQ(got, "to parent");
}

}  // namespace

namespace {

struct Hook : fern::GreenletExitHook {
  std::vector<std::string>* log;
  std::string name;
};

void log_hook(fern::GreenletExitHook* h) {
  auto* self = static_cast<Hook*>(h);
  self->log->push_back(self->name + (fern::Greenlet::current().dead() ? " (dead)" : " (on its stack)"));
}

// Exit hooks (for greenlet-local storage, LOC-3): newest first, on the
// ending greenlet's stack, also when it is killed; cancelled ones do not run.
TEST_F(GreenletKill, ExitHooksRunNewestFirstWhenTheGreenletEnds) {
  std::vector<std::string> log;
  Hook a, b, c;
  for (auto* h : {&a, &b, &c}) {
    h->log = &log;
    h->fn = &log_hook;
  }
  a.name = "a";
  b.name = "b";
  c.name = "c";
  EXPECT_FALSE(fern::Greenlet::at_exit(&a));  // the main greenlet ends with its thread
  Greenlet g([&] {
    EXPECT_TRUE(Greenlet::at_exit(&a));
    EXPECT_TRUE(Greenlet::at_exit(&b));
    EXPECT_TRUE(Greenlet::at_exit(&c));
    Greenlet::cancel_exit(&b);
    Greenlet::current().parent().switch_to();
  });
  g.switch_to();
  EXPECT_TRUE(log.empty());
  g.throw_in();  // killed: hooks still run
  EXPECT_EQ(log, (std::vector<std::string>{"c (on its stack)", "a (on its stack)"}));
}

}  // namespace
