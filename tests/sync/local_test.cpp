// local<T>: SEMANTICS LOC-1 .. LOC-3 (probes LOC1, LOC2, LOC4; seed 31).
#include "fern/sync/local.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "hub_fixture.h"

namespace {

using fern::spawn;
using Locals = fern::testing::HubTest;

// LOC-1 (probe LOC1)
TEST_F(Locals, ValuesArePerGreenlet) {
  fern::local<std::string> st;
  *st = "main";
  auto f = spawn([&] {
    bool had = st.has_value();
    *st = "child";
    return std::make_pair(had, *st);
  });
  EXPECT_EQ(f.get(), std::make_pair(false, std::string("child")));
  EXPECT_EQ(*st, "main");
  EXPECT_TRUE(st.has_value());
}

struct Counted {
  static int made;
  int v;
  std::vector<int> items;
  explicit Counted(int value) : v(value) { ++made; }
};
int Counted::made = 0;

// LOC-2 (probe LOC2): each greenlet's value is built from the same arguments.
TEST_F(Locals, EachGreenletBuildsItsValueFromTheConstructorArguments) {
  Counted::made = 0;
  fern::local<Counted> l(7);
  auto g2 = [&] {
    l->items.push_back(1);
    return std::make_pair(l->v, l->items.size());
  };
  EXPECT_EQ(spawn(g2).get(), std::make_pair(7, std::size_t{1}));
  EXPECT_EQ(spawn(g2).get(), std::make_pair(7, std::size_t{1}));
  EXPECT_TRUE(l->items.empty());
  EXPECT_EQ(Counted::made, 3);
}

// LOC-3 (probe LOC4): values of ended greenlets go; all go with the local.
TEST_F(Locals, ValuesAreReleasedAfterTheirGreenletEndsAndWithTheLocal) {
  auto holder = std::make_unique<fern::local<std::shared_ptr<int>>>();
  std::weak_ptr<int> ref;
  spawn([&] {
    **holder = std::make_shared<int>(1);
    ref = **holder;
  }).join();
  EXPECT_TRUE(ref.expired());  // released when its greenlet ended
  EXPECT_EQ(holder->size(), 0u);

  **holder = std::make_shared<int>(2);
  std::weak_ptr<int> main_ref = **holder;
  holder->reset();
  EXPECT_TRUE(main_ref.expired());
  EXPECT_FALSE(holder->has_value());

  auto running = spawn([&] {
    **holder = std::make_shared<int>(3);
    ref = **holder;
    fern::sleep(10);
  });
  fern::sleep(0);
  holder.reset();  // while its greenlet still runs
  EXPECT_TRUE(ref.expired());
  running.kill();
}

// LOC-3: the table holds values of running greenlets only.
// A value whose destructor blocks: its greenlet, already a dead task whose
// handles are all gone, finishes the destructor instead of being killed
// inside it (a GreenletExit out of a noexcept destructor ends the process).
TEST_F(Locals, AValueWhoseDestructorBlocksFinishesAfterItsTaskIsGone) {
  struct Slow {
    std::vector<std::string>* log = nullptr;
    ~Slow() {
      if (!log) return;
      fern::sleep(0.001);
      log->push_back("destroyed after a sleep");
    }
  };
  fern::local<Slow> slow;
  {
    auto t = spawn([&] { slow->log = &log; });
    t.join();
    EXPECT_TRUE(t.dead());
  }  // the last handle goes while the destructor sleeps
  fern::Hub::current().run_until_idle();
  EXPECT_EQ(log, std::vector<std::string>{"destroyed after a sleep"});
}

TEST_F(Locals, TableHoldsOnlyRunningGreenletsValues) {
  fern::local<int> l;
  for (int i = 0; i < 100; ++i) spawn([&] { *l = 1; }).join();
  EXPECT_EQ(l.size(), 0u);
  auto parked = spawn([&] {
    *l = 2;
    fern::sleep(10);
  });
  fern::sleep(0);
  EXPECT_EQ(l.size(), 1u);
  parked.kill();  // killed: its value goes too
  EXPECT_EQ(l.size(), 0u);
}

// The hook runs for raw greenlets as well, and a value that is reset
// beforehand is not destroyed twice.
TEST_F(Locals, RawGreenletValuesGoWhenTheGreenletEnds) {
  fern::local<std::shared_ptr<int>> l;
  std::weak_ptr<int> ref;
  fern::Greenlet g([&] {
    *l = std::make_shared<int>(7);
    ref = *l;
    fern::Greenlet::current().parent().switch_to();
  });
  g.switch_to();
  EXPECT_FALSE(ref.expired());
  g.switch_to();  // ends
  EXPECT_TRUE(ref.expired());
  fern::Greenlet h([&] {
    *l = std::make_shared<int>(8);
    l.reset();
  });
  h.switch_to();
  EXPECT_EQ(l.size(), 0u);
}

// LOC-2: a value whose constructor reaches its own local (its greenlet has
// no value yet, so the inner access makes one) does not leave two: the
// inner one is the greenlet's, get() returns it every time, the outer one
// is destroyed at once, and nothing is left when the greenlet ends.
struct Reentrant {
  static inline fern::local<Reentrant>* home = nullptr;
  static inline int live = 0;
  static inline bool reenter = true;
  int made_at;
  Reentrant() : made_at(++live) {
    if (std::exchange(reenter, false)) (void)home->get();
  }
  ~Reentrant() { --live; }
};

TEST_F(Locals, AConstructorThatUsesItsOwnLocalLeavesOneValue) {
  fern::local<Reentrant> l;
  Reentrant::home = &l;
  auto t = spawn([&] {
    Reentrant& first = l.get();
    EXPECT_EQ(&first, &l.get());
    EXPECT_EQ(first.made_at, 2);  // the inner one
    EXPECT_EQ(Reentrant::live, 1);
    EXPECT_EQ(l.size(), 1u);
  });
  t.join();
  EXPECT_EQ(Reentrant::live, 0);
  EXPECT_EQ(l.size(), 0u);
}

}  // namespace
