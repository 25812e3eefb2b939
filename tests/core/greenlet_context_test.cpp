// Context variables per greenlet: SEMANTICS GL-23, ported from greenlet's
// test_contextvars.py (test_context_assignment_while_running,
// test_context_propagated_by_context_run / _by_setting_attribute,
// test_context_shared, test_context_not_propagated, _different_thread).
#include <pthread.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/context.h"
#include "fern_test.h"

namespace {

using fern::Context;
using fern::ContextVar;
using fern::Greenlet;
using GreenletContext = fern::testing::FernTest;

// test_context_assignment_while_running: a greenlet's context is empty
// until first use, can be replaced (or cleared) while it runs or while it
// is suspended, and follows the greenlet across switches.
TEST_F(GreenletContext, AssignedWhileRunningOrSuspendedAndFollowsTheGreenlet) {
  ContextVar<std::optional<int>> id(std::nullopt);
  id.set(std::nullopt);
  Context old_context, new_context;
  Greenlet gr;
  gr = Greenlet([&] {
    EXPECT_EQ(id.get(), std::nullopt);
    EXPECT_FALSE(gr.context());  // not inherited from the parent
    id.set(1);  // made on first use
    ASSERT_TRUE(gr.context());
    EXPECT_EQ(id.get(), 1);
    EXPECT_EQ(gr.context().get(id), std::optional<std::optional<int>>(1));
    old_context = gr.context();
    gr.set_context(Context());  // cleared while running: made again when next used
    EXPECT_EQ(id.get(), std::nullopt);
    EXPECT_FALSE(gr.context());
    id.set(2);
    EXPECT_EQ(id.get(), 2);
    new_context = gr.context();
    Greenlet::current().parent().switch_to();
    EXPECT_EQ(id.get(), 1);  // the parent switched us back to old_context
    gr.set_context(new_context);  // assigned while running
    EXPECT_EQ(id.get(), 2);
    Greenlet::current().parent().switch_to();
    EXPECT_EQ(id.get(), std::nullopt);  // back with no context
    EXPECT_FALSE(gr.context());
    gr.set_context(old_context);
    EXPECT_EQ(id.get(), 1);
    Greenlet::current().parent().switch_to();
    EXPECT_EQ(id.get(), std::nullopt);
    EXPECT_FALSE(gr.context());
  });
  EXPECT_FALSE(gr.context());
  gr.switch_to();
  EXPECT_TRUE(gr.context() == new_context);
  EXPECT_TRUE(old_context != new_context);
  EXPECT_EQ(id.get(), std::nullopt);  // the parent's own context is untouched
  gr.set_context(old_context);  // assigned while suspended
  gr.switch_to();
  EXPECT_TRUE(gr.context() == new_context);
  gr.set_context(Context());
  gr.switch_to();
  EXPECT_TRUE(gr.context() == old_context);
  gr.set_context(Context());
  gr.switch_to();
  EXPECT_TRUE(gr.dead());
  Greenlet::current().set_context(Context());
}

// test_context_propagated_by_*: four greenlets count how often they see
// each id. Not propagated: each starts empty; by set_context(copy) or
// Context::run(copy): each starts from a copy of main's; shared: all run
// in main's one context, so each sees the id the one before set.
enum class Propagate { kNone, kSet, kRun, kShare };

std::map<int, int> count_ids(Propagate how) {
  ContextVar<std::optional<int>> id(std::nullopt);
  id.set(0);
  Greenlet main = Greenlet::current();
  std::map<int, int> counts;
  auto increment = [&](int me, std::optional<int> expect) {
    EXPECT_EQ(id.get(), expect);
    id.set(me);
    for (int i = 0; i < 2; ++i) {
      ++counts[*id.get()];
      main.switch_to();
    }
  };
  std::vector<Greenlet> lets;
  for (int i = 1; i <= 4; ++i) {
    std::optional<int> expect = how == Propagate::kShare ? std::optional<int>(i - 1)
                                : how == Propagate::kNone ? std::nullopt
                                                          : std::optional<int>(0);
    if (how == Propagate::kRun) {
      Context copy = Context::copy_current();
      lets.emplace_back([=, &increment]() mutable { copy.run([&] { increment(i, expect); }); });
    } else {
      lets.emplace_back([=, &increment] { increment(i, expect); });
    }
  }
  for (Greenlet& let : lets) {
    if (how == Propagate::kSet) let.set_context(Context::copy_current());
    if (how == Propagate::kShare) let.set_context(main.context());
  }
  for (int round = 0; round < 2; ++round) {
    ++counts[*id.get()];
    for (Greenlet& let : lets) let.switch_to();
  }
  for (Greenlet& let : lets) let.switch_to();
  for (Greenlet& let : lets) {
    EXPECT_TRUE(let.dead());
    // Leaving run() leaves no context behind; otherwise the greenlet keeps
    // the one it ran in.
    EXPECT_EQ(static_cast<bool>(let.context()), how != Propagate::kRun);
  }
  main.set_context(Context());
  return counts;
}

TEST_F(GreenletContext, NotPropagatedUnlessAssignedOrRun) {
  for (Propagate how : {Propagate::kNone, Propagate::kSet, Propagate::kRun}) {
    std::map<int, int> counts = count_ids(how);
    std::set<int> values;
    for (auto& [id, n] : counts) values.insert(n);
    EXPECT_EQ(values, std::set<int>{2}) << static_cast<int>(how);
    EXPECT_EQ(counts.size(), 5u);
  }
}

TEST_F(GreenletContext, SharedContextIsSeenByEveryGreenletInIt) {
  EXPECT_EQ(count_ids(Propagate::kShare), (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 6}}));
}

// contextvars' own rules: copies are snapshots, tokens put a value back
// once and only in their context and variable, a context is entered by one
// run() at a time, get() without a value or default is LookupError.
TEST_F(GreenletContext, CopiesTokensAndErrorsFollowContextvars) {
  ContextVar<std::string> name;
  EXPECT_THROW(name.get(), fern::LookupError);
  EXPECT_EQ(name.get_or("fallback"), "fallback");
  auto first = name.set("a");
  Context snapshot = Context::copy_current();
  auto second = name.set("b");
  EXPECT_EQ(name.get(), "b");
  EXPECT_EQ(snapshot.get(name), std::optional<std::string>("a"));
  EXPECT_EQ(snapshot.size(), 1u);
  snapshot.run([&] {
    EXPECT_EQ(name.get(), "a");
    name.set("in snapshot");
    EXPECT_THROW(name.reset(second), std::invalid_argument);  // made in another context
    EXPECT_THROW(snapshot.run([] {}), fern::ContextError);   // entered already
  });
  EXPECT_EQ(snapshot.get(name), std::optional<std::string>("in snapshot"));
  EXPECT_EQ(name.get(), "b");
  ContextVar<std::string> other;
  EXPECT_THROW(other.reset(second), std::invalid_argument);  // another variable's
  name.reset(second);
  EXPECT_EQ(name.get(), "a");
  EXPECT_THROW(name.reset(second), fern::ContextError);  // used already
  name.reset(first);
  EXPECT_THROW(name.get(), fern::LookupError);
  EXPECT_FALSE(Context::create().contains(name));
  EXPECT_THROW(Context().run([] {}), std::invalid_argument);
  // A run() left by an exception restores the context before it.
  Context fresh = Context::create();
  EXPECT_THROW(fresh.run([&] {
    name.set("inside");
    throw std::runtime_error("out");
  }),
               std::runtime_error);
  EXPECT_THROW(name.get(), fern::LookupError);
  EXPECT_EQ(fresh.get(name), std::optional<std::string>("inside"));
  fresh.run([] {});  // no longer entered
  Greenlet::current().set_context(Context());
}

// A variable that goes leaves its values unreachable: a new one at the
// same address (another type, even) never sees them.
TEST_F(GreenletContext, AGoneVariablesValuesNeverReachANewOne) {
  alignas(ContextVar<std::string>) unsigned char place[sizeof(ContextVar<std::string>) + sizeof(ContextVar<int>)];
  auto* a = new (place) ContextVar<int>();
  a->set(42);
  a->~ContextVar<int>();
  auto* b = new (place) ContextVar<std::string>("default");
  EXPECT_EQ(b->get(), "default");
  b->~ContextVar<std::string>();
  Greenlet::current().set_context(Context());
}

// GL-23 test_context_assignment_different_thread: another thread's
// greenlet's context is out of reach (ValueError in Python).
TEST_F(GreenletContext, AnotherThreadsGreenletsContextIsCrossThreadError) {
  Greenlet theirs;
  pthread_t t;
  auto start = [](void* arg) -> void* {
    *static_cast<Greenlet*>(arg) = Greenlet::current();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&t, nullptr, start, &theirs), 0);
  pthread_join(t, nullptr);
  EXPECT_THROW(theirs.context(), fern::CrossThreadError);
  EXPECT_THROW(theirs.set_context(Context::create()), fern::CrossThreadError);
  theirs = Greenlet();
}

}  // namespace
