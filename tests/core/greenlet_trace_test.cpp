// Tracing switches: SEMANTICS GL-24, ported from greenlet's test_tracing.py
// (test_a_greenlet_tracing, test_b_exception_disables_tracing,
// test_set_same_tracer_twice), and where fern calls the trace: in the
// greenlet switched to, also for a greenlet starting (the hub's switches:
// hub_test's HubLoop.TheHubsSwitchesAreTracedInOrder).
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fern/core/greenlet.h"
#include "fern_test.h"

namespace {

using fern::Greenlet;
using fern::TraceEvent;
using GreenletTrace = fern::testing::FernTest;

struct SomeError : std::runtime_error {
  SomeError() : std::runtime_error("some error") {}
};

struct Action {
  TraceEvent event;
  Greenlet origin, target;
  bool operator==(const Action& o) const { return event == o.event && origin == o.origin && target == o.target; }
};

// greenlet's GreenletTracer: records every event, or throws at each one;
// set while it lives, the previous trace back afterwards.
class Tracer {
 public:
  explicit Tracer(bool error_on_trace = false) : error_on_trace_(error_on_trace) {
    previous_ = Greenlet::set_trace([this](TraceEvent e, const Greenlet& origin, const Greenlet& target) {
      actions.push_back({e, origin, target});
      if (error_on_trace_) throw SomeError();
    });
  }
  ~Tracer() { Greenlet::set_trace(std::move(previous_)); }
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;
  std::vector<Action> actions;

 private:
  bool error_on_trace_;
  Greenlet::Trace previous_;
};

// test_a_greenlet_tracing
TEST_F(GreenletTrace, EverySwitchIsTracedWithItsEventOriginAndTarget) {
  Greenlet main = Greenlet::current();
  std::vector<Action> actions;
  Greenlet g1, g2;
  {
    Tracer tracer;
    g1 = Greenlet([] {});
    g1.switch_to();
    g2 = Greenlet([] { throw SomeError(); });
    EXPECT_THROW(g2.switch_to(), SomeError);
    actions = tracer.actions;
  }
  EXPECT_FALSE(Greenlet::trace());
  std::vector<Action> expected{{TraceEvent::kSwitch, main, g1},
                               {TraceEvent::kSwitch, g1, main},
                               {TraceEvent::kSwitch, main, g2},
                               {TraceEvent::kThrow, g2, main}};
  EXPECT_TRUE(actions == expected) << actions.size() << " actions";
}

// test_b_exception_disables_tracing: the trace runs in the greenlet switched
// to, so its error is raised there (g's switch back to main), ends g, and
// reaches main through g's death; tracing is off from the error on.
TEST_F(GreenletTrace, AnErrorFromTheTraceTurnsTracingOffAndIsRaisedByTheSwitch) {
  Greenlet main = Greenlet::current();
  bool g_saw_error = false;
  Greenlet g([&] {
    try {
      main.switch_to();
    } catch (const SomeError&) {
      g_saw_error = true;
      throw;
    }
  });
  g.switch_to();
  std::vector<Action> actions;
  {
    Tracer tracer(/*error_on_trace=*/true);
    EXPECT_THROW(g.switch_to(), SomeError);
    EXPECT_FALSE(Greenlet::trace());
    actions = tracer.actions;
  }
  EXPECT_TRUE(g_saw_error);
  EXPECT_TRUE(g.dead());
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_TRUE((actions[0] == Action{TraceEvent::kSwitch, main, g}));
}

// test_set_same_tracer_twice
TEST_F(GreenletTrace, SettingTheSameTraceTwiceKeepsItWorking) {
  int calls = 0;
  Greenlet::Trace trace = [&calls](TraceEvent, const Greenlet&, const Greenlet&) { ++calls; };
  Greenlet::Trace before = Greenlet::set_trace(trace);
  Greenlet::set_trace(trace);
  Greenlet g([] {});
  g.switch_to();
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(Greenlet::trace());
  Greenlet::set_trace(std::move(before));
  Greenlet h([] {});
  h.switch_to();
  EXPECT_EQ(calls, 2);
}

// The trace runs in the target, after the switch; throw_in is a "throw".
TEST_F(GreenletTrace, TheTraceRunsInTheTargetAndAThrowInIsAThrow) {
  Greenlet main = Greenlet::current();
  std::vector<Greenlet> running_in;
  Greenlet g([&] {
    try {
      main.switch_to();
    } catch (const SomeError&) {
    }
    return 7;
  });
  g.switch_to();
  Greenlet::Trace before = Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet& target) {
    EXPECT_EQ(Greenlet::current(), target);
    running_in.push_back(Greenlet::current());
  });
  fern::Value v = g.throw_in(SomeError());
  Greenlet::set_trace(std::move(before));
  EXPECT_EQ(fern::value_cast<int>(v), 7);
  EXPECT_EQ(running_in, (std::vector<Greenlet>{g, main}));
}

// A trace that throws as a greenlet starts: the greenlet ends with that error
// without running its body (greenlet turns it into a throw at the start).
TEST_F(GreenletTrace, ATraceErrorAtAStartEndsTheGreenletWithoutRunningIt) {
  bool ran = false;
  Greenlet g([&ran] { ran = true; });
  {
    Tracer tracer(/*error_on_trace=*/true);
    EXPECT_THROW(g.switch_to(), SomeError);
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(g.dead());
}

}  // namespace
