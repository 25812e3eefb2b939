// Stacks: usable, guarded, pooled, carved without splitting mappings, and a
// clear error when the kernel refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "fern/arch/stack.h"

namespace {

using fern::arch::Stack;

std::size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

TEST(Stack, IsWritableFromBottomToTop) {
  Stack s = fern::arch::allocate_stack(32 * 1024);
  ASSERT_TRUE(s);
  EXPECT_EQ(s.size, 32u * 1024);
  auto* bytes = static_cast<unsigned char*>(s.base);
  bytes[0] = 1;
  bytes[s.size - 1] = 2;
  EXPECT_EQ(bytes[0] + bytes[s.size - 1], 3);
  fern::arch::release_stack(s);
}

TEST(Stack, SizeIsRoundedUpToPagesAndDefaultApplies) {
  Stack odd = fern::arch::allocate_stack(5000);
  EXPECT_EQ(odd.size % 4096, 0u);
  EXPECT_GE(odd.size, 5000u);
  Stack def = fern::arch::allocate_stack();
  EXPECT_EQ(def.size, fern::arch::default_stack_size());
  fern::arch::release_stack(odd);
  fern::arch::release_stack(def);
}

TEST(Stack, ZeroDefaultSizeIsATypedError) {
  EXPECT_THROW(fern::arch::set_default_stack_size(0), std::invalid_argument);
}

TEST(Stack, ReleasedStackIsReusedFromThePool) {
  auto before = fern::arch::stack_stats();
  Stack a = fern::arch::allocate_stack(48 * 1024);
  EXPECT_EQ(fern::arch::stack_stats().live, before.live + 1);
  void* base = a.base;
  fern::arch::release_stack(a);
  EXPECT_EQ(fern::arch::stack_stats().live, before.live);
  Stack b = fern::arch::allocate_stack(48 * 1024);
  EXPECT_EQ(b.base, base);
  fern::arch::release_stack(b);
}

// A stack's color (the bytes its first frame stays below the top) is a
// whole number of cache lines under 1 KiB, and stacks carved next to each
// other get different ones: over 16 neighbours, every line offset once, so
// that their top frames do not all share the same cache sets.
TEST(Stack, NeighbouringStacksTakeEveryCacheLineOffsetAsTheirColor) {
  std::vector<Stack> stacks;
  for (int i = 0; i < 64; ++i) stacks.push_back(fern::arch::allocate_stack());
  std::sort(stacks.begin(), stacks.end(), [](Stack a, Stack b) { return a.base < b.base; });
  std::size_t slot = stacks[0].size + fern::arch::guard_size();
  std::size_t runs = 0;
  for (std::size_t i = 0; i + 16 <= stacks.size(); ++i) {
    bool neighbours = true;  // 16 stacks, each slot bytes above the one before
    std::vector<bool> seen(16, false);
    for (std::size_t j = i; j < i + 16; ++j) {
      std::size_t color = fern::arch::stack_color(stacks[j]);
      ASSERT_EQ(color % 64, 0u);
      ASSERT_LT(color, 1024u);
      seen[color / 64] = true;
      if (j > i && static_cast<char*>(stacks[j].base) - static_cast<char*>(stacks[j - 1].base) !=
                       static_cast<std::ptrdiff_t>(slot))
        neighbours = false;
    }
    if (!neighbours) continue;
    ++runs;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), true), 16) << "16 neighbours from stack " << i;
  }
  EXPECT_GT(runs, 0u) << "64 stacks carved in one go hold a run of 16 neighbours";
  for (Stack s : stacks) fern::arch::release_stack(s);
  // A one-page stack keeps most of its page: a color of 0 or 64 bytes.
  Stack small = fern::arch::allocate_stack(4096);
  EXPECT_LE(fern::arch::stack_color(small), 64u);
  fern::arch::release_stack(small);
}

// The pool keeps its free stacks per size, last released first (the one
// most likely still in cache), whichever size was used in between; a stack
// released beyond the pool's capacity is still reused (its memory went back
// to the kernel, its range stayed), and a stack's bytes are its own again.
TEST(Stack, PoolIsLastInFirstOutPerSizeAcrossSizes) {
  Stack d1 = fern::arch::allocate_stack();
  Stack d2 = fern::arch::allocate_stack();
  Stack big = fern::arch::allocate_stack(fern::arch::default_stack_size() * 2);
  Stack d3 = fern::arch::allocate_stack();
  auto pooled = fern::arch::stack_stats().pooled;
  fern::arch::release_stack(d1);
  fern::arch::release_stack(big);
  fern::arch::release_stack(d2);
  EXPECT_EQ(fern::arch::stack_stats().pooled, pooled + 3);
  Stack a = fern::arch::allocate_stack();
  Stack b = fern::arch::allocate_stack(big.size);
  Stack c = fern::arch::allocate_stack();
  EXPECT_EQ(a.base, d2.base);
  EXPECT_EQ(b.base, big.base);
  EXPECT_EQ(c.base, d1.base);
  EXPECT_EQ(fern::arch::stack_stats().pooled, pooled);
  // Every byte writable, the top word included.
  for (Stack s : {a, b, c}) {
    std::memset(s.base, 0xab, s.size);
    fern::arch::release_stack(s);
  }
  fern::arch::set_pool_capacity(0);  // beyond capacity: the memory goes back
  fern::arch::release_stack(d3);
  Stack again = fern::arch::allocate_stack();
  EXPECT_NE(again.base, nullptr);
  static_cast<unsigned char*>(again.base)[again.size - 1] = 1;
  fern::arch::release_stack(again);
  fern::arch::set_pool_capacity(1024);
}

TEST(StackDeathTest, WriteIntoGuardPageFaults) {
  Stack s = fern::arch::allocate_stack(16 * 1024);
  EXPECT_DEATH(static_cast<volatile char*>(s.base)[-1] = 1, "");
  fern::arch::release_stack(s);
}

TEST(Stack, ManyGuardedStacksStayWithinAFewMappings) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer maps shadow memory per stack: the mapping count is its own";
#endif
  if (!fern::arch::stack_stats().guard_install) {
    // Probe once: the first allocation decides the guard mode.
    fern::arch::release_stack(fern::arch::allocate_stack(12 * 1024));
    if (!fern::arch::stack_stats().guard_install)
      GTEST_SKIP() << "kernel without MADV_GUARD_INSTALL: one mapping pair per stack";
  }
  // More guarded stacks than vm.max_map_count / 2 could hold with mprotect guards.
  constexpr std::size_t kStacks = 40000;
  std::size_t maps_before = mapping_count();
  std::vector<Stack> stacks;
  stacks.reserve(kStacks);
  for (std::size_t i = 0; i < kStacks; ++i) {
    stacks.push_back(fern::arch::allocate_stack(12 * 1024));
    static_cast<char*>(stacks.back().base)[stacks.back().size - 1] = 1;  // touch the top
  }
  EXPECT_LT(mapping_count(), maps_before + 1000);
  // Released out of order and beyond the pool: memory goes back, mappings
  // must not split (unmapping single stacks would).
  fern::arch::set_pool_capacity(0);
  for (std::size_t i = 0; i < kStacks; i += 2) fern::arch::release_stack(stacks[i]);
  for (std::size_t i = 1; i < kStacks; i += 2) fern::arch::release_stack(stacks[i]);
  EXPECT_LT(mapping_count(), maps_before + 1000);
  fern::arch::set_pool_capacity(1024);
}

// Sizes near SIZE_MAX used to wrap in the rounding (a segfault, or a
// division by zero).
TEST(Stack, SizeAboveTheLimitIsATypedErrorNamingSizeAndLimit) {
  const std::size_t limit = fern::arch::max_stack_size();
  for (std::size_t huge : {SIZE_MAX, SIZE_MAX - 4096, limit + 1}) {
    try {
      fern::arch::allocate_stack(huge);
      FAIL() << "a stack of " << huge << " bytes was allocated";
    } catch (const fern::arch::StackSizeError& e) {
      EXPECT_EQ(e.requested(), huge);
      EXPECT_EQ(e.limit(), limit);
      std::string what = e.what();
      EXPECT_NE(what.find(std::to_string(huge) + " bytes"), std::string::npos) << what;
      EXPECT_NE(what.find("limit is " + std::to_string(limit)), std::string::npos) << what;
    }
  }
  EXPECT_THROW(fern::arch::set_default_stack_size(SIZE_MAX), fern::arch::StackSizeError);
  EXPECT_LT(fern::arch::default_stack_size(), limit);
}

// A frame or alloca larger than one page must not step over the guard into
// the neighbouring stack: every byte of a 64 KiB region below faults.
TEST(StackDeathTest, GuardRegionIsWideAndFaultsEverywhere) {
  ASSERT_GE(fern::arch::guard_size(), 64u * 1024);
  Stack s = fern::arch::allocate_stack(16 * 1024);
  auto* base = static_cast<volatile char*>(s.base);
  const std::size_t guard = fern::arch::guard_size();
  EXPECT_DEATH(base[-1] = 1, "");
  EXPECT_DEATH(base[-static_cast<std::ptrdiff_t>(guard / 2)] = 1, "");
  EXPECT_DEATH(base[-static_cast<std::ptrdiff_t>(guard)] = 1, "");
  fern::arch::release_stack(s);
}

TEST(Stack, RefusedMappingIsATypedErrorNamingTheLimitAndTheSize) {
  const std::size_t huge = std::size_t{1} << 47;  // more than a 47-bit address space
  try {
    fern::arch::allocate_stack(huge);
    FAIL() << "a 128 TiB stack was mapped";
  } catch (const fern::arch::StackError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(huge) + " bytes"), std::string::npos) << what;
    EXPECT_NE(what.find("vm.max_map_count"), std::string::npos) << what;
  }
}

}  // namespace
