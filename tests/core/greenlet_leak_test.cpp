// Ported from python-greenlet's test_leaks.py (test_arg_refs,
// test_kwarg_refs) and test_stack_saved.py: what a switch carries is not
// kept by fern once the receiver let it go (GL-27), and the stack a
// suspended greenlet uses is reported (GL-25; fern copies no stacks, so
// detail::for_each_greenlet's stack_used stands for stack_saved).
#include <cstddef>
#include <memory>
#include <string>
#include <tuple>

#include "fern/core/greenlet.h"
#include "fern_test.h"

namespace {

using fern::Greenlet;
using GreenletLeaks = fern::testing::FernTest;

fern::Value to_parent(fern::Value v = {}) { return Greenlet::current().parent().switch_value(std::move(v)); }

// Sends back whatever it gets, for ever, keeping nothing between switches.
Greenlet echo() {
  return Greenlet([](fern::Value v) {
    for (;;) v = to_parent(std::move(v));
  });
}

struct Error {
  std::shared_ptr<int> held;
};

// GL-27 (test_arg_refs): 100 switches each way with one argument, with
// several (a tuple) and through a body's return leave the count as it was.
TEST_F(GreenletLeaks, SwitchArgumentsAreNotKept) {
  auto arg = std::make_shared<int>(1);
  {
    Greenlet g = echo();
    for (int i = 0; i < 100; ++i) {
      fern::Value back = g.switch_to(arg);
      EXPECT_EQ(fern::value_cast<std::shared_ptr<int>>(back), arg);
    }
    EXPECT_EQ(arg.use_count(), 1);
    for (int i = 0; i < 100; ++i) (void)g.switch_to(arg, arg, std::string("kw"));
    EXPECT_EQ(arg.use_count(), 1);
  }
  for (int i = 0; i < 100; ++i) {
    Greenlet g([&] { return arg; });
    (void)g.switch_to();
    Greenlet dead([] {});
    dead.switch_to();
    (void)dead.switch_to(arg);  // to a dead greenlet: goes on to its parent (GL-8)
  }
  EXPECT_EQ(arg.use_count(), 1);
}

// GL-27 through throw_in: caught inside, escaping to the thrower, thrown
// into an unstarted greenlet, or thrown by a body.
TEST_F(GreenletLeaks, ThrownExceptionsAreNotKept) {
  auto arg = std::make_shared<int>(1);
  {
    Greenlet g([] {
      for (;;) {
        try {
          to_parent();
        } catch (const Error&) {
        }
      }
    });
    g.switch_to();
    for (int i = 0; i < 100; ++i) g.throw_in(Error{arg});
    EXPECT_EQ(arg.use_count(), 1);
  }
  for (int i = 0; i < 100; ++i) {
    Greenlet suspended([] { to_parent(); });
    suspended.switch_to();
    EXPECT_THROW(suspended.throw_in(Error{arg}), Error);
    Greenlet unstarted([] {});
    EXPECT_THROW(unstarted.throw_in(Error{arg}), Error);
    Greenlet thrower([&] { throw Error{arg}; });
    EXPECT_THROW(thrower.switch_to(), Error);
  }
  EXPECT_EQ(arg.use_count(), 1);
}

struct Used {
  unsigned long id;
  std::size_t used = 0;
  bool seen = false;
};

Used stack_used(const Greenlet& g) {
  Used u{g.id()};
  fern::detail::for_each_greenlet(
      [](const fern::detail::GreenletView& v, void* p) {
        auto* u = static_cast<Used*>(p);
        if (v.id != u->id) return;
        u->used = v.stack_used;
        u->seen = true;
      },
      &u);
  return u;
}

// GL-25 (test_stack_saved): a suspended greenlet reports the stack its
// frames hold, more for deeper frames; unstarted and dead ones hold none.
TEST_F(GreenletLeaks, StackUsedFollowsTheSuspendedFrames) {
  Greenlet shallow([] { to_parent(); });
  Greenlet deep([] {
    volatile char frame[16 * 1024];
    frame[0] = 1;
    to_parent();
    (void)frame[0];
  });
  EXPECT_EQ(stack_used(shallow).used, 0u);
  shallow.switch_to();
  deep.switch_to();
  Used s = stack_used(shallow), d = stack_used(deep);
  ASSERT_TRUE(s.seen && d.seen);
  EXPECT_GT(s.used, 0u);
  EXPECT_GE(d.used, s.used + 16 * 1024);
  EXPECT_LE(d.used, deep.stack_size());
  shallow.switch_to();
  EXPECT_TRUE(shallow.dead());
  EXPECT_EQ(stack_used(shallow).used, 0u);
  deep.switch_to();
}

}  // namespace
