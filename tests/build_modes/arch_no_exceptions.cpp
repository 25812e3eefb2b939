// Built with -fno-exceptions: the switch layer (fern/arch/context.h,
// stack.h) serves code without exceptions. Values travel both ways.
#include <cstdio>

#include "fern/arch/context.h"
#include "fern/arch/stack.h"

namespace {

fern::arch::Context g_main = nullptr;
fern::arch::Context g_side = nullptr;

void side(void* arg, void*) {
  long n = reinterpret_cast<long>(arg);
  for (;;) n = reinterpret_cast<long>(fern_arch_switch(&g_side, g_main, reinterpret_cast<void*>(n * 2)));
}

}  // namespace

int main() {
  fern::arch::Stack stack = fern::arch::allocate_stack();
  g_side = fern::arch::make_context(stack.base, stack.size, &side, nullptr);
  long sum = 0;
  for (long i = 1; i <= 3; ++i)
    sum += reinterpret_cast<long>(fern_arch_switch(&g_main, g_side, reinterpret_cast<void*>(i)));
  fern::arch::release_stack(stack);
  std::printf("arch without exceptions: %ld\n", sum);
  return sum == 12 ? 0 : 1;
}
