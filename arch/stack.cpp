// Stack allocation: carved regions, guard pages, a per-thread pool.
#include "fern/arch/stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <vector>

#ifndef MADV_GUARD_INSTALL
#  define MADV_GUARD_INSTALL 102  // Linux 6.13 uapi; older headers lack it
#endif

namespace fern::arch {
namespace {

constexpr std::size_t kRegionBytes = std::size_t{2} << 20;  // carve about 2 MiB at a time
constexpr std::size_t kGuardBytes = 64 * 1024;
constexpr std::size_t kLine = 64;  // a cache line (stack_color)

std::atomic<std::size_t> g_default_size{64 * 1024};
std::atomic<std::size_t> g_pool_capacity{1024};
// -1 unknown, 1 MADV_GUARD_INSTALL works, 0 it does not (fall back to mprotect).
std::atomic<int> g_guard_install{-1};

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// Callers check bytes <= max_stack_size() first: no overflow here.
std::size_t round_to_pages(std::size_t bytes) noexcept {
  std::size_t page = page_size();
  return (bytes + page - 1) / page * page;
}

std::size_t checked_size(std::size_t bytes) {
  if (bytes > max_stack_size()) throw StackSizeError(bytes, max_stack_size());
  return round_to_pages(bytes);
}

// Free stacks of one size. The hot ones (pages still committed: reuse is
// free) form a LIFO linked through each one's top word, which the stack's
// next user writes first anyway (its first frame), so taking or giving one
// touches no other memory and allocates nothing. The cold ones (pages
// returned with MADV_DONTNEED) are listed apart: writing a link into one
// would commit a page again.
void*& hot_link(void* base, std::size_t size) noexcept {
  return *reinterpret_cast<void**>(static_cast<char*>(base) + size - sizeof(void*));
}

struct SizeClass {
  std::size_t size;
  void* hot = nullptr;
  std::size_t hot_count = 0;
  std::vector<void*> cold;

  // The hot stack given back last, or null.
  void* take_hot() noexcept {
    void* base = hot;
    if (base) {
      hot = hot_link(base, size);
      --hot_count;
    }
    return base;
  }
  // Keeps `base` hot; false at the pool's capacity.
  bool give_hot(void* base) noexcept {
    if (hot_count >= g_pool_capacity.load(std::memory_order_relaxed)) return false;
    hot_link(base, size) = hot;
    hot = base;
    ++hot_count;
    return true;
  }
};

struct Region {
  char* base;
  std::size_t bytes;
  std::size_t slots;
  std::size_t slot;  // guard + stack size
};

// Stacks are never unmapped one by one: unmapping a stack in the middle of
// a carved region splits the mapping, and enough splits hit vm.max_map_count.
// Memory goes back with MADV_DONTNEED; whole regions are unmapped at thread
// exit when all their stacks are free.
// What the fast paths read, in a `__thread` object that needs no
// initialisation (no guard on the fast paths): the class used last (null
// until the pool is made and again once it is destroyed), stacks in use,
// and whether the pool is gone (stacks released later are left to the
// process).
struct PoolHot {
  SizeClass* last;
  std::size_t live;
  bool gone;
};
__thread PoolHot t_hot;

struct Pool {
  std::vector<SizeClass> classes;  // usually one entry: linear search is fastest
  std::vector<Region> regions;

  SizeClass& of(std::size_t size) {
    for (auto& c : classes)
      if (c.size == size) return *(t_hot.last = &c);
    classes.push_back(SizeClass{size, nullptr, 0, {}});
    return *(t_hot.last = &classes.back());
  }

  ~Pool();
};

Pool::~Pool() {
  t_hot.gone = true;
  t_hot.last = nullptr;
  std::sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) { return a.base < b.base; });
  std::vector<std::size_t> free_in(regions.size(), 0);
  auto count_free = [&](void* base) {
    auto it = std::upper_bound(regions.begin(), regions.end(), static_cast<char*>(base),
                               [](char* p, const Region& r) { return p < r.base; });
    if (it != regions.begin()) ++free_in[static_cast<std::size_t>(it - regions.begin()) - 1];
  };
  for (auto& c : classes) {
    for (void* base = c.hot; base; base = hot_link(base, c.size)) count_free(base);
    for (void* base : c.cold) count_free(base);
  }
  for (std::size_t i = 0; i < regions.size(); ++i)
    if (free_in[i] == regions[i].slots) munmap(regions[i].base, regions[i].bytes);
}

thread_local Pool t_pool;

[[noreturn]] void refuse(const char* what, std::size_t count, std::size_t size, int err) {
  std::string msg = std::string("fern: cannot ") + what + " for " + std::to_string(count) +
                    " stack(s) of " + std::to_string(size) + " bytes (+" +
                    std::to_string(guard_size()) + " guard): " + std::strerror(err);
  if (err == ENOMEM)
    msg += "; the process may be at vm.max_map_count (/proc/sys/vm/max_map_count) "
           "or out of address space: use smaller stacks or raise the limit";
  throw StackError(msg);
}

// Whether `guard` really faults: the kernel copying from it must fail with
// EFAULT. Some environments (qemu-user) accept unknown madvise advice and
// ignore it, so success of MADV_GUARD_INSTALL alone proves nothing.
bool faults(void* guard) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  bool guarded = write(fds[1], guard, 1) < 0 && errno == EFAULT;
  close(fds[0]);
  close(fds[1]);
  return guarded;
}

// Guard region below each stack. MADV_GUARD_INSTALL keeps the mapping whole;
// mprotect splits it. The first failure of the former picks the latter for good.
void install_guard(void* guard, std::size_t count, std::size_t size) {
  int mode = g_guard_install.load(std::memory_order_relaxed);
  if (mode != 0) {
    if (madvise(guard, guard_size(), MADV_GUARD_INSTALL) == 0) {
      if (mode == 1) return;
      if (faults(guard)) {
        g_guard_install.store(1, std::memory_order_relaxed);
        return;
      }
    } else if (errno != EINVAL) {
      refuse("install a guard page", count, size, errno);
    }
    g_guard_install.store(0, std::memory_order_relaxed);
  }
  if (mprotect(guard, guard_size(), PROT_NONE) != 0) refuse("protect a guard region", count, size, errno);
}

// Maps a region of `count` slots ([guard][stack]) and files all but the
// first in `into`; returns the first stack's base.
void* carve(SizeClass& into, std::size_t count) {
  std::size_t guard = guard_size();
  std::size_t slot = guard + into.size;
  void* region = mmap(nullptr, slot * count, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (region == MAP_FAILED) refuse("map a region", count, into.size, errno);
  // A transparent huge page would commit 2 MiB for a few touched bytes.
  madvise(region, slot * count, MADV_NOHUGEPAGE);
  char* first = static_cast<char*>(region);
  try {
    for (std::size_t i = 0; i < count; ++i) install_guard(first + i * slot, count, into.size);
  } catch (...) {
    munmap(region, slot * count);
    throw;
  }
  t_pool.regions.push_back(Region{first, slot * count, count, slot});
  into.cold.reserve(into.cold.size() + count);
  for (std::size_t i = count; i-- > 1;) into.cold.push_back(first + i * slot + guard);
  return first + guard;
}

}  // namespace

StackSizeError::StackSizeError(std::size_t requested, std::size_t limit)
    : StackError("fern: a stack of " + std::to_string(requested) + " bytes was asked for; the limit is " +
                 std::to_string(limit) + " bytes (fern::arch::max_stack_size())"),
      requested_(requested),
      limit_(limit) {}

std::size_t guard_size() noexcept {
  static const std::size_t size = std::max(kGuardBytes, round_to_pages(kGuardBytes));
  return size;
}

std::size_t stack_color_small(Stack stack) noexcept {
  // A 32nd of the stack in 64-byte steps, as many as a power of two allows
  // (a one-page stack: 0 or 64). Wider spans than stack_color's 1 KiB
  // measured slower in the hub's yield among 1000 greenlets (2 KiB: 13.1 ns
  // against 1 KiB's 10.7; none: 14.4).
  std::size_t lines = stack.size / 32 / kLine;
  if (lines < 2) return 0;
  std::size_t colors = std::size_t{1} << (63 - __builtin_clzll(lines));
  auto index = reinterpret_cast<std::uintptr_t>(stack.base) >> __builtin_ctzll(stack.size + guard_size());
  return (index & (colors - 1)) * kLine;
}

std::size_t default_stack_size() noexcept { return g_default_size.load(std::memory_order_relaxed); }

void set_default_stack_size(std::size_t bytes) {
  if (bytes == 0) throw std::invalid_argument("fern: stack size must be greater than zero");
  g_default_size.store(checked_size(bytes), std::memory_order_relaxed);
}

void set_pool_capacity(std::size_t stacks) noexcept {
  g_pool_capacity.store(stacks, std::memory_order_relaxed);
}

namespace {

[[gnu::noinline]] Stack allocate_slow(std::size_t bytes) {
  // The default is stored checked and rounded: no division on the common path.
  std::size_t size = bytes ? checked_size(bytes) : default_stack_size();
  SizeClass& cls = t_pool.of(size);
  void* base = cls.take_hot();
  if (!base && !cls.cold.empty()) {
    base = cls.cold.back();
    cls.cold.pop_back();
  } else if (!base) {
    std::size_t slots = kRegionBytes / (size + guard_size());
    base = carve(cls, slots ? slots : 1);
  }
  ++t_hot.live;
  return Stack{base, size};
}

[[gnu::noinline]] void release_slow(Stack stack) noexcept {
  SizeClass& cls = t_pool.of(stack.size);
  if (cls.give_hot(stack.base)) return;
  // Keeps the mapping (and its guard page); only the memory goes back.
  if (madvise(stack.base, stack.size, MADV_DONTNEED) != 0) {
    std::fprintf(stderr, "fern: madvise(MADV_DONTNEED) on a %zu-byte stack failed: %s\n", stack.size,
                 std::strerror(errno));
  }
  cls.cold.push_back(stack.base);
}

}  // namespace

// The fast paths, leaf functions: a hot stack of the default size (or of
// the class used last) taken or given back.
Stack allocate_stack(std::size_t bytes) {
  SizeClass* cls = t_hot.last;
  if (__builtin_expect(bytes == 0 && cls != nullptr, 1)) {
    std::size_t size = default_stack_size();
    if (__builtin_expect(cls->size == size, 1)) {
      if (void* base = cls->take_hot()) {
        ++t_hot.live;
        return Stack{base, size};
      }
    }
  }
  return allocate_slow(bytes);
}

void release_stack(Stack stack) noexcept {
  SizeClass* cls = t_hot.last;
  if (__builtin_expect(cls != nullptr && cls->size == stack.size && stack.base != nullptr, 1) &&
      cls->give_hot(stack.base)) {
    --t_hot.live;
    return;
  }
  if (!stack || t_hot.gone) return;
  --t_hot.live;
  release_slow(stack);
}

// Reads only this thread's region list, which the faulting thread (the
// caller) cannot be changing unless the fault is inside carve itself.
Stack stack_guarded_at(const void* addr) noexcept {
  if (t_hot.gone) return {};
  auto at = reinterpret_cast<std::uintptr_t>(addr);
  std::size_t guard = guard_size();
  for (const Region& r : t_pool.regions) {
    auto base = reinterpret_cast<std::uintptr_t>(r.base);
    if (at < base || at - base >= r.bytes) continue;
    std::size_t offset = (at - base) % r.slot;
    if (offset >= guard) return {};
    char* stack = r.base + (at - base) / r.slot * r.slot + guard;
    return Stack{stack, r.slot - guard};
  }
  return {};
}

StackStats stack_stats() noexcept {
  StackStats stats;
  stats.live = t_hot.live;
  for (auto& c : t_pool.classes) stats.pooled += c.hot_count + c.cold.size();
  stats.guard_install = g_guard_install.load(std::memory_order_relaxed) == 1;
  return stats;
}

}  // namespace fern::arch
