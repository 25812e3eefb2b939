#pragma once
// The switch as higher layers use it: fern_arch_switch plus the sanitizer
// and valgrind annotations that tell those tools about stack changes.
// In ordinary builds Fiber holds only the Context and every hook is empty, so
// switch_fiber compiles to the bare call.
#include "fern/arch/context.h"
#include "fern/arch/stack.h"
#include "fern/config.h"  // FERN_ASAN, FERN_TSAN, FERN_VALGRIND: fixed when fern was built

namespace fern::arch {

// One execution context as the switch and the tools see it.
struct Fiber {
  Context context = nullptr;
#if FERN_ASAN
  void* fake_stack = nullptr;      // ASan's fake frames of this context, kept while suspended
  const void* bottom = nullptr;    // stack bounds for ASan (learned for the thread's stack)
  std::size_t size = 0;
#endif
#if FERN_TSAN
  void* tsan = nullptr;
  bool owns_tsan = false;
#endif
#if FERN_VALGRIND
  unsigned valgrind_id = 0;
#endif
};

#if FERN_ASAN || FERN_TSAN || FERN_VALGRIND
void fiber_adopt_thread(Fiber& fiber) noexcept;           // the thread's own stack
void fiber_prepare(Fiber& fiber, Stack stack) noexcept;   // before the first switch in
void fiber_retire(Fiber& fiber) noexcept;                 // after its last switch out
void fiber_before_switch(Fiber& from, Fiber& to, bool from_ends) noexcept;
void fiber_after_switch(Fiber& self) noexcept;            // resumed (or entered) `self`
#else
inline void fiber_adopt_thread(Fiber&) noexcept {}
inline void fiber_prepare(Fiber&, Stack) noexcept {}
inline void fiber_retire(Fiber&) noexcept {}
inline void fiber_before_switch(Fiber&, Fiber&, bool) noexcept {}
inline void fiber_after_switch(Fiber&) noexcept {}
#endif

// Whether addr is in one of the running context's frames that ASan moved
// off the real stack (detect_stack_use_after_return's fake frames).
#if FERN_ASAN
bool in_running_fake_frame(const void* addr) noexcept;
#else
inline bool in_running_fake_frame(const void*) noexcept { return false; }
#endif

// Lays out `fiber` on `stack` to start with entry(arg, data), and the FP
// control of the switch that first enters it (make_context), its first frame
// stack_color(stack) bytes below the top. No allocation.
inline void fiber_start(Fiber& fiber, Stack stack, EntryFn entry, void* data) noexcept {
  fiber_prepare(fiber, stack);  // first: it unpoisons a reused stack for ASan
  fiber.context = make_context(stack.base, stack.size - stack_color(stack), entry, data, true);
}

// Switches from `from` (the running context) to `to`, handing it `arg`;
// returns the arg of the switch that resumes `from`. `from_ends`: `from` will
// never be resumed (its tool state may be dropped). `fp_neutral`: `from` owns
// no FP control (fern_arch_switch_fp_neutral).
inline void* switch_fiber(Fiber& from, Fiber& to, void* arg, bool from_ends = false,
                          bool fp_neutral = false) noexcept {
  fiber_before_switch(from, to, from_ends);
  // Expected not: the owning switch is the fall-through, with no taken
  // jump before the call or after the landing.
  void* result = __builtin_expect(fp_neutral, 0) ? fern_arch_switch_fp_neutral(&from.context, to.context, arg)
                                                 : fern_arch_switch(&from.context, to.context, arg);
  fiber_after_switch(from);
  return result;
}

}  // namespace fern::arch
