// The raw switch: values both ways, fresh-context entry, alignment, and the
// registers and FP control state the ABI says a call preserves.
#include <gtest/gtest.h>

#include <array>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "fern/arch/context.h"
#include "fern/arch/stack.h"
#include "fern/config.h"

namespace {

using fern::arch::Context;

struct Pair {
  Context main = nullptr;
  Context side = nullptr;
  fern::arch::Stack stack = fern::arch::allocate_stack();
  ~Pair() { fern::arch::release_stack(stack); }
  void start(fern::arch::EntryFn entry) {
    side = fern::arch::make_context(stack.base, stack.size, entry, this);
  }
};

TEST(ArchSwitch, FreshContextGetsArgAndDataAndValuesTravelBothWays) {
  static Pair* seen_data;
  static void* seen_arg;
  Pair p;
  p.start([](void* arg, void* data) {
    seen_arg = arg;
    seen_data = static_cast<Pair*>(data);
    auto* pair = seen_data;
    void* got = fern_arch_switch(&pair->side, pair->main, reinterpret_cast<void*>(100));
    fern_arch_switch(&pair->side, pair->main, static_cast<char*>(got) + 1);
    std::abort();  // never resumed again
  });
  void* r1 = fern_arch_switch(&p.main, p.side, reinterpret_cast<void*>(7));
  EXPECT_EQ(seen_arg, reinterpret_cast<void*>(7));
  EXPECT_EQ(seen_data, &p);
  EXPECT_EQ(r1, reinterpret_cast<void*>(100));
  void* r2 = fern_arch_switch(&p.main, p.side, reinterpret_cast<void*>(41));
  EXPECT_EQ(r2, reinterpret_cast<void*>(42));
}

TEST(ArchSwitch, EntryFrameIsSixteenByteAlignedAndVarargsOfDoublesWork) {
  static std::uintptr_t frame;
  static char printed[64];
  static double scanned;
  Pair p;
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
    // printf/sscanf of doubles use aligned SSE stores on x86-64: misalignment crashes.
    std::snprintf(printed, sizeof printed, "%.3f %d %.1e", 3.14159, 42, 2.5e-7);
    std::sscanf("6.25", "%lf", &scanned);
    fern_arch_switch(&pair->side, pair->main, nullptr);
    std::abort();
  });
  fern_arch_switch(&p.main, p.side, nullptr);
  EXPECT_EQ(frame % 16, 0u);
  EXPECT_STREQ(printed, "3.142 42 2.5e-07");
  EXPECT_EQ(scanned, 6.25);
}

// Doubles live across a switch: on AArch64 the compiler keeps them in
// d8-d15 (callee-saved), which the other side clobbers with its own.
double clobber_fp(double seed) {
  volatile double v[16];
  for (int i = 0; i < 16; ++i) v[i] = seed * (i + 1);
  double s = 0;
  for (int i = 0; i < 16; ++i) s += std::sqrt(v[i]);
  return s;
}

TEST(ArchSwitch, CalleeSavedFloatingPointRegistersSurvive) {
  static volatile double sink;
  Pair p;
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    for (;;) {
      double a = clobber_fp(3.0), b = a * 1.5, c = b - 2.0, d = c * c, e = d / 7.0, f = e + a;
      double g = f * 0.25, h = g + b, i = h * h, j = i - c, k = j / 3.0, l = k + d;
      sink = a + b + c + d + e + f + g + h + i + j + k + l;
      fern_arch_switch(&pair->side, pair->main, nullptr);
    }
  });
  double x = clobber_fp(1.0), y = x * 2.0, z = y + 0.5, w = z * z, u = w / 3.0, v = u + x;
  double q = v * 0.5, r = q + y, s = r * r, t = s - z, o = t / 5.0, m = o + w;
  const double before[] = {x, y, z, w, u, v, q, r, s, t, o, m};
  for (int round = 0; round < 3; ++round) {
    fern_arch_switch(&p.main, p.side, nullptr);
    const double after[] = {x, y, z, w, u, v, q, r, s, t, o, m};
    for (int i = 0; i < 12; ++i) EXPECT_EQ(before[i], after[i]) << "value " << i;
  }
}

#if FERN_FP_CONTROL_PER_GREENLET
TEST(ArchSwitch, FloatingPointControlStateIsPerContext) {
  static int side_saw_at_entry;
  static int side_saw_after;
  Pair p;
  std::fesetround(FE_DOWNWARD);
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    side_saw_at_entry = std::fegetround();  // inherited from the creator
    std::fesetround(FE_UPWARD);
    fern_arch_switch(&pair->side, pair->main, nullptr);
    side_saw_after = std::fegetround();
    fern_arch_switch(&pair->side, pair->main, nullptr);
    std::abort();
  });
  std::fesetround(FE_TOWARDZERO);
  fern_arch_switch(&p.main, p.side, nullptr);
  int main_after_first = std::fegetround();
  std::fesetround(FE_TONEAREST);
  fern_arch_switch(&p.main, p.side, nullptr);
  int main_after_second = std::fegetround();
  std::fesetround(FE_TONEAREST);
  EXPECT_EQ(side_saw_at_entry, FE_DOWNWARD);
  EXPECT_EQ(main_after_first, FE_TOWARDZERO);
  EXPECT_EQ(side_saw_after, FE_UPWARD);
  EXPECT_EQ(main_after_second, FE_TONEAREST);
}

#if defined(__x86_64__)
// Operands in memory, so that the divisions happen at run time; globals, so
// that a suspended context's frame holds no addressable local (ASan).
volatile double g_one = 1.0, g_three = 3.0, g_zero = 0.0, g_quotient;

// The whole MXCSR is per context, status flags included, as each thread's is
// (and as Python's greenlet and Boost.Context keep it): an exception flag
// raised on one side is not seen on the other, and clearing the flags on one
// side does not clear the other's.
TEST(ArchSwitch, EachContextKeepsItsOwnStatusFlags) {
  static bool side_saw_divbyzero, side_kept_inexact;
  Pair p;
  std::feclearexcept(FE_ALL_EXCEPT);
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    g_quotient = g_one / g_three;  // raises FE_INEXACT
    fern_arch_switch(&pair->side, pair->main, nullptr);
    side_saw_divbyzero = std::fetestexcept(FE_DIVBYZERO) != 0;
    side_kept_inexact = std::fetestexcept(FE_INEXACT) != 0;
    fern_arch_switch(&pair->side, pair->main, nullptr);
    std::abort();
  });
  fern_arch_switch(&p.main, p.side, nullptr);
  bool main_saw_inexact = std::fetestexcept(FE_INEXACT) != 0;
  g_quotient = g_one / g_zero;  // FE_DIVBYZERO, an MXCSR flag (feraiseexcept may use the x87 unit's)
  fern_arch_switch(&p.main, p.side, nullptr);
  bool main_kept_divbyzero = std::fetestexcept(FE_DIVBYZERO) != 0;
  bool main_saw_inexact_later = std::fetestexcept(FE_INEXACT) != 0;
  std::feclearexcept(FE_ALL_EXCEPT);
  EXPECT_FALSE(main_saw_inexact);
  EXPECT_FALSE(side_saw_divbyzero);
  EXPECT_TRUE(side_kept_inexact);
  EXPECT_TRUE(main_kept_divbyzero);
  EXPECT_FALSE(main_saw_inexact_later);
}
#endif

// An FP-neutral context saves no FP control when it switches out and gets
// none loaded when it is switched to: it runs with whatever the thread has.
TEST(ArchSwitch, FpNeutralContextRunsWithTheThreadsFpControl) {
  static int side_saw_first;
  static int side_saw_second;
  Pair p;
  std::fesetround(FE_DOWNWARD);  // the creator's, which an owning context would start with
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    side_saw_first = std::fegetround();
    fern_arch_switch_fp_neutral(&pair->side, pair->main, nullptr);
    side_saw_second = std::fegetround();
    fern_arch_switch_fp_neutral(&pair->side, pair->main, nullptr);
    std::abort();
  });
  fern::arch::set_fp_neutral(p.side, true);
  std::fesetround(FE_UPWARD);
  fern_arch_switch(&p.main, p.side, nullptr);
  int main_after_first = std::fegetround();
  std::fesetround(FE_TOWARDZERO);
  fern_arch_switch(&p.main, p.side, nullptr);
  std::fesetround(FE_TONEAREST);
  EXPECT_EQ(side_saw_first, FE_UPWARD);  // not the creator's FE_DOWNWARD
  EXPECT_EQ(main_after_first, FE_UPWARD);
  EXPECT_EQ(side_saw_second, FE_TOWARDZERO);
}

// From an FP-neutral context to one that owns FP control: the owner's is
// loaded (on x86-64 the whole MXCSR, status flags included; AArch64's FPSR
// is thread state), and between two FP-neutral contexts nothing is saved or
// loaded at all.
TEST(ArchSwitch, FpNeutralToOwnerLoadsTheOwnersAndNeutralToNeutralLoadsNothing) {
  static Context owner, neutral_a, neutral_b, main_ctx;
  static int owner_saw, b_saw, main_saw;
  static bool b_saw_inexact;
  auto stacks = std::array<fern::arch::Stack, 3>{fern::arch::allocate_stack(), fern::arch::allocate_stack(),
                                                  fern::arch::allocate_stack()};
  std::fesetround(FE_UPWARD);
  owner = fern::arch::make_context(stacks[0].base, stacks[0].size, [](void*, void*) {
    owner_saw = std::fegetround();
    fern_arch_switch(&owner, main_ctx, nullptr);
    std::abort();
  }, nullptr);
  std::fesetround(FE_TONEAREST);
  neutral_a = fern::arch::make_context(stacks[1].base, stacks[1].size, [](void*, void*) {
    // Breaks its contract on purpose, to show that the next switch between
    // neutral contexts carries the change as it is.
    std::fesetround(FE_DOWNWARD);
    volatile double third = 1.0;
    third = third / 3.0;  // FE_INEXACT
    fern_arch_switch_fp_neutral(&neutral_a, neutral_b, nullptr);
    std::abort();
  }, nullptr);
  neutral_b = fern::arch::make_context(stacks[2].base, stacks[2].size, [](void*, void*) {
    b_saw = std::fegetround();
    b_saw_inexact = std::fetestexcept(FE_INEXACT) != 0;
    fern_arch_switch_fp_neutral(&neutral_b, owner, nullptr);
    std::abort();
  }, nullptr);
  fern::arch::set_fp_neutral(neutral_a, true);
  fern::arch::set_fp_neutral(neutral_b, true);
  std::feclearexcept(FE_ALL_EXCEPT);
  fern_arch_switch(&main_ctx, neutral_a, nullptr);
  main_saw = std::fegetround();
  bool main_saw_inexact = std::fetestexcept(FE_INEXACT) != 0;
  std::fesetround(FE_TONEAREST);
  std::feclearexcept(FE_ALL_EXCEPT);
  for (auto& s : stacks) fern::arch::release_stack(s);
  EXPECT_EQ(b_saw, FE_DOWNWARD);   // neutral to neutral: a's change, as it was
  EXPECT_TRUE(b_saw_inexact);
  EXPECT_EQ(owner_saw, FE_UPWARD); // neutral to owner: the owner's loaded
  EXPECT_EQ(main_saw, FE_TONEAREST);
#if defined(__x86_64__)
  EXPECT_FALSE(main_saw_inexact);  // main's own flags, clear when it switched out
#else
  EXPECT_TRUE(main_saw_inexact);   // FPSR stayed with the CPU throughout
#endif
}

// make_context(..., fp_from_first_switch): no FP read when the frame is
// made; the context starts with the FP control of the switch that enters it
// first, and owns its own from its first switch out.
TEST(ArchSwitch, AContextMadeForItsFirstSwitchStartsWithThatSwitchsFpControl) {
  static Context main_ctx, side;
  static int side_saw_first, side_saw_later;
  fern::arch::Stack stack = fern::arch::allocate_stack();
  std::fesetround(FE_DOWNWARD);  // the maker's: not what it starts with
  side = fern::arch::make_context(stack.base, stack.size, [](void*, void*) {
    side_saw_first = std::fegetround();
    std::fesetround(FE_TOWARDZERO);
    fern_arch_switch(&side, main_ctx, nullptr);
    side_saw_later = std::fegetround();
    fern_arch_switch(&side, main_ctx, nullptr);
    std::abort();
  }, nullptr, true);
  std::fesetround(FE_UPWARD);
  fern_arch_switch(&main_ctx, side, nullptr);
  int main_after = std::fegetround();
  std::fesetround(FE_TONEAREST);
  fern_arch_switch(&main_ctx, side, nullptr);
  std::fesetround(FE_TONEAREST);
  fern::arch::release_stack(stack);
  EXPECT_EQ(side_saw_first, FE_UPWARD);
  EXPECT_EQ(main_after, FE_UPWARD);          // main's own, kept
  EXPECT_EQ(side_saw_later, FE_TOWARDZERO);  // its own from its first switch out
}

// set_fp_neutral(false) on a suspended context: it owns FP control again,
// starting from the caller's at that moment.
TEST(ArchSwitch, AContextThatOwnsFpControlAgainStartsFromTheCallers) {
  static int side_saw;
  Pair p;
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    side_saw = std::fegetround();
    fern_arch_switch(&pair->side, pair->main, nullptr);
    std::abort();
  });
  fern::arch::set_fp_neutral(p.side, true);
  std::fesetround(FE_UPWARD);
  fern::arch::set_fp_neutral(p.side, false);
  std::fesetround(FE_DOWNWARD);
  fern_arch_switch(&p.main, p.side, nullptr);
  int main_after = std::fegetround();
  std::fesetround(FE_TONEAREST);
  EXPECT_EQ(side_saw, FE_UPWARD);
  EXPECT_EQ(main_after, FE_DOWNWARD);
}

#else
// FERN_FP_CONTROL=OFF (the default on AArch64, where AAPCS64 gives FPCR's
// modes thread scope): FP control is the thread's, and a switch leaves it
// as it is, in both directions.
TEST(ArchSwitch, FloatingPointControlStateIsTheThreads) {
  static int side_saw_at_entry;
  Pair p;
  std::fesetround(FE_DOWNWARD);
  p.start([](void*, void* data) {
    auto* pair = static_cast<Pair*>(data);
    side_saw_at_entry = std::fegetround();
    std::fesetround(FE_UPWARD);
    fern_arch_switch(&pair->side, pair->main, nullptr);
    std::abort();
  });
  fern_arch_switch(&p.main, p.side, nullptr);
  int main_after = std::fegetround();
  std::fesetround(FE_TONEAREST);
  EXPECT_EQ(side_saw_at_entry, FE_DOWNWARD);
  EXPECT_EQ(main_after, FE_UPWARD);  // the side's change stayed with the thread
}
#endif

}  // namespace
