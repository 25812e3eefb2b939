// The tree: dead targets forward to ancestors, unstarted ancestors start,
// parents are writable with typed errors, greenlets belong to one thread.
#include <string>
#include <thread>
#include <vector>

#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletTree = fern::testing::FernTest;

std::string str(const fern::Value& v) { return v.has_value() ? fern::value_cast<std::string>(v) : "()"; }

// GL-8: switching to a dead greenlet whose parent is the caller returns the arguments.
TEST_F(GreenletTree, SwitchToDeadChildOfCallerReturnsTheArguments) {
  Greenlet g([] {});
  g.switch_to();
  ASSERT_TRUE(g.dead());
  EXPECT_EQ(str(g.switch_to(std::string("back"))), "back");
}

// GL-8: ... and otherwise delivers them to the first live ancestor.
TEST_F(GreenletTree, SwitchToDeadGreenletGoesToFirstLiveAncestor) {
  std::vector<std::string> log;
  Greenlet mid([&](fern::Value v) {
    Greenlet main = Greenlet::current().parent();
    for (;;) {
      log.push_back("mid got " + str(v));
      v = main.switch_to(std::string("from mid"));
    }
  });
  mid.switch_to(std::string("start"));
  Greenlet dead1([] {}, mid);
  Greenlet dead2([] {}, dead1);
  dead2.switch_to();  // finishes into dead1, which starts (GL-9) and finishes into mid
  log.push_back("main resumed");
  EXPECT_TRUE(dead1.dead());
  EXPECT_TRUE(dead2.dead());
  fern::Value r = dead2.switch_to(std::string("via dead"));
  EXPECT_EQ(str(r), "from mid");
  EXPECT_EQ(log, (std::vector<std::string>{"mid got start", "mid got ()", "main resumed",
                                           "mid got via dead"}));
  mid.throw_in();
}

// GL-9: a finishing child starts its unstarted parent with its result.
TEST_F(GreenletTree, FallingOffTheEndStartsAnUnstartedParent) {
  std::string parent_got;
  Greenlet parent([&](fern::Value v) {
    parent_got = str(v);
    return std::string("parent done");
  });
  Greenlet child([] { return std::string("child result"); }, parent);
  fern::Value r = child.switch_to();
  EXPECT_EQ(parent_got, "child result");
  EXPECT_EQ(str(r), "parent done");  // parent finished into main
  EXPECT_TRUE(parent.dead());
}

// GL-9, GL-17: an unstarted ancestor without run makes an error in the
// chain and stays unstarted.
TEST_F(GreenletTree, UnstartedAncestorWithoutRunRaisesUpTheChain) {
  Greenlet no_run{Greenlet::Run()};
  Greenlet child([] { return 1; }, no_run);
  EXPECT_THROW(child.switch_to(), fern::GreenletError);
  EXPECT_TRUE(child.dead());
  EXPECT_FALSE(no_run.started());
}

// GL-14
TEST_F(GreenletTree, ParentIsWritableButNotIntoACycle) {
  Greenlet a([] {});
  Greenlet b([] {}, a);
  Greenlet c([] {}, b);
  EXPECT_THROW(a.set_parent(a), fern::CyclicParentError);
  EXPECT_THROW(a.set_parent(c), fern::CyclicParentError);
  EXPECT_EQ(a.parent(), Greenlet::current());  // unchanged after the errors
  c.set_parent(a);
  EXPECT_EQ(c.parent(), a);
  EXPECT_THROW(c.set_parent(Greenlet()), fern::GreenletError);
  EXPECT_THROW(Greenlet::current().set_parent(a), fern::GreenletError);
  // A cycle through the main greenlet is impossible: it has no parent.
  EXPECT_FALSE(Greenlet::current().parent());
}

// GL-18
TEST_F(GreenletTree, OtherThreadsGreenletsAreTypedErrors) {
  Greenlet mine([] { return 1; });
  bool switch_refused = false, throw_refused = false, parent_refused = false, ctor_refused = false;
  std::thread t([&] {
    try {
      mine.switch_to();
    } catch (const fern::CrossThreadError&) {
      switch_refused = true;
    }
    try {
      mine.throw_in();
    } catch (const fern::CrossThreadError&) {
      throw_refused = true;
    }
    Greenlet theirs([] {});
    try {
      theirs.set_parent(mine);
    } catch (const fern::CrossThreadError&) {
      parent_refused = true;
    }
    try {
      Greenlet child([] {}, mine);
    } catch (const fern::CrossThreadError&) {
      ctor_refused = true;
    }
  });
  t.join();
  EXPECT_TRUE(switch_refused);
  EXPECT_TRUE(throw_refused);
  EXPECT_TRUE(parent_refused);
  EXPECT_TRUE(ctor_refused);
  EXPECT_EQ(fern::value_cast<int>(mine.switch_to()), 1);  // still fine on its own thread
}

// GL-15: one main greenlet per thread.
TEST_F(GreenletTree, EachThreadHasItsOwnMainGreenlet) {
  unsigned long other_main_id = 99;
  bool other_is_main = false;
  bool differs = false;
  Greenlet here = Greenlet::current();
  std::thread t([&] {
    Greenlet m = Greenlet::current();
    other_is_main = m.is_main();
    other_main_id = m.id();
    differs = !(m == here);
    Greenlet g([] { return 3; });
    EXPECT_EQ(fern::value_cast<int>(g.switch_to()), 3);
  });
  t.join();
  EXPECT_TRUE(other_is_main);
  EXPECT_EQ(other_main_id, 0u);
  EXPECT_TRUE(differs);
}

}  // namespace
