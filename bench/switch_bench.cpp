// Switch latency of fern against Boost.Context, swapcontext and an empty
// indirect call, all in one binary so that every figure is also a ratio.
//
// Rows are BM_<Subject>_<impl>. One item is one switch (a ping-pong round
// trip is two), one call for indirect_call, or one greenlet for CreateRun, so
// items_per_second of any two rows of a subject divide into a ratio. With the
// console format, a summary of those ratios follows Google Benchmark's output.
#include <benchmark/benchmark.h>
#include <ucontext.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#if defined(__x86_64__)
#  include <xmmintrin.h>
#endif

#include "fern/arch/context.h"
#include "fern/arch/stack.h"
#include "fern/core/greenlet.h"
#include "ratio_report.h"

#if FERN_HAVE_BOOST
#  include <boost/context/detail/fcontext.hpp>
#  include <boost/context/fiber.hpp>
#  include <boost/context/fixedsize_stack.hpp>
#  include <boost/context/pooled_fixedsize_stack.hpp>
#endif

namespace {

using fern::arch::Context;

// A stack from fern's pool for the length of one benchmark run.
class ScopedStack {
 public:
  ScopedStack() : stack_(fern::arch::allocate_stack()) {}
  ~ScopedStack() { fern::arch::release_stack(stack_); }
  ScopedStack(const ScopedStack&) = delete;
  ScopedStack& operator=(const ScopedStack&) = delete;
  void* base() const { return stack_.base; }
  void* top() const { return static_cast<char*>(stack_.base) + stack_.size; }
  std::size_t size() const { return stack_.size; }

 private:
  fern::arch::Stack stack_;
};

// What each side of a ping-pong does to the FP state before it switches.
// Clean: nothing, and both sides start with the same status flags, so no
// switch ever sees differing MXCSR words.
struct Clean {
  static void main_side() {}
  static void other_side() {}
};

#if defined(__x86_64__)
constexpr unsigned kMxcsrStatus = 0x3F;  // bits 0-5: sticky exception flags
volatile double g_one = 1.0;
volatile double g_tiny = 1e-30;
volatile double g_sum = 0.0;

// Clears the status flags that earlier code (the benchmark library's own
// arithmetic) left, so that a fresh context starts with the current flags.
void settle_fp_status() { _mm_setcsr(_mm_getcsr() & ~kMxcsrStatus); }

// The main side's saved MXCSR has the inexact flag, the other side's has no
// flag, at every switch; the control bits are identical (the fresh context
// inherits them). An SSE add sets the flag without loading MXCSR; clearing
// it needs ldmxcsr, which both impls pay alike.
struct DirtyMxcsr {
  static void main_side() { g_sum = g_one + g_tiny; }
  static void other_side() { _mm_setcsr(_mm_getcsr() & ~kMxcsrStatus); }
};

// DirtyMxcsr that also records the MXCSR each side switches with, to check
// the scenario before timing it.
struct ProbedDirtyMxcsr {
  static inline unsigned main_csr = 0;
  static inline unsigned other_csr = 0;
  static void main_side() {
    DirtyMxcsr::main_side();
    main_csr = _mm_getcsr();
  }
  static void other_side() {
    DirtyMxcsr::other_side();
    other_csr = _mm_getcsr();
  }
};

// Runs a few round trips of ping_pong (an impl's probed dirty loop) and says
// whether the sides' status flags differed and their control bits matched.
template <class PingPong>
bool dirty_scenario_holds(PingPong ping_pong) {
  ping_pong(4);
  unsigned a = ProbedDirtyMxcsr::main_csr, b = ProbedDirtyMxcsr::other_csr;
  return (a & kMxcsrStatus) == 0x20 && (b & kMxcsrStatus) == 0 &&
         (a & ~kMxcsrStatus) == (b & ~kMxcsrStatus);
}
#else
void settle_fp_status() {}
#endif

#if defined(__x86_64__) && defined(__ELF__) && !defined(__CET__)
extern "C" void* bench_floor_switch(Context* save, Context to, void* arg);
extern "C" void* bench_boostfp_switch(Context* save, Context to, void* arg);
extern "C" void* bench_readback_switch(Context* save, Context to, void* arg);
#endif

// fern: the raw switch between the thread's stack and one fresh context.
struct FernPair {
  Context main = nullptr;
  Context other = nullptr;
};

// The other side answers every switch with a switch back. It is abandoned
// suspended when the run ends: nothing on its stack needs destroying.
template <class Fp>
void fern_echo(void* arg, void* data) {
  auto* pair = static_cast<FernPair*>(data);
  for (;;) {
    Fp::other_side();
    arg = fern_arch_switch(&pair->other, pair->main, arg);
  }
}

template <class Fp>
struct FernPingPong {
  ScopedStack stack;
  FernPair pair;
  FernPingPong() {
    settle_fp_status();
    pair.other = fern::arch::make_context(stack.base(), stack.size(), &fern_echo<Fp>, &pair);
  }
  void round_trip() {
    Fp::main_side();
    fern_arch_switch(&pair.main, pair.other, nullptr);
  }
  void operator()(int rounds) {
    for (int i = 0; i < rounds; ++i) round_trip();
  }
};

template <class Fp>
void run_fern_switch(benchmark::State& state) {
  FernPingPong<Fp> pp;
  for (auto _ : state) pp.round_trip();
  state.SetItemsProcessed(2 * state.iterations());
}

void BM_Switch_fern(benchmark::State& state) { run_fern_switch<Clean>(state); }
BENCHMARK(BM_Switch_fern);

// Both contexts FP-neutral (Greenlet::set_fp_neutral at the raw level): the
// switch saves and loads no FP control, the "clean path" of fern's switch.
void neutral_echo(void* arg, void* data) {
  auto* pair = static_cast<FernPair*>(data);
  for (;;) arg = fern_arch_switch_fp_neutral(&pair->other, pair->main, arg);
}
void BM_Switch_fern_fpneutral(benchmark::State& state) {
  ScopedStack stack;
  FernPair pair;
  pair.other = fern::arch::make_context(stack.base(), stack.size(), &neutral_echo, &pair);
  fern::arch::set_fp_neutral(pair.other, true);
  for (auto _ : state) fern_arch_switch_fp_neutral(&pair.main, pair.other, nullptr);
  state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(BM_Switch_fern_fpneutral);

#if defined(__x86_64__) && defined(__ELF__) && !defined(__CET__)
// The floor (bench/floor_switch_x86_64.S): push, store sp, load sp, pop,
// jmp, nothing else; on fern's own frame layout and fresh contexts.
// floor_boostfp adds Boost fcontext's FP work (store both control words,
// load the target's unconditionally), which fern's switch does too.
// floor_readback is the floor with the compare-and-skip fern used before
// (both words stored, read back, compared with the target's, nothing
// loaded when equal): what reading MXCSR back costs.
using RawSwitch = void* (*)(Context*, Context, void*);
template <RawSwitch Switch>
void raw_echo(void* arg, void* data) {
  auto* pair = static_cast<FernPair*>(data);
  for (;;) arg = Switch(&pair->other, pair->main, arg);
}
template <RawSwitch Switch>
void run_raw_switch(benchmark::State& state) {
  ScopedStack stack;
  FernPair pair;
  pair.other = fern::arch::make_context(stack.base(), stack.size(), &raw_echo<Switch>, &pair);
  for (auto _ : state) Switch(&pair.main, pair.other, nullptr);
  state.SetItemsProcessed(2 * state.iterations());
}
void BM_Switch_floor(benchmark::State& state) { run_raw_switch<bench_floor_switch>(state); }
BENCHMARK(BM_Switch_floor);
void BM_Switch_floor_boostfp(benchmark::State& state) { run_raw_switch<bench_boostfp_switch>(state); }
BENCHMARK(BM_Switch_floor_boostfp);
void BM_Switch_floor_readback(benchmark::State& state) { run_raw_switch<bench_readback_switch>(state); }
BENCHMARK(BM_Switch_floor_readback);
#endif

#if FERN_HAVE_BOOST
namespace bctx = boost::context;

template <class Fp>
void boost_echo(bctx::detail::transfer_t t) {
  for (;;) {
    Fp::other_side();
    t = bctx::detail::jump_fcontext(t.fctx, t.data);
  }
}

template <class Fp>
struct BoostPingPong {
  ScopedStack stack;
  bctx::detail::fcontext_t other;
  BoostPingPong() {
    settle_fp_status();
    other = bctx::detail::make_fcontext(stack.top(), stack.size(), &boost_echo<Fp>);
  }
  void round_trip() {
    Fp::main_side();
    other = bctx::detail::jump_fcontext(other, nullptr).fctx;
  }
  void operator()(int rounds) {
    for (int i = 0; i < rounds; ++i) round_trip();
  }
};

template <class Fp>
void run_boost_switch(benchmark::State& state) {
  BoostPingPong<Fp> pp;
  for (auto _ : state) pp.round_trip();
  state.SetItemsProcessed(2 * state.iterations());
}

void BM_Switch_boost_fcontext(benchmark::State& state) { run_boost_switch<Clean>(state); }
BENCHMARK(BM_Switch_boost_fcontext);
#endif

// makecontext passes only ints: the pair travels through a global.
struct UcPair {
  ucontext_t main;
  ucontext_t other;
};
UcPair* g_uc_pair = nullptr;

void uc_echo() {
  for (;;) swapcontext(&g_uc_pair->other, &g_uc_pair->main);
}

void BM_Switch_swapcontext(benchmark::State& state) {
  ScopedStack stack;
  UcPair pair{};
  getcontext(&pair.other);
  pair.other.uc_stack.ss_sp = stack.base();
  pair.other.uc_stack.ss_size = stack.size();
  pair.other.uc_link = nullptr;
  makecontext(&pair.other, &uc_echo, 0);
  g_uc_pair = &pair;
  for (auto _ : state) swapcontext(&pair.main, &pair.other);
  state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(BM_Switch_swapcontext);

[[gnu::noinline]] void empty_call() {}
void (*volatile g_empty_call)() = &empty_call;

void BM_Switch_indirect_call(benchmark::State& state) {
  for (auto _ : state) g_empty_call();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Switch_indirect_call);

#if defined(__x86_64__)
void BM_SwitchDirtyMxcsr_fern(benchmark::State& state) {
  if (!dirty_scenario_holds(FernPingPong<ProbedDirtyMxcsr>())) {
    state.SkipWithError("MXCSR status flags do not differ between the sides");
    return;
  }
  run_fern_switch<DirtyMxcsr>(state);
}
BENCHMARK(BM_SwitchDirtyMxcsr_fern);

#  if FERN_HAVE_BOOST
void BM_SwitchDirtyMxcsr_boost_fcontext(benchmark::State& state) {
  if (!dirty_scenario_holds(BoostPingPong<ProbedDirtyMxcsr>())) {
    state.SkipWithError("MXCSR status flags do not differ between the sides");
    return;
  }
  run_boost_switch<DirtyMxcsr>(state);
}
BENCHMARK(BM_SwitchDirtyMxcsr_boost_fcontext);
#  endif
#endif

// Greenlets: an int each way through switch_to (a fern::Value).
void BM_SwitchValue_fern(benchmark::State& state) {
  settle_fp_status();
  fern::Greenlet main = fern::Greenlet::current();
  fern::Greenlet echo([&main](fern::Value v) {
    for (;;) v = main.switch_to(fern::value_cast<int>(v) + 1);
  });
  int x = 0;
  for (auto _ : state) x = fern::value_cast<int>(echo.switch_to(x));
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(2 * state.iterations());
}  // dropping `echo` kills it: GreenletExit unwinds its loop
BENCHMARK(BM_SwitchValue_fern);

// The greenlet switch alone: no value either way (switch_count's greenlet_empty).
void BM_SwitchValue_fern_empty(benchmark::State& state) {
  settle_fp_status();
  fern::Greenlet main = fern::Greenlet::current();
  fern::Greenlet echo([&main](fern::Value) {
    for (;;) main.switch_to();
  });
  for (auto _ : state) echo.switch_to();
  state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(BM_SwitchValue_fern_empty);

// The same with both greenlets FP-neutral.
void BM_SwitchValue_fern_fpneutral(benchmark::State& state) {
  settle_fp_status();
  fern::Greenlet main = fern::Greenlet::current();
  fern::Greenlet echo([&main](fern::Value v) {
    for (;;) v = main.switch_to(fern::value_cast<int>(v) + 1);
  });
  echo.set_fp_neutral(true);
  main.set_fp_neutral(true);
  int x = 0;
  for (auto _ : state) x = fern::value_cast<int>(echo.switch_to(x));
  benchmark::DoNotOptimize(x);
  main.set_fp_neutral(false);
  state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(BM_SwitchValue_fern_fpneutral);

#if FERN_HAVE_BOOST
void BM_SwitchValue_boost_fiber(benchmark::State& state) {
  settle_fp_status();
  int value = 0;
  bctx::fiber echo{std::allocator_arg, bctx::fixedsize_stack(fern::arch::default_stack_size()),
                   [&value](bctx::fiber&& main) {
                     for (;;) {
                       value += 1;
                       main = std::move(main).resume();
                     }
                     return std::move(main);
                   }};
  int x = 0;
  for (auto _ : state) {
    value = x;
    echo = std::move(echo).resume();
    x = value;
  }
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(2 * state.iterations());
}  // dropping `echo` unwinds it with forced_unwind
BENCHMARK(BM_SwitchValue_boost_fiber);
#endif

// Create, run to completion, destroy; stacks from a warm per-thread pool.
void BM_CreateRun_fern(benchmark::State& state) {
  settle_fp_status();
  auto create_run = [] {
    fern::Greenlet g([] {});
    g.switch_to();
  };
  for (int i = 0; i < 16; ++i) create_run();
  for (auto _ : state) create_run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateRun_fern);

#if FERN_HAVE_BOOST
void BM_CreateRun_boost_fiber(benchmark::State& state) {
  settle_fp_status();
  bctx::pooled_fixedsize_stack pool(fern::arch::default_stack_size());
  auto create_run = [&pool] {
    bctx::fiber f{std::allocator_arg, pool, [](bctx::fiber&& main) { return std::move(main); }};
    f = std::move(f).resume();
  };
  for (int i = 0; i < 16; ++i) create_run();
  for (auto _ : state) create_run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CreateRun_boost_fiber);
#endif

// Switch rows divide by the clean Boost fcontext switch; the others by
// boost::context::fiber.
fern::bench::Reference reference(const std::string& subject) {
  if (subject == "Switch" || subject == "SwitchDirtyMxcsr") return {"Switch", "boost_fcontext"};
  return {subject, "boost_fiber"};
}

}  // namespace

int main(int argc, char** argv) { return fern::bench::run_with_ratios(argc, argv, &reference); }
