// A sweep of python-greenlet's own test suite (src/greenlet/tests/) for the
// cases the other greenlet tests had not ported yet: each test names the
// upstream file and method and the SEMANTICS GL- id. Cases already ported
// live in greenlet_upstream_test.cpp, greenlet_*_test.cpp, generator_test.cpp
// and gevent_core_upstream_test.cpp; Python-only ones (refcounts, frames,
// the cycle collector, weakrefs, __dict__, copying, subclass hooks) have no
// C++ counterpart. The "Hostile" tests use the API the way a careless or
// malicious caller would: each must end in a typed error or a defined
// outcome, never a crash, hang or undefined behaviour.
#include <pthread.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <functional>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "fern/core/context.h"
#include "fern/core/greenlet.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "exit_death_test.h"
#include "fern_test.h"

namespace {

// A greenlet abandoned with its exited thread keeps what its stack holds
// (its parent, the thread's main greenlet, among it) for good, as README
// says: LeakSanitizer is told those allocations are leaked on purpose.
struct LeaksOnPurpose {
#if defined(__SANITIZE_ADDRESS__)
  __lsan::ScopedDisabler disabler;  // this thread's allocations from here on
#endif
};

using fern::Greenlet;
using fern::TraceEvent;
using fern::Value;
using GreenletSweep = fern::testing::FernTest;

struct SomeError : std::runtime_error {
  SomeError() : std::runtime_error("some error") {}
};

Value to_parent(Value v = {}) { return Greenlet::current().parent().switch_value(std::move(v)); }
std::string str(const Value& v) { return fern::value_cast<std::string>(v); }

// A greenlet that parks in its parent and calls on_kill when a GreenletExit
// unwinds it.
Greenlet parks_until_killed(std::function<void()> on_kill) {
  return Greenlet([on_kill = std::move(on_kill)] {
    try {
      to_parent();
    } catch (const fern::GreenletExit&) {
      on_kill();
      throw;
    }
  });
}

// A one-shot latch for the threaded cases.
class Latch {
 public:
  void set() {
    std::lock_guard<std::mutex> lock(m_);
    set_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [this] { return set_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool set_ = false;
};

// ---- test_greenlet.py::TestGreenlet ----

// test_simple's _do_simple_test (GL-1, GL-2): the body and main interleave.
std::vector<int> simple_interleaving() {
  std::vector<int> lst;
  Greenlet g([&] {
    lst.push_back(1);
    to_parent();
    lst.push_back(3);
  });
  lst.push_back(0);
  g.switch_to();
  lst.push_back(2);
  g.switch_to();
  lst.push_back(4);
  return lst;
}

TEST_F(GreenletSweep, Simple) { EXPECT_EQ(simple_interleaving(), (std::vector<int>{0, 1, 2, 3, 4})); }

// test_switch_no_run_raises_AttributeError (GL-17): the error names "run".
TEST_F(GreenletSweep, SwitchToAGreenletWithoutRunNamesRun) {
  Greenlet g{Greenlet::Run()};
  try {
    g.switch_to();
    FAIL() << "no exception";
  } catch (const fern::GreenletError& e) {
    EXPECT_NE(std::string(e.what()).find("run"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(g.started());
}

// test_parent_equals_None (GL-5): an empty parent means the current greenlet.
TEST_F(GreenletSweep, EmptyParentMeansTheCurrentGreenlet) {
  Greenlet g([] {}, Greenlet());
  EXPECT_EQ(g.parent(), Greenlet::current());
  Greenlet inner_parent;
  Greenlet outer([&] {
    Greenlet inner([] {}, Greenlet());
    inner_parent = inner.parent();
  });
  outer.switch_to();
  EXPECT_EQ(inner_parent, outer);
  inner_parent = Greenlet();
}

// test_run_equals_None (GL-17): an empty Run or a null function pointer
// makes a greenlet without run.
TEST_F(GreenletSweep, NullRunMakesAGreenletWithoutRun) {
  int (*none)() = nullptr;
  Greenlet from_pointer(none);
  Greenlet from_function{Greenlet::Run()};
  for (Greenlet* g : {&from_pointer, &from_function}) {
    EXPECT_FALSE(g->started());
    EXPECT_THROW(g->switch_to(), fern::GreenletError);
    EXPECT_FALSE(g->started());
    EXPECT_FALSE(g->dead());
  }
}

// test_two_children (GL-2, GL-4)
TEST_F(GreenletSweep, TwoChildren) {
  std::vector<int> lst;
  auto f = [&] {
    lst.push_back(1);
    to_parent();
    lst.insert(lst.end(), {1, 1});
  };
  Greenlet g(f), h(f);
  g.switch_to();
  EXPECT_EQ(lst.size(), 1u);
  h.switch_to();
  EXPECT_EQ(lst.size(), 2u);
  h.switch_to();
  EXPECT_EQ(lst.size(), 4u);
  EXPECT_TRUE(h.dead());
  g.switch_to();
  EXPECT_EQ(lst.size(), 6u);
  EXPECT_TRUE(g.dead());
}

// test_two_recursive_children (GL-2, GL-4, GL-19): a greenlet made inside
// another and left suspended there is killed when its handle leaves that
// frame; the refcount checks become live counts.
TEST_F(GreenletSweep, TwoRecursiveChildren) {
  std::size_t before = Greenlet::live_count();
  std::vector<std::string> lst;
  bool inner_killed = false;
  Greenlet g([&] {
    lst.push_back("a");
    Greenlet inner = parks_until_killed([&] { inner_killed = true; });
    lst.push_back("b");
    inner.switch_to();
    lst.push_back("c");
  });
  EXPECT_EQ(Greenlet::live_count(), before + 1);
  g.switch_to();
  EXPECT_EQ(lst, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(inner_killed);
  EXPECT_EQ(Greenlet::live_count(), before + 1);  // only g, dead, held here
}

// test_threads (GL-15): ten threads run the simple test, each with its own
// main greenlet, and leave nothing behind.
TEST_F(GreenletSweep, SimpleTestInTenThreads) {
  std::atomic<int> success{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i)
    threads.emplace_back([&] {
      if (simple_interleaving() == std::vector<int>{0, 1, 2, 3, 4} && Greenlet::live_count() == 1) ++success;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(success.load(), 10);
}

// test_switching_many_threads (GL-18): many threads switch to greenlets
// that other live threads own; every attempt is a CrossThreadError, none
// touches the greenlet. (fern's handles belong to their thread: the
// switchers use the owners' handles by reference, and the owners end their
// greenlets once the switchers are done.)
TEST_F(GreenletSweep, SwitchingManyThreadsIsAlwaysACrossThreadError) {
  constexpr int kThreads = 8;
  for (int rep = 0; rep < 3; ++rep) {
    std::vector<Greenlet*> greenlets(kThreads, nullptr);
    std::mutex m;
    Latch all_created, switchers_done;
    std::atomic<int> created{0}, refused{0}, wrong{0};
    std::vector<std::thread> creators, switchers;
    for (int i = 0; i < kThreads; ++i)
      creators.emplace_back([&, i] {
        int resumed = 0;
        Greenlet g([&] {
          for (;;) {
            to_parent();
            ++resumed;
          }
        });
        g.switch_to();
        {
          std::lock_guard<std::mutex> lock(m);
          greenlets[i] = &g;
        }
        if (++created == kThreads) all_created.set();
        switchers_done.wait();
        if (resumed != 0) ++wrong;
        g.throw_in();
        if (!g.dead()) ++wrong;
      });
    for (int i = 0; i < kThreads; ++i)
      switchers.emplace_back([&] {
        all_created.wait();
        for (int round = 0; round < 20; ++round)
          for (Greenlet* g : greenlets) {
            try {
              g->switch_to();
              ++wrong;
            } catch (const fern::CrossThreadError&) {
              ++refused;
            }
          }
      });
    for (auto& t : switchers) t.join();
    switchers_done.set();
    for (auto& t : creators) t.join();
    EXPECT_EQ(refused.load(), kThreads * kThreads * 20);
    EXPECT_EQ(wrong.load(), 0);
  }
}

// fmain of test_greenlet.py: records what reaches its suspension point and
// re-raises it; resumed normally, it raises SomeError.
void fmain(std::vector<std::string>* seen) {
  try {
    to_parent();
  } catch (const SomeError&) {
    seen->push_back("SomeError");
    throw;
  } catch (const std::out_of_range&) {
    seen->push_back("out_of_range");
    throw;
  } catch (const fern::GreenletExit&) {
    seen->push_back("GreenletExit");
    throw;
  }
  throw SomeError();
}

// test_exception (GL-6, GL-8): g2's error goes to its new parent g1 at its
// switch point, which records and re-raises it into main; switches to the
// dead g2 then fall through to main and return their arguments.
TEST_F(GreenletSweep, ExceptionGoesToTheParentAndDeadOnesForwardToMain) {
  std::vector<std::string> seen;
  Greenlet g1([&] { fmain(&seen); }), g2([&] { fmain(&seen); });
  g1.switch_to();
  g2.switch_to();
  g2.set_parent(g1);
  EXPECT_TRUE(seen.empty());
  EXPECT_THROW(g2.switch_to(), SomeError);
  EXPECT_EQ(seen, std::vector<std::string>{"SomeError"});
  EXPECT_TRUE(g1.dead() && g2.dead());
  EXPECT_FALSE(g2.switch_to().has_value());
  EXPECT_EQ(fern::value_cast<int>(g2.switch_to(25)), 25);
  EXPECT_EQ(seen, std::vector<std::string>{"SomeError"});
}

// test_send_exception (GL-6): a child of g that raises sends its error to g
// at g's switch point (greenlet's send_exception).
TEST_F(GreenletSweep, SendExceptionThroughACrashingChild) {
  std::vector<std::string> seen;
  Greenlet g1([&] { fmain(&seen); });
  g1.switch_to();
  Greenlet crasher([](Value) { throw std::out_of_range("key"); }, g1);
  EXPECT_THROW(crasher.switch_to(), std::out_of_range);
  EXPECT_EQ(seen, std::vector<std::string>{"out_of_range"});
  EXPECT_TRUE(g1.dead());
}

// test_dealloc (GL-19): dropping each suspended greenlet's last handle
// raises GreenletExit at its switch point, one at a time.
TEST_F(GreenletSweep, DeallocKillsEachSuspendedGreenlet) {
  std::vector<std::string> seen;
  auto g1 = std::make_unique<Greenlet>([&] { fmain(&seen); });
  auto g2 = std::make_unique<Greenlet>([&] { fmain(&seen); });
  g1->switch_to();
  g2->switch_to();
  EXPECT_TRUE(seen.empty());
  g1.reset();
  EXPECT_EQ(seen, std::vector<std::string>{"GreenletExit"});
  g2.reset();
  EXPECT_EQ(seen, (std::vector<std::string>{"GreenletExit", "GreenletExit"}));
}

// test_thread_bug: two threads each run a greenlet that sleeps.
TEST_F(GreenletSweep, GreenletsSleepingInTwoThreads) {
  std::atomic<int> done{0};
  auto runner = [&](int ms) {
    Greenlet g([ms] { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); });
    g.switch_to();
    if (g.dead()) ++done;
  };
  std::thread t1(runner, 20), t2(runner, 30);
  t1.join();
  t2.join();
  EXPECT_EQ(done.load(), 2);
}

// test_switch_kwargs / test_switch_kwargs_to_parent (GL-3): C++ has no
// keyword arguments; the positional packing of the same exchange.
TEST_F(GreenletSweep, SwitchArgumentsToTheParentArePacked) {
  Greenlet g([](Value v) {
    int x = fern::value_cast<int>(v);
    to_parent(x);
    Greenlet::current().parent().switch_to(2, x);
    return std::make_tuple(x, x * x);
  });
  EXPECT_EQ(fern::value_cast<int>(g.switch_to(3)), 3);
  EXPECT_EQ((fern::value_cast<std::tuple<int, int>>(g.switch_to())), std::make_tuple(2, 3));
  EXPECT_EQ((fern::value_cast<std::tuple<int, int>>(g.switch_to())), std::make_tuple(3, 9));
}

// test_switch_to_another_thread (GL-18): a greenlet of a thread that is
// still running cannot be switched to (nor thrown into) from here.
TEST_F(GreenletSweep, SwitchToAGreenletOfAnotherLiveThreadIsRefused) {
  Greenlet* theirs = nullptr;
  Latch created, done;
  std::thread t([&] {
    Greenlet g([] {});
    theirs = &g;
    created.set();
    done.wait();
    g.switch_to();  // its own thread may
  });
  created.wait();
  EXPECT_THROW(theirs->switch_to(), fern::CrossThreadError);
  EXPECT_THROW(theirs->throw_in(SomeError()), fern::CrossThreadError);
  EXPECT_FALSE(theirs->started());
  done.set();
  t.join();
}

// test_exc_state (GL-21): inside a greenlet's catch block, a new greenlet
// starts with no current exception, and the catcher's is intact after.
TEST_F(GreenletSweep, ExceptionStateInsideAGreenletSurvivesStartingAnother) {
  bool h_saw_none = false, f_kept = false;
  Greenlet f([&] {
    try {
      throw std::invalid_argument("fun");
    } catch (...) {
      std::exception_ptr before = std::current_exception();
      Greenlet h([&] { h_saw_none = std::current_exception() == nullptr && std::uncaught_exceptions() == 0; });
      h.switch_to();
      f_kept = std::current_exception() == before;
    }
  });
  f.switch_to();
  EXPECT_TRUE(h_saw_none);
  EXPECT_TRUE(f_kept);
}

// test_throw_exception_not_lost (GL-10, GL-11): a thrower that is itself
// handling an exception does not lose the one it throws.
TEST_F(GreenletSweep, ThrowFromInsideACatchBlockIsNotLost) {
  Greenlet g([] {});
  try {
    throw std::logic_error("being handled");
  } catch (...) {
    EXPECT_THROW(g.throw_in(SomeError()), SomeError);
    EXPECT_NE(std::current_exception(), nullptr);
  }
  EXPECT_TRUE(g.dead());
}

// test_throw_to_dead_thread_doesnt_crash(_wait) (GL-18): throwing into (or
// switching to) a greenlet of a thread that has exited, suspended or dead,
// is a CrossThreadError that says so.
TEST_F(GreenletSweep, ThrowIntoAGreenletOfAnExitedThreadIsACrossThreadError) {
  for (bool finish_it : {false, true}) {
    Greenlet theirs;
    std::thread t([&] {
      LeaksOnPurpose on_purpose;
      theirs = Greenlet([] { to_parent(); });
      theirs.switch_to();
      if (finish_it) theirs.switch_to();
    });
    t.join();
    EXPECT_EQ(theirs.dead(), finish_it);
    try {
      theirs.throw_in(SomeError());
      ADD_FAILURE() << "throw_in returned";
    } catch (const fern::CrossThreadError& e) {
      EXPECT_NE(std::string(e.what()).find("thread that has exited"), std::string::npos) << e.what();
    }
    EXPECT_THROW(theirs.switch_to(), fern::CrossThreadError);
    // Dropping a suspended greenlet of a thread that is gone: reported
    // and its stack abandoned (nothing can unwind it), not a crash.
    ::testing::internal::CaptureStderr();
    theirs = Greenlet();
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.find("outside its thread") != std::string::npos, !finish_it) << err;
  }
}

// test_issue_245_reference_counting_subclass_no_threads (GL-19, GL-20):
// greenlets that keep a handle to themselves while being killed end dead,
// and go when that handle goes.
TEST_F(GreenletSweep, GreenletsThatKeepThemselvesWhileKilledGoWithTheirHandles) {
  std::size_t before = Greenlet::live_count();
  std::vector<Greenlet> glets;
  for (int i = 0; i < 10; ++i) {
    Greenlet([&] {
      try {
        to_parent();
      } catch (const fern::GreenletExit&) {
        glets.push_back(Greenlet::current());
      }
    }).switch_to();
  }
  ASSERT_EQ(glets.size(), 10u);
  for (const Greenlet& g : glets) EXPECT_TRUE(g.dead());
  EXPECT_EQ(Greenlet::live_count(), before + 10);
  glets.clear();
  EXPECT_EQ(Greenlet::live_count(), before);
}

// test_falling_off_end_switches_to_unstarted_parent_raises_error (GL-9):
// the unstarted parent started with the child's result fails on it (C++
// has no arity check: the run reads a type it was not sent); the error
// reaches the original switcher.
TEST_F(GreenletSweep, UnstartedParentFailingOnTheChildsResultRaisesInTheSwitcher) {
  Greenlet parent_never_started([](Value v) { return fern::value_cast<std::string>(v); });
  Greenlet child([] { return 42; }, parent_never_started);
  EXPECT_THROW(child.switch_to(), fern::BadValueCast);
  EXPECT_TRUE(child.dead());
  EXPECT_TRUE(parent_never_started.dead());
}

// test_get_stack_with_nested_c_calls: a greenlet suspended deep in a
// recursion through callbacks resumes every frame with its own values.
int recurse(int v) {
  if (v > 0) {
    std::function<int()> call = [v] { return recurse(v - 1); };
    return v * call();
  }
  return fern::value_cast<int>(to_parent());
}

TEST_F(GreenletSweep, ResumesADeepRecursionThroughCallbacks) {
  Greenlet gr([](Value v) { return recurse(fern::value_cast<int>(v)); });
  EXPECT_FALSE(gr.switch_to(5).has_value());
  EXPECT_EQ(fern::value_cast<int>(gr.switch_to(10)), 1200);  // 5! * 10
}

// test_switching_holding_critical_section_no_crash: two greenlets switch
// into each other from inside std::sort's comparisons (each on its first),
// and the second then does blocking I/O; the first stays suspended after
// its sort, as upstream's does.
TEST_F(GreenletSweep, SwitchingFromInsideLibraryCallbacks) {
  Greenlet g1, g2;
  std::vector<int> a{3, 1, 2}, b{6, 5, 4};
  auto sort_switching = [](std::vector<int>& v, Greenlet& to) {
    bool switched = false;
    std::sort(v.begin(), v.end(), [&](int x, int y) {
      if (!std::exchange(switched, true)) to.switch_to();
      return x < y;
    });
  };
  g1 = Greenlet([&] {
    sort_switching(a, g2);
    g2.switch_to();
  });
  g2 = Greenlet([&] {
    sort_switching(b, g1);
    std::FILE* f = std::fopen("/proc/self/status", "r");
    ASSERT_NE(f, nullptr);
    char buf[64];
    EXPECT_GT(std::fread(buf, 1, sizeof buf, f), 0u);
    std::fclose(f);
  });
  g1.switch_to();
  EXPECT_EQ(a, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(b, (std::vector<int>{4, 5, 6}));
  EXPECT_TRUE(g2.dead());
  EXPECT_TRUE(g1.active());
  g1 = g2 = Greenlet();
}

// ---- test_greenlet.py::TestGreenletSetParentErrors ----

// test_unexpected_reparenting(_thread_running) (GL-14, GL-18): a parent of
// another thread, exited or still running, is refused when it is set.
TEST_F(GreenletSweep, ParentOfAnotherThreadExitedOrRunningIsRefused) {
  Greenlet exited_thread_greenlet;
  std::thread([&] {
    exited_thread_greenlet = Greenlet([] {});
    exited_thread_greenlet.switch_to();
  }).join();
  Greenlet g([](Value v) { return v; });
  EXPECT_THROW(g.set_parent(exited_thread_greenlet), fern::CrossThreadError);

  Greenlet* running_thread_greenlet = nullptr;
  Latch ready, done;
  std::thread t([&] {
    Greenlet theirs([] {});
    theirs.switch_to();
    running_thread_greenlet = &theirs;
    ready.set();
    done.wait();
  });
  ready.wait();
  try {
    g.set_parent(*running_thread_greenlet);
    ADD_FAILURE() << "set_parent returned";
  } catch (const fern::CrossThreadError& e) {
    EXPECT_NE(std::string(e.what()).find("parent cannot be on a different thread"), std::string::npos) << e.what();
  }
  done.set();
  t.join();
  EXPECT_EQ(g.parent(), Greenlet::current());
  EXPECT_EQ(fern::value_cast<int>(g.switch_to(1)), 1);  // g ends into main, its parent still
}

// test_set_parent_wrong_types (GL-14): the one wrong "type" C++ allows, an
// empty handle, is refused whether the greenlet is unstarted or suspended.
TEST_F(GreenletSweep, EmptyParentIsRefusedUnstartedOrSuspended) {
  Greenlet g([] { to_parent(); });
  EXPECT_FALSE(g.active());
  EXPECT_THROW(g.set_parent(Greenlet()), fern::GreenletError);
  g.switch_to();
  EXPECT_TRUE(g.active());
  EXPECT_THROW(g.set_parent(Greenlet()), fern::GreenletError);
  EXPECT_EQ(g.parent(), Greenlet::current());
  g.switch_to();
  EXPECT_TRUE(g.dead());
}

// test_trivial_cycle, test_deeper_cycle (GL-14): the message is greenlet's;
// a running greenlet cannot make its own child its parent either.
TEST_F(GreenletSweep, CyclesSayCyclicParentChain) {
  Greenlet g1([] {}), g2([] {}), g3([] {});
  g1.set_parent(g2);
  g2.set_parent(g3);
  for (Greenlet* g : {&g1, &g3}) {  // g1 -> g1, and g3 -> g1 -> g2 -> g3
    try {
      g->set_parent(g1);
      ADD_FAILURE() << "set_parent returned";
    } catch (const fern::CyclicParentError& e) {
      EXPECT_NE(std::string(e.what()).find("cyclic parent chain"), std::string::npos) << e.what();
    }
  }
  bool refused = false;
  Greenlet child;
  Greenlet g([&] {
    child = Greenlet([] { to_parent(); });
    child.switch_to();
    try {
      Greenlet::current().set_parent(child);
    } catch (const fern::CyclicParentError&) {
      refused = true;
    }
  });
  g.switch_to();
  EXPECT_TRUE(refused);
  EXPECT_TRUE(g.dead());
  child.throw_in();
  child = Greenlet();
}

// Hostile (GL-8, GL-9): a parent set to a dead greenlet forwards past it; one
// set to an unstarted greenlet is started by the child's end.
TEST_F(GreenletSweep, ParentSetToADeadOrUnstartedGreenlet) {
  Greenlet dead([] {});
  dead.switch_to();
  Greenlet via_dead([] { return 1; });
  via_dead.set_parent(dead);
  EXPECT_EQ(fern::value_cast<int>(via_dead.switch_to()), 1);
  Greenlet unstarted([](Value v) { return fern::value_cast<int>(v) + 8; });
  Greenlet via_unstarted([] { return 1; });
  via_unstarted.set_parent(unstarted);
  EXPECT_EQ(fern::value_cast<int>(via_unstarted.switch_to()), 9);
  EXPECT_TRUE(unstarted.dead());
}

// Hostile: stack sizes of 0 (the default), 1 and an odd number of bytes
// are rounded up to a usable stack.
TEST_F(GreenletSweep, TinyAndOddStackSizesAreRoundedUp) {
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{4097}}) {
    std::size_t seen = 0;
    Greenlet g([&seen] {
      seen = Greenlet::current().stack_size();
      return 5;
    }, Greenlet(), size);
    EXPECT_EQ(fern::value_cast<int>(g.switch_to()), 5);
    EXPECT_GE(seen, std::max<std::size_t>(size, 4096)) << size;
  }
}

// ---- test_greenlet.py::TestBrokenGreenlets, the re-entrant switch scripts:
// a trace that switches (GL-24, GL-32). fern's trace runs in the greenlet
// switched to, after the switch, like greenlet's: it may switch. ----

// fail_switch_two_greenlets.py (test_reentrant_switch_two_greenlets)
TEST_F(GreenletSweep, TraceSwitchingAwayTwoGreenlets) {
  std::vector<std::string> out;
  Greenlet g1, g2;
  bool switch_to_g2 = false;
  Greenlet::Trace before = Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet&) {
    out.push_back("TRACE");
    if (std::exchange(switch_to_g2, false)) g2.switch_to();
    out.push_back("LEAVE TRACE");
  });
  g1 = Greenlet([&] {
    out.push_back("In g1_run");
    switch_to_g2 = true;
    to_parent();
    out.push_back("Falling off end of g1_run");
  });
  g2 = Greenlet([&] {
    g1.switch_to();
    out.push_back("Falling off end of g2");
  });
  g1.switch_to();
  out.push_back("Falling off end of main");
  g2.switch_to();
  Greenlet::set_trace(std::move(before));
  for (const char* line : {"In g1_run", "TRACE", "LEAVE TRACE", "Falling off end of main", "Falling off end of g1_run",
                           "Falling off end of g2"})
    EXPECT_NE(std::find(out.begin(), out.end(), line), out.end()) << line;
  EXPECT_TRUE(g1.dead());
  EXPECT_TRUE(g2.dead());
}

// fail_switch_three_greenlets2.py (test_reentrant_switch_three_greenlets2):
// greenlet's exact sequence.
TEST_F(GreenletSweep, TraceSwitchingAwayThreeGreenletsKeepsEveryValue) {
  std::vector<std::string> results;
  auto s = [](const Value& v) { return v.has_value() ? str(v) : std::string("()"); };
  Greenlet g1, g2;
  bool switch_to_g2 = true;
  Greenlet::Trace before = Greenlet::set_trace([&](TraceEvent e, const Greenlet&, const Greenlet&) {
    results.push_back(e == TraceEvent::kSwitch ? "trace switch" : "trace throw");
    if (std::exchange(switch_to_g2, false)) g2.switch_to(std::string("g2 from tracefunc"));
  });
  g1 = Greenlet([&](Value arg) {
    results.push_back("g1 arg " + s(arg));
    Value from_parent = Greenlet::current().parent().switch_to(std::string("from g1_run"));
    results.push_back("g1 from parent " + s(from_parent));
    return std::string("g1 done");
  });
  g2 = Greenlet([&](Value arg) {
    results.push_back("g2 arg " + s(arg));
    Value parent = Greenlet::current().parent().switch_to(std::string("from g2_run"));
    switch_to_g2 = false;
    results.push_back("g2 from parent " + s(parent));
    return std::string("g2 done");
  });
  results.push_back("main g1 " + s(g1.switch_to(std::string("g1 from main"))));
  results.push_back("main g2 " + s(g1.switch_to(std::string("g2 from main"))));
  results.push_back("main g1.2 " + s(g1.switch_to(std::string("g1 from main 2"))));
  results.push_back("main g2.2 " + s(g2.switch_to()));
  Greenlet::set_trace(std::move(before));
  EXPECT_EQ(results, (std::vector<std::string>{
                         "trace switch", "trace switch", "g2 arg g2 from tracefunc", "trace switch",
                         "main g1 from g2_run", "trace switch", "g1 arg g1 from main", "trace switch",
                         "main g2 from g1_run", "trace switch", "g1 from parent g1 from main 2", "trace switch",
                         "main g1.2 g1 done", "trace switch", "g2 from parent ()", "trace switch",
                         "main g2.2 g2 done"}));
}

// Hostile (GL-24): a trace that switches to the running greenlet itself,
// back to the switch's origin, throws into its target, drops the last
// handle of a suspended greenlet, or replaces itself: each has the outcome
// of the same call made outside a trace.
TEST_F(GreenletSweep, TraceThatSwitchesToItselfOrBackToTheOrigin) {
  int self_switches = 0;
  Greenlet g([] { to_parent(); });
  Greenlet::Trace before = Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet&) {
    if (self_switches < 3) self_switches += fern::value_cast<int>(Greenlet::current().switch_to(1));
  });
  g.switch_to();
  g.switch_to();
  EXPECT_EQ(self_switches, 3);
  EXPECT_TRUE(g.dead());

  std::vector<std::string> log;
  int calls = 0;
  Greenlet echo([] {
    for (;;) to_parent();
  });
  Greenlet::set_trace([&](TraceEvent, const Greenlet& origin, const Greenlet&) {
    if (calls++ == 0) {
      log.push_back("trace to origin");
      Greenlet(origin).switch_to();  // main, from inside echo's start
      log.push_back("trace resumed");
    }
  });
  echo.switch_to();
  log.push_back("main 1");
  echo.switch_to();
  log.push_back("main 2");
  Greenlet::set_trace(std::move(before));
  EXPECT_EQ(log, (std::vector<std::string>{"trace to origin", "main 1", "trace resumed", "main 2"}));
  echo.throw_in();
}

TEST_F(GreenletSweep, TraceThatThrowsInDropsOrReplacesItself) {
  std::vector<std::string> log;
  Greenlet g([&] {
    try {
      to_parent();
    } catch (const SomeError&) {
      log.push_back("g caught");
    }
    return 3;
  });
  g.switch_to();
  int calls = 0;
  Greenlet::Trace before = Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet& target) {
    if (calls++ == 0) EXPECT_EQ(fern::value_cast<int>(Greenlet(target).throw_in(SomeError())), 3);
  });
  // The trace runs in g as main's switch lands there, and throws into g
  // itself: g catches it and ends, and its result comes back to main.
  EXPECT_EQ(fern::value_cast<int>(g.switch_to()), 3);
  EXPECT_EQ(log, std::vector<std::string>{"g caught"});
  EXPECT_TRUE(g.dead());

  auto victim = std::make_unique<Greenlet>(parks_until_killed([&] { log.push_back("victim killed"); }));
  victim->switch_to();
  Greenlet h([] { to_parent(); });
  calls = 0;
  Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet&) {
    if (calls++ == 0) victim.reset();
  });
  h.switch_to();
  EXPECT_EQ(log.back(), "victim killed");

  int n = 0;
  Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet&) {
    ++n;
    Greenlet::set_trace([&](TraceEvent, const Greenlet&, const Greenlet&) { n += 100; });
  });
  h.switch_to();  // two switches: main -> h (the first trace), h -> main (the second)
  Greenlet::set_trace(std::move(before));
  EXPECT_EQ(n, 101);
  EXPECT_TRUE(h.dead());
}

// ---- run callables whose captures misbehave (fail_clearing_run_switches.py,
// test_reentrant_switch_run_callable_has_del) ----

// A capture whose destructor switches to main when the body ends: main gets
// its value, and switching back finishes the destructor and the greenlet.
struct SwitchesWhenDestroyed {
  Greenlet* to;
  std::vector<std::string>* log;
  SwitchesWhenDestroyed(Greenlet* t, std::vector<std::string>* l) : to(t), log(l) {}
  SwitchesWhenDestroyed(SwitchesWhenDestroyed&& o) noexcept : to(std::exchange(o.to, nullptr)), log(o.log) {}
  ~SwitchesWhenDestroyed() {
    if (!to) return;
    log->push_back("capture destroyed");
    to->switch_to(std::string("from capture"));
    log->push_back("capture resumed");
  }
};

TEST_F(GreenletSweep, RunCaptureWhoseDestructorSwitches) {
  Greenlet main = Greenlet::current();
  std::vector<std::string> log;
  Greenlet g([c = SwitchesWhenDestroyed(&main, &log), &log] { log.push_back("run enter"); });
  EXPECT_EQ(str(g.switch_to()), "from capture");
  EXPECT_TRUE(g.active());
  EXPECT_FALSE(g.switch_to().has_value());
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(log, (std::vector<std::string>{"run enter", "capture destroyed", "capture resumed"}));
  // Unstarted and dropped: the destructor runs in the dropper, its switch
  // goes to another greenlet and back.
  log.clear();
  Greenlet other([&] {
    for (;;) {
      log.push_back("other");
      to_parent();
    }
  });
  { Greenlet never([c = SwitchesWhenDestroyed(&other, &log)] {}); }
  EXPECT_EQ(log, (std::vector<std::string>{"capture destroyed", "other", "capture resumed"}));
  other.throw_in();
}

// A capture whose destructor throws (noexcept(false)): when the body ends its
// error is the body's (GL-6), raised in the parent; when nothing can take it
// (the body threw already, the greenlet is dropped unstarted or dies unrun
// by a throw_in, GL-11) it is reported and ignored, as an error raised while
// being killed is (GL-19). Never std::terminate.
struct ThrowsWhenDestroyed {
  bool armed = true;
  ThrowsWhenDestroyed() = default;
  ThrowsWhenDestroyed(ThrowsWhenDestroyed&& o) noexcept : armed(std::exchange(o.armed, false)) {}
  ~ThrowsWhenDestroyed() noexcept(false) {
    if (armed) throw std::length_error("from the capture's destructor");
  }
};

TEST_F(GreenletSweep, RunCaptureWhoseDestructorThrows) {
  Greenlet ends([c = ThrowsWhenDestroyed()] { return 1; });
  EXPECT_THROW(ends.switch_to(), std::length_error);
  EXPECT_TRUE(ends.dead());

  std::array<char, 64> big{};  // the run on the heap, not inside the greenlet
  Greenlet ends_big([c = ThrowsWhenDestroyed(), big] { return big[0]; });
  EXPECT_THROW(ends_big.switch_to(), std::length_error);

  ::testing::internal::CaptureStderr();
  Greenlet throws_too([c = ThrowsWhenDestroyed()] { throw SomeError(); });
  EXPECT_THROW(throws_too.switch_to(), SomeError);
  { Greenlet never([c = ThrowsWhenDestroyed()] {}); }
  Greenlet thrown_into([c = ThrowsWhenDestroyed()] {});
  EXPECT_THROW(thrown_into.throw_in(SomeError()), SomeError);
  EXPECT_TRUE(thrown_into.dead());
  std::string err = ::testing::internal::GetCapturedStderr();
  std::size_t reports = 0;
  for (std::size_t at = 0; (at = err.find("from the capture's destructor", at)) != std::string::npos; ++at) ++reports;
  EXPECT_EQ(reports, 3u) << err;
}

// ---- test_extension_interface.py (the C API as the C++ API) ----

// test_switch, test_new_greenlet, test_getcurrent
TEST_F(GreenletSweep, CApiSwitchNewGreenletAndGetcurrent) {
  EXPECT_EQ(fern::value_cast<int>(Greenlet([] { return 50; }).switch_to()), 50);
  EXPECT_EQ(fern::value_cast<int>(Greenlet([] { return -15; }).switch_to()), -15);
  Greenlet current = Greenlet::current();
  EXPECT_TRUE(current.is_main());
  EXPECT_TRUE(current.active());
  EXPECT_EQ(current, Greenlet::current());
}

// test_setparent (GL-14): a suspended grandchild reparented to main sends its
// next switch to its parent there, not to the greenlet that made it.
TEST_F(GreenletSweep, CApiSetParentOfASuspendedGreenlet) {
  bool bar_ended = false;
  Greenlet foo([&] {
    Greenlet child([&] {
      to_parent();
      to_parent();  // goes to main once reparented
      bar_ended = true;
    });
    child.switch_to();
    to_parent(child);
    ADD_FAILURE() << "foo resumed";
  });
  Greenlet child = fern::value_cast<Greenlet>(foo.switch_to());
  child.set_parent(Greenlet::current());
  EXPECT_FALSE(child.switch_to().has_value());  // its last to_parent lands here
  EXPECT_TRUE(child.active());
  EXPECT_FALSE(bar_ended);
  child.switch_to();
  EXPECT_TRUE(bar_ended);
  EXPECT_TRUE(child.dead());
  foo.throw_in();
}

// ---- test_contextvars.py ----

// test_break_ctxvars: two greenlets each inside Context::run of a copy
// switch out from inside it; leaving them in any order breaks nothing, and
// main's context is untouched. test_not_broken_if_using_attribute_instead_of_context_run:
// the same with set_context. (GL-23)
TEST_F(GreenletSweep, ContextRunLeftInAnyOrderAcrossGreenlets) {
  fern::ContextVar<int> var(0);
  var.set(1);
  auto body = [&var](int mine) {
    fern::Context::copy_current().run([&] {
      var.set(mine);
      to_parent();
      EXPECT_EQ(var.get(), mine);
    });
  };
  Greenlet let1([&] { body(10); }), let2([&] { body(20); });
  let1.switch_to();
  let2.switch_to();
  EXPECT_EQ(var.get(), 1);
  let1.switch_to();
  let2.switch_to();
  EXPECT_TRUE(let1.dead() && let2.dead());
  EXPECT_EQ(var.get(), 1);

  Greenlet set1([&] {
    var.set(10);
    to_parent();
    EXPECT_EQ(var.get(), 10);
  });
  Greenlet set2([&] {
    var.set(20);
    to_parent();
    EXPECT_EQ(var.get(), 20);
  });
  set1.set_context(fern::Context::copy_current());
  set2.set_context(fern::Context::copy_current());
  set1.switch_to();
  set2.switch_to();
  set1.switch_to();
  set2.switch_to();
  EXPECT_EQ(var.get(), 1);
  Greenlet::current().set_context(fern::Context());
}

// ---- test_leaks.py ----

// test_threaded_leak, test_threaded_adv_leak (GL-27): threads whose main
// greenlet and finished greenlets are held past their end leave nothing in
// the thread once the handles go; the mains, held here, read dead and go
// when dropped.
TEST_F(GreenletSweep, ThreadsMainAndFinishedGreenletsGo) {
  std::vector<Greenlet> mains;
  std::atomic<int> clean{0};
  for (int i = 0; i < 2; ++i) {
    std::thread([&] {
      std::vector<Greenlet> ll;
      for (int j = 0; j < 2; ++j) Greenlet([&] { ll.push_back(Greenlet::current()); }).switch_to();
      bool held = Greenlet::live_count() == 3;
      ll.clear();
      if (held && Greenlet::live_count() == 1) ++clean;
      mains.push_back(Greenlet::current());
    }).join();
  }
  EXPECT_EQ(clean.load(), 2);
  for (const Greenlet& m : mains) EXPECT_TRUE(m.dead());
  mains.clear();
}

// ---- test_interpreter_shutdown.py, as thread and process exit ----

// test_greenlet_cleanup_during_thread_exit, test_finally_block_during_thread_exit
// (GL-19): a thread that ends with a greenlet suspended in its frames (or
// in a thread_local made after the thread's first greenlet use) unwinds it.
TEST_F(GreenletSweep, ThreadExitUnwindsItsSuspendedGreenlets) {
  std::atomic<int> cleanups{0};
  auto suspended = [&cleanups] { return parks_until_killed([&cleanups] { ++cleanups; }); };
  std::thread([&] {
    Greenlet g = suspended();
    g.switch_to();
  }).join();
  EXPECT_EQ(cleanups.load(), 1);
  std::thread([&] {
    (void)Greenlet::current();
    thread_local Greenlet held;
    held = suspended();
    held.switch_to();
  }).join();
  EXPECT_EQ(cleanups.load(), 2);
}

// The limit of the above (README, Semantics): a thread_local handle made
// before the thread's first greenlet use is destroyed after the thread's
// greenlets were cleaned up; its greenlet cannot be unwound then and is
// reported (its stack abandoned), not run, and nothing crashes.
TEST_F(GreenletSweep, ThreadLocalHandleMadeBeforeFirstUseIsReportedAtThreadExit) {
  bool unwound = false;
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    LeaksOnPurpose on_purpose;
    thread_local Greenlet held;  // its destructor registered before the thread's cleanup
    held = parks_until_killed([&] { unwound = true; });
    held.switch_to();
  }).join();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(unwound);
  EXPECT_NE(err.find("after its thread's greenlets were cleaned up"), std::string::npos) << err;
}

// Group A and D: a process that exits (std::exit) with suspended greenlets
// held by statics, nested, with exception state, in other threads, does
// not crash; after the thread's greenlet cleanup (atexit handlers, static
// destructors), Greenlet::current() and new greenlets are a typed error.
// (Without leak detection in the child: the abandoned stacks hold memory.)
using GreenletSweepDeathTest = fern::testing::ExitDeathTest;

std::vector<Greenlet>& at_exit_greenlets() {
  static std::vector<Greenlet> held;
  return held;
}

void exit_with_suspended_greenlets() {
  for (int i = 0; i < 10; ++i) {
    at_exit_greenlets().emplace_back([] { to_parent(); });
    at_exit_greenlets().back().switch_to();
  }
  at_exit_greenlets().emplace_back([] {
    Greenlet inner([] { to_parent(); });
    inner.switch_to();
    try {
      throw SomeError();
    } catch (...) {
      to_parent();  // suspended with exception state
    }
  });
  at_exit_greenlets().back().switch_to();
  std::thread([] {
    static Greenlet theirs;
    theirs = Greenlet([] { to_parent(); });
    theirs.switch_to();
  }).join();
  std::atexit([] {
    try {
      (void)Greenlet::current();
      std::fputs("current() worked\n", stderr);
    } catch (const fern::GreenletError& e) {
      std::fprintf(stderr, "typed: %s\n", e.what());
    }
  });
  std::exit(0);
}

TEST_F(GreenletSweepDeathTest, ExitWithSuspendedGreenletsDoesNotCrash) {
  EXPECT_EXIT(exit_with_suspended_greenlets(), ::testing::ExitedWithCode(0), "typed: .*after their thread's cleanup");
}

}  // namespace
