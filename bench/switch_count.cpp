// A deterministic switch loop for instruction counting (callgrind_switch.sh):
// N switches as N/2 ping-pong round trips between the thread's stack and one
// other context.
//
//   switch_count N [fern | fern_fpneutral | floor | boost_fcontext | greenlet | greenlet_fpneutral | greenlet_empty | create_run]
//
// fern: the raw fern_arch_switch; boost_fcontext: jump_fcontext (when built
// with Boost); floor: bench/floor_switch_x86_64.S, the fewest instructions a
// switch can run (x86-64); greenlet: fern::Greenlet::switch_to with an int each way;
// *_fpneutral: the same between FP-neutral contexts (greenlets), which save
// and load no FP control;
// create_run: N/2 greenlets created, run to completion (two switches each)
// and destroyed, so twice the per-switch figure is the cost of one.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fern/arch/context.h"
#include "fern/arch/stack.h"
#include "fern/core/greenlet.h"

#if FERN_HAVE_BOOST
#  include <boost/context/detail/fcontext.hpp>
#endif

namespace {

using fern::arch::Context;

struct FernPair {
  Context main = nullptr;
  Context other = nullptr;
};

void fern_echo(void* arg, void* data) {
  auto* pair = static_cast<FernPair*>(data);
  for (;;) arg = fern_arch_switch(&pair->other, pair->main, arg);
}

void neutral_echo(void* arg, void* data) {
  auto* pair = static_cast<FernPair*>(data);
  for (;;) arg = fern_arch_switch_fp_neutral(&pair->other, pair->main, arg);
}

// Both sides FP-neutral: the switch saves and loads no FP control.
void run_fern_fpneutral(long round_trips) {
  fern::arch::Stack stack = fern::arch::allocate_stack();
  FernPair pair;
  pair.other = fern::arch::make_context(stack.base, stack.size, &neutral_echo, &pair);
  fern::arch::set_fp_neutral(pair.other, true);
  for (long i = 0; i < round_trips; ++i) fern_arch_switch_fp_neutral(&pair.main, pair.other, nullptr);
  fern::arch::release_stack(stack);
}

void run_fern(long round_trips) {
  fern::arch::Stack stack = fern::arch::allocate_stack();
  FernPair pair;
  pair.other = fern::arch::make_context(stack.base, stack.size, &fern_echo, &pair);
  for (long i = 0; i < round_trips; ++i) fern_arch_switch(&pair.main, pair.other, nullptr);
  fern::arch::release_stack(stack);  // the other side is abandoned suspended
}

#if FERN_HAVE_BOOST
namespace bctx = boost::context::detail;

void boost_echo(bctx::transfer_t t) {
  for (;;) t = bctx::jump_fcontext(t.fctx, t.data);
}

void run_boost(long round_trips) {
  fern::arch::Stack stack = fern::arch::allocate_stack();
  bctx::fcontext_t other =
      bctx::make_fcontext(static_cast<char*>(stack.base) + stack.size, stack.size, &boost_echo);
  for (long i = 0; i < round_trips; ++i) other = bctx::jump_fcontext(other, nullptr).fctx;
  fern::arch::release_stack(stack);
}
#endif

#if defined(__x86_64__) && defined(__ELF__) && !defined(__CET__)
extern "C" void* bench_floor_switch(Context* save, Context to, void* arg);
void floor_echo(void* arg, void* data) {
  auto* pair = static_cast<FernPair*>(data);
  for (;;) arg = bench_floor_switch(&pair->other, pair->main, arg);
}
void run_floor(long round_trips) {
  fern::arch::Stack stack = fern::arch::allocate_stack();
  FernPair pair;
  pair.other = fern::arch::make_context(stack.base, stack.size, &floor_echo, &pair);
  for (long i = 0; i < round_trips; ++i) bench_floor_switch(&pair.main, pair.other, nullptr);
  fern::arch::release_stack(stack);
}
#  define FERN_BENCH_FLOOR 1
#endif

void run_greenlet(long round_trips, bool fp_neutral = false) {
  fern::Greenlet main = fern::Greenlet::current();
  fern::Greenlet echo([&main](fern::Value v) {
    for (;;) v = main.switch_to(fern::value_cast<int>(v) + 1);
  });
  echo.set_fp_neutral(fp_neutral);
  main.set_fp_neutral(fp_neutral);
  int x = 0;
  for (long i = 0; i < round_trips; ++i) x = fern::value_cast<int>(echo.switch_to(x));
  if (x != static_cast<int>(round_trips)) std::abort();
  main.set_fp_neutral(false);
}  // dropping `echo` kills it

// The switch alone: nothing carried, the result dropped.
void run_greenlet_empty(long round_trips) {
  fern::Greenlet main = fern::Greenlet::current();
  fern::Greenlet echo([&main] {
    for (;;) main.switch_to();
  });
  for (long i = 0; i < round_trips; ++i) echo.switch_to();
}

void run_create_run(long greenlets) {
  long ran = 0;
  for (long i = 0; i < greenlets; ++i) {
    fern::Greenlet g([&ran] { ++ran; });
    g.switch_to();
  }
  if (ran != greenlets) std::abort();
}

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  long n = argc > 1 ? std::strtol(argv[1], &end, 10) : -1;
  std::string impl = argc > 2 ? argv[2] : "fern";
  if (argc < 2 || argc > 3 || *end != '\0' || n < 0 || n % 2 != 0) {
    std::fprintf(stderr, "usage: %s N [fern | fern_fpneutral | floor | boost_fcontext | greenlet | greenlet_fpneutral | greenlet_empty | create_run]  (N switches, even)\n",
                 argv[0]);
    return 2;
  }
  if (impl == "fern") {
    run_fern(n / 2);
  } else if (impl == "greenlet") {
    run_greenlet(n / 2);
  } else if (impl == "greenlet_empty") {
    run_greenlet_empty(n / 2);
  } else if (impl == "fern_fpneutral") {
    run_fern_fpneutral(n / 2);
  } else if (impl == "greenlet_fpneutral") {
    run_greenlet(n / 2, true);
#if FERN_BENCH_FLOOR
  } else if (impl == "floor") {
    run_floor(n / 2);
#endif
  } else if (impl == "create_run") {
    run_create_run(n / 2);
#if FERN_HAVE_BOOST
  } else if (impl == "boost_fcontext") {
    run_boost(n / 2);
#endif
  } else {
    std::fprintf(stderr, "switch_count: unknown or unavailable impl '%s'\n", impl.c_str());
    return 2;
  }
  std::printf("%ld switches (%s)\n", n, impl.c_str());
  return 0;
}
