// Ported from python-greenlet's src/greenlet/tests/test_throw.py and
// test_greenlet.py: throwing into dead, unstarted and run-less greenlets,
// parents that cannot be started, and the parent during a kill.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletUpstream = fern::testing::FernTest;

fern::Value to_parent(fern::Value v = {}) { return Greenlet::current().parent().switch_value(std::move(v)); }

std::string str(const fern::Value& v) { return fern::value_cast<std::string>(v); }

// test_throw.py::test_kill (GL-7, GL-8, GL-10): a GreenletExit thrown into a
// dead greenlet is eaten and comes back as a value.
TEST_F(GreenletUpstream, ThrowGreenletExitIntoDeadGreenletReturnsItAsValue) {
  Greenlet g([] {
    to_parent(std::string("ok"));
    to_parent(std::string("fail"));
  });
  EXPECT_EQ(str(g.switch_to()), "ok");
  EXPECT_TRUE(g.throw_in().holds<fern::GreenletExit>());
  EXPECT_TRUE(g.dead());
  fern::Value again = g.throw_in(fern::GreenletExit("again"));
  ASSERT_TRUE(again.holds<fern::GreenletExit>());
  EXPECT_EQ(fern::value_cast<fern::GreenletExit>(again).message(), "again");
}

// GL-8, GL-10: any other error thrown into a dead greenlet is raised in its
// first live ancestor, at that one's switch point.
TEST_F(GreenletUpstream, ThrowErrorIntoDeadGreenletRaisesInItsParent) {
  Greenlet done([] {});
  done.switch_to();
  ASSERT_TRUE(done.dead());
  EXPECT_THROW(done.throw_in(std::out_of_range("dead")), std::out_of_range);

  std::string caught;
  Greenlet parent([&] {
    try {
      to_parent();
    } catch (const std::out_of_range& e) {
      caught = e.what();
    }
    return std::string("parent done");
  });
  parent.switch_to();
  done.set_parent(parent);
  EXPECT_EQ(str(done.throw_in(std::out_of_range("to parent"))), "parent done");
  EXPECT_EQ(caught, "to parent");
}

// test_throw.py::test_throw_goes_to_original_parent (GL-11, GL-12)
TEST_F(GreenletUpstream, ThrowGoesToTheOriginalParent) {
  Greenlet main = Greenlet::current();
  auto f1 = [&] {
    try {
      main.switch_to(std::string("f1 ready to catch"));
    } catch (const std::out_of_range&) {
      return std::string("caught");
    }
    return std::string("normal exit");
  };
  auto f2 = [&] { main.switch_to(std::string("from f2")); };

  Greenlet g1(f1), g2(f2, g1);
  EXPECT_THROW(g2.throw_in(std::out_of_range("x")), std::out_of_range);
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.dead());

  g1 = Greenlet(f1);
  g2 = Greenlet(f2, g1);
  EXPECT_EQ(str(g1.switch_to()), "f1 ready to catch");
  EXPECT_EQ(str(g2.throw_in(std::out_of_range("x"))), "caught");
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.dead());

  g1 = Greenlet(f1);
  g2 = Greenlet(f2, g1);
  EXPECT_EQ(str(g1.switch_to()), "f1 ready to catch");
  EXPECT_EQ(str(g2.switch_to()), "from f2");
  EXPECT_EQ(str(g2.throw_in(std::out_of_range("x"))), "caught");
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.dead());
}

// test_greenlet.py::test_throw_no_run_raises_AttributeError (GL-17): the
// thrower gets the misuse error, the greenlet stays unstarted.
TEST_F(GreenletUpstream, ThrowIntoGreenletWithoutRunIsAGreenletError) {
  Greenlet g{Greenlet::Run()};
  try {
    g.throw_in(std::out_of_range("x"));
    FAIL() << "no exception";
  } catch (const fern::GreenletError& e) {
    EXPECT_NE(std::string(e.what()).find("run"), std::string::npos);
  }
  EXPECT_THROW(g.throw_in(), fern::GreenletError);
  EXPECT_FALSE(g.started());
}

// test_greenlet.py::test_parent_return_failure and
// test_switch_to_dead_greenlet_with_unstarted_perverse_parent (GL-9): the
// child runs once; its run-less parent cannot start, stays unstarted, and
// every later switch to the dead child raises the same error again.
TEST_F(GreenletUpstream, ParentThatCannotStartStaysUnstarted) {
  Greenlet parent{Greenlet::Run()};
  std::vector<int> seen;
  Greenlet child([&] { seen.push_back(42); }, parent);
  EXPECT_THROW(child.switch_to(), fern::GreenletError);
  EXPECT_EQ(seen, std::vector<int>{42});
  EXPECT_TRUE(child.dead());
  EXPECT_FALSE(parent.started());
  EXPECT_THROW(child.switch_to(), fern::GreenletError);
  EXPECT_EQ(seen, std::vector<int>{42});
  EXPECT_FALSE(parent.started());
}

// GL-9: a parent whose stack cannot be had stays unstarted too; the child's
// StackError goes on to the grandparent.
TEST_F(GreenletUpstream, ParentWhoseStackFailsStaysUnstarted) {
  Greenlet parent([] {}, Greenlet(), SIZE_MAX / 2);
  Greenlet child([] {}, parent);
  EXPECT_THROW(child.switch_to(), fern::arch::StackError);
  EXPECT_TRUE(child.dead());
  EXPECT_FALSE(parent.started());
}

// TestBrokenGreenlets::test_failed_to_initialstub (GL-31): a greenlet that
// cannot be switched into for the first time (here: no stack to be had) is
// a typed error in the caller, not a crash; it stays unstarted, and the
// caller and the thread's greenlets go on.
TEST_F(GreenletUpstream, FailingToStartIsAnErrorNotACrash) {
  Greenlet g([] { return 1; }, Greenlet(), SIZE_MAX / 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_THROW(g.switch_to(), fern::arch::StackError);
    EXPECT_FALSE(g.started());
    EXPECT_FALSE(g.dead());
    EXPECT_TRUE(Greenlet::current().is_main());  // the caller goes on where it was
  }
  Greenlet ok([] { return 2; });
  EXPECT_EQ(fern::value_cast<int>(ok.switch_to()), 2);
}

// test_greenlet.py::test_parent_restored_on_kill (GL-20): while it unwinds
// from a kill by its last handle, the killer is its parent; a greenlet that
// survives has its own parent back.
TEST_F(GreenletUpstream, ParentRestoredAfterACaughtKill) {
  Greenlet hub([] {});
  Greenlet main = Greenlet::current();
  std::vector<Greenlet> result;
  auto g = std::make_unique<Greenlet>([&] {
    try {
      main.switch_to();
    } catch (const fern::GreenletExit&) {
      result.push_back(Greenlet::current().parent());
      result.push_back(Greenlet::current());
      hub.switch_to();
    }
  }, hub);
  g->switch_to();
  g.reset();
  ASSERT_EQ(result.size(), 2u);
  EXPECT_EQ(result[0], main);
  EXPECT_EQ(result[1].parent(), hub);
  // It survived, suspended in its catch block: unwind it for the leak check.
  Greenlet survivor = result[1];
  result.clear();
  survivor.throw_in();
  EXPECT_TRUE(survivor.dead());
}

// test_greenlet.py::TestRepr (GL-29): the states a greenlet's description
// ends with.
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

TEST_F(GreenletUpstream, ReprStatesFollowGreenlet) {
  Greenlet main = Greenlet::current();
  EXPECT_TRUE(ends_with(main.describe(), " current active started main>")) << main.describe();
  Greenlet g([&] { return main.describe(); });
  EXPECT_TRUE(ends_with(g.describe(), ": pending>")) << g.describe();
  EXPECT_EQ(g.describe().rfind("<fern::Greenlet #", 0), 0u) << g.describe();
  std::string in_background = str(g.switch_to());
  EXPECT_TRUE(ends_with(in_background, " suspended active started main>")) << in_background;
  EXPECT_TRUE(ends_with(g.describe(), ": dead>")) << g.describe();
  EXPECT_EQ(g.describe().find("started"), std::string::npos);
  EXPECT_EQ(Greenlet().describe(), "<fern::Greenlet empty>");
  Greenlet parked([&] { to_parent(); });
  parked.switch_to();
  EXPECT_TRUE(ends_with(parked.describe(), ": suspended active started>")) << parked.describe();
  parked.throw_in();
}

// TestRepr::test_main_from_other_thread: another thread's running main reads
// suspended; a main held after its thread exited is dead, "(thread exited)".
TEST_F(GreenletUpstream, MainOfAnExitedThreadIsDead) {
  Greenlet main = Greenlet::current();
  std::string original_main, thread_main;
  Greenlet their_main;
  std::thread t([&] {
    original_main = main.describe();
    their_main = Greenlet::current();
    thread_main = their_main.describe();
  });
  t.join();
  EXPECT_TRUE(ends_with(original_main, " suspended active started main>")) << original_main;
  EXPECT_TRUE(ends_with(thread_main, " current active started main>")) << thread_main;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(their_main.dead());
    EXPECT_FALSE(their_main.active());
    EXPECT_TRUE(ends_with(their_main.describe(), " (thread exited) dead>")) << their_main.describe();
  }
}

// test_greenlet.py::test_dealloc_switch_args_not_lost (GL-19, GL-26): a
// greenlet whose last counting handle goes while it runs, and that then
// switches to its parent with a value, is killed as it leaves (its cleanup
// runs) but the value still reaches the parent, not the kill's result.
TEST_F(GreenletUpstream, SwitchArgsOfAGreenletDroppedWhileRunningAreNotLost) {
  std::vector<Greenlet> seen;
  std::vector<Greenlet> worker;
  Greenlet initiator;
  worker.emplace_back([&] {
    fern::Value value = Greenlet::current().parent().switch_to();
    worker.clear();
    initiator.set_parent(Greenlet::current().parent());  // the last handle to us goes
    struct Finally {
      std::vector<Greenlet>& seen;
      ~Finally() { seen.push_back(Greenlet::current()); }
    } finally{seen};
    Greenlet::current().parent().switch_value(std::move(value));
  });
  worker[0].switch_to();  // prime the worker
  initiator = Greenlet([] { return 42; }, worker[0]);
  fern::Value value = initiator.switch_to();  // 42 falls through to the worker
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].dead());
  ASSERT_TRUE(value.holds<int>());
  EXPECT_EQ(fern::value_cast<int>(value), 42);
}

// test_greenlet.py::test_switch_to_dead_greenlet_reparent (GL-8, GL-9):
// switching to a dead greenlet given an unstarted parent starts that
// parent, which then ends into its own parent.
TEST_F(GreenletUpstream, SwitchToADeadGreenletReparentedToAnUnstartedOneStartsIt) {
  std::vector<int> seen;
  Greenlet parent_never_started([&] { seen.push_back(24); });
  Greenlet child([&] { seen.push_back(42); });
  child.switch_to();
  EXPECT_EQ(seen, std::vector<int>{42});
  child.set_parent(parent_never_started);
  fern::Value result = child.switch_to();
  EXPECT_FALSE(result.has_value());
  EXPECT_EQ(seen, (std::vector<int>{42, 24}));
  EXPECT_TRUE(parent_never_started.dead());
}

// Hostile (GL-6, GL-11): exceptions that are not std::exceptions travel
// like any other: a body's escaping int is rethrown by its parent's switch,
// and a plain struct thrown into an unstarted greenlet kills it unrun and
// is raised in its parent.
TEST_F(GreenletUpstream, NonStdExceptionsTravelLikeAnyOther) {
  struct Plain {
    int code;
  };
  Greenlet body([] { throw 7; });
  try {
    body.switch_to();
    ADD_FAILURE() << "the switch returned";
  } catch (int code) {
    EXPECT_EQ(code, 7);
  }
  EXPECT_TRUE(body.dead());
  bool ran = false;
  Greenlet unstarted([&] { ran = true; });
  try {
    unstarted.throw_in(Plain{9});
    ADD_FAILURE() << "throw_in returned";
  } catch (const Plain& e) {
    EXPECT_EQ(e.code, 9);
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(unstarted.dead());
}

}  // namespace
