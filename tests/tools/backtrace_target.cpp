// Target for the gdb test: stops inside a greenlet, three frames deep.
#include "fern/core/greenlet.h"

extern "C" __attribute__((noinline)) void fern_test_breakpoint_here() { asm volatile(""); }

namespace {
__attribute__((noinline)) void inner() { fern_test_breakpoint_here(); }
__attribute__((noinline)) void outer() { inner(); }
}  // namespace

int main() {
  fern::Greenlet g([] { outer(); });
  g.switch_to();
  return 0;
}
