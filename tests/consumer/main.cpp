// A tiny program that uses fern the way a vendoring or installing project does.
#include <cstdio>

#include "fern/arch/context.h"
#include "fern/core/greenlet.h"

int main() {
  fern::Greenlet g([](fern::Value v) { return fern::value_cast<int>(v) * 2; });
  int r = fern::value_cast<int>(g.switch_to(21));
  std::printf("consumer got %d\n", r);
  return r == 42 ? 0 : 1;
}
