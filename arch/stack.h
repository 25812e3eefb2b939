#pragma once
// Stacks for contexts: mmap'd, lazily committed, a guard region below each,
// pooled per thread.
//
// Many stacks are carved from one mapping. Where the kernel has
// MADV_GUARD_INSTALL (Linux 6.13+), guards are installed inside that mapping
// without splitting it, so a million guarded stacks cost a handful of kernel
// mappings. Elsewhere the guard is mprotect(PROT_NONE), which splits the
// mapping: each stack then costs two of vm.max_map_count (65530 by default),
// about 32,000 guarded stacks. stack_stats() says which is in use.
//
// The guard is guard_size() bytes (64 KiB), not one page: a frame or an
// alloca larger than the guard would step over it into the neighbouring
// stack. Neither kind of guard commits memory; it costs address space only.
// Code compiled with -fstack-clash-protection probes every page of a large
// frame and so cannot step over any guard (fern is built with it).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fern::arch {

struct Stack {
  void* base = nullptr;   // lowest usable byte; the guard region is just below
  std::size_t size = 0;   // usable bytes, a multiple of the page size
  explicit operator bool() const noexcept { return base != nullptr; }
};

// The kernel refused memory for a stack. The message names the stack size and,
// for ENOMEM, the vm.max_map_count limit that is the usual cause.
class StackError : public std::runtime_error {
 public:
  explicit StackError(const std::string& what) : std::runtime_error(what) {}
};

// A stack size beyond max_stack_size() was asked for. The message names the
// size asked for and the limit.
class StackSizeError : public StackError {
 public:
  StackSizeError(std::size_t requested, std::size_t limit);
  std::size_t requested() const noexcept { return requested_; }
  std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t requested_;
  std::size_t limit_;
};

// The largest size of one stack that fern tries to map: a quarter of the
// address space (2^62 bytes on 64-bit), so that no size arithmetic can
// overflow; the kernel refuses far smaller ones (StackError).
constexpr std::size_t max_stack_size() noexcept { return std::size_t{1} << (sizeof(std::size_t) * 8 - 2); }

// Bytes of the guard region below each stack (64 KiB, at least one page).
std::size_t guard_size() noexcept;

// Usable size of stacks allocated with size 0. Default 64 KiB; any thread.
std::size_t default_stack_size() noexcept;
// Sets it (rounded up to whole pages, at least one page besides the guard).
// Throws std::invalid_argument for 0, StackSizeError above max_stack_size().
void set_default_stack_size(std::size_t bytes);

// A stack of at least `bytes` usable bytes (0: the default), from this
// thread's pool when one of that size is free (O(1), no system call),
// otherwise carved from a fresh mapping. Throws StackSizeError above
// max_stack_size(), StackError when the kernel refuses.
Stack allocate_stack(std::size_t bytes = 0);

// Bytes a context on `stack` leaves unused above its first frame
// (fiber_start): 0, 64, ..., 960 (less on stacks under 32 KiB), going
// through every value in turn from one stack carved to the next. Stack tops
// are page-aligned, so without it the top frames of all stacks share one
// page offset, hence the same few cache sets (L1's sets repeat every 4 KiB,
// and L2's index adds only a few bits of the physical page): with a
// thousand greenlets taking turns, their frames evict each other. The
// offsets step by one cache line from a stack to the next, so that stacks
// visited in the order they were carved keep a regular stride (which the
// hardware prefetcher follows). Costs at most 960 of a stack's usable
// bytes (1.5% of 64 KiB) and no memory: the bytes are in the page the
// first frame touches anyway. Inline: a task's start computes it.
std::size_t stack_color_small(Stack stack) noexcept;  // stacks under 32 KiB
inline std::size_t stack_color(Stack stack) noexcept {
  if (__builtin_expect(stack.size < 32 * 1024, 0)) return stack_color_small(stack);
  // Stacks of one size are carved guard + size apart: an odd multiple of
  // 2^t, so base >> t steps by that odd number from one stack to the next
  // and its low four bits take every value in turn. (The guard is 64 KiB on
  // every page size up to 64 KiB; on larger pages the colors only come
  // round less evenly.)
  auto index = reinterpret_cast<std::uintptr_t>(stack.base) >> __builtin_ctzll(stack.size + 64 * 1024);
  return (index & 15) * 64;
}

// Returns a stack to this thread's pool. Beyond the pool's capacity
// (set_pool_capacity stacks of each size kept committed) its memory goes back
// to the kernel (MADV_DONTNEED) but its address range and guard stay, for
// reuse: stacks are never unmapped one by one, since splitting carved
// regions would eat into vm.max_map_count. Regions whose stacks are all free
// are unmapped when the thread exits.
void release_stack(Stack stack) noexcept;

// Free stacks kept committed per size class and thread (default 1024).
void set_pool_capacity(std::size_t stacks) noexcept;

struct StackStats {
  std::size_t live = 0;         // allocated and not yet released (this thread)
  std::size_t pooled = 0;       // free in this thread's pool
  bool guard_install = false;   // guard pages via MADV_GUARD_INSTALL (else mprotect)
};
StackStats stack_stats() noexcept;

// The stack of this thread whose guard region holds `addr`, or an empty
// Stack. Async-signal-safe (for the overflow reporter): no allocation.
Stack stack_guarded_at(const void* addr) noexcept;

// Installs the overflow reporter and this thread's alternate signal stack:
// a SIGSEGV/SIGBUS handler that, for a fault below the running context's
// stack in a guard region of this thread's stacks (its own guard, or a
// neighbour's that a large frame reached), prints which context overflowed
// and its stack size, then aborts. Other faults go to the handler that was
// installed before (its SA_SIGINFO, SA_NODEFER, SA_RESETHAND flags and mask
// honoured; SIG_DFL ends the process with the signal), and the reporter stays
// installed. The handler is installed once per process (a handler installed
// later should chain to it); each thread that calls this gets its alternate
// stack. `describe` runs in the signal handler: it must be async-signal-safe.
struct OverflowInfo {
  Stack stack;            // the running context's stack (empty: thread stack)
  const char* label;      // e.g. "greenlet"
  unsigned long id;       // e.g. the greenlet's number
};
using DescribeCurrent = OverflowInfo (*)() noexcept;
void install_overflow_reporter(DescribeCurrent describe);

}  // namespace fern::arch
