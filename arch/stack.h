#pragma once
// Stacks for contexts: mmap'd, lazily committed, a guard page below each,
// pooled per thread.
//
// Many stacks are carved from one mapping. Where the kernel has
// MADV_GUARD_INSTALL (Linux 6.13+), guard pages are installed inside that
// mapping without splitting it, so a million guarded stacks cost a handful of
// kernel mappings. Elsewhere the guard is an mprotect(PROT_NONE) page, which
// splits the mapping: each stack then costs two of vm.max_map_count (65530 by
// default), about 32,000 guarded stacks. stack_stats() says which is in use.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace fern::arch {

struct Stack {
  void* base = nullptr;   // lowest usable byte; the guard page is just below
  std::size_t size = 0;   // usable bytes, a multiple of the page size
  explicit operator bool() const noexcept { return base != nullptr; }
};

// The kernel refused memory for a stack. The message names the stack size and,
// for ENOMEM, the vm.max_map_count limit that is the usual cause.
class StackError : public std::runtime_error {
 public:
  explicit StackError(const std::string& what) : std::runtime_error(what) {}
};

// Usable size of stacks allocated with size 0. Default 64 KiB; any thread.
std::size_t default_stack_size() noexcept;
// Sets it (rounded up to whole pages, at least one page besides the guard).
// Throws std::invalid_argument for 0.
void set_default_stack_size(std::size_t bytes);

// A stack of at least `bytes` usable bytes (0: the default), from this
// thread's pool when one of that size is free (O(1), no system call),
// otherwise carved from a fresh mapping. Throws StackError.
Stack allocate_stack(std::size_t bytes = 0);

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

// Installs this thread's overflow reporter: a SIGSEGV/SIGBUS handler on an
// alternate signal stack that, for a fault in the guard page of the stack
// `describe` reports as current, prints which context overflowed and its
// stack size, then aborts. Other faults go to the previous handler.
// `describe` runs in the signal handler: it must be async-signal-safe.
struct OverflowInfo {
  Stack stack;            // the running context's stack (empty: thread stack)
  const char* label;      // e.g. "greenlet"
  unsigned long id;       // e.g. the greenlet's number
};
using DescribeCurrent = OverflowInfo (*)() noexcept;
void install_overflow_reporter(DescribeCurrent describe);

}  // namespace fern::arch
