// A tiny program that uses fern the way a vendoring or installing project does.
#include <any>
#include <cstdio>

#include "fern/arch/context.h"
#include "fern/core/greenlet.h"

int main() {
  fern::Greenlet g([](std::any v) { return std::any_cast<int>(v) * 2; });
  int r = std::any_cast<int>(g.switch_to(21));
  std::printf("consumer got %d\n", r);
  return r == 42 ? 0 : 1;
}
