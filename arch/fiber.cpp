// Sanitizer and valgrind annotations for stack switches. Compiled to nothing
// unless the build uses ASan, TSan or FERN_VALGRIND (see fiber.h).
#include "fern/arch/fiber.h"

#if FERN_ASAN || FERN_TSAN || FERN_VALGRIND

#if FERN_ASAN
#  include <sanitizer/asan_interface.h>
#  include <sanitizer/common_interface_defs.h>
#endif
#if FERN_TSAN
#  include <sanitizer/tsan_interface.h>
#endif
#if FERN_VALGRIND
#  include <valgrind/valgrind.h>
#endif

namespace fern::arch {
namespace {
// The context that switched last, so that the resumed side can record the
// stack bounds ASan reports for it (the only way to learn the thread stack's).
thread_local Fiber* t_switching_from = nullptr;
}  // namespace

#if FERN_ASAN
bool in_running_fake_frame(const void* addr) noexcept {
  void* fake = __asan_get_current_fake_stack();
  return fake && __asan_addr_is_in_fake_stack(fake, const_cast<void*>(addr), nullptr, nullptr);
}
#endif

void fiber_adopt_thread(Fiber& fiber) noexcept {
#if FERN_TSAN
  fiber.tsan = __tsan_get_current_fiber();
  fiber.owns_tsan = false;
#endif
  (void)fiber;
}

void fiber_prepare(Fiber& fiber, Stack stack) noexcept {
#if FERN_ASAN
  // A pooled stack still carries the poison of its last user's frames.
  __asan_unpoison_memory_region(stack.base, stack.size);
  fiber.fake_stack = nullptr;
  fiber.bottom = stack.base;
  fiber.size = stack.size;
#endif
#if FERN_TSAN
  fiber.tsan = __tsan_create_fiber(0);
  fiber.owns_tsan = true;
#endif
#if FERN_VALGRIND
  fiber.valgrind_id = VALGRIND_STACK_REGISTER(stack.base, static_cast<char*>(stack.base) + stack.size);
#endif
  (void)fiber;
  (void)stack;
}

void fiber_retire(Fiber& fiber) noexcept {
#if FERN_TSAN
  if (fiber.owns_tsan && fiber.tsan) __tsan_destroy_fiber(fiber.tsan);
  fiber.tsan = nullptr;
  fiber.owns_tsan = false;
#endif
#if FERN_VALGRIND
  if (fiber.valgrind_id) VALGRIND_STACK_DEREGISTER(fiber.valgrind_id);
  fiber.valgrind_id = 0;
#endif
  (void)fiber;
}

void fiber_before_switch(Fiber& from, Fiber& to, bool from_ends) noexcept {
  t_switching_from = &from;
#if FERN_ASAN
  // A context that ends passes nullptr so ASan frees its fake stack.
  __sanitizer_start_switch_fiber(from_ends ? nullptr : &from.fake_stack, to.bottom, to.size);
#endif
#if FERN_TSAN
  __tsan_switch_to_fiber(to.tsan, 0);
#endif
  (void)from;
  (void)to;
  (void)from_ends;
}

void fiber_after_switch(Fiber& self) noexcept {
#if FERN_ASAN
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(self.fake_stack, &bottom, &size);
  if (t_switching_from && !t_switching_from->bottom) {
    t_switching_from->bottom = bottom;
    t_switching_from->size = size;
  }
#endif
  (void)self;
}

}  // namespace fern::arch

#endif
