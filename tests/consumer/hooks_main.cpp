// An installed fern's fern::hooks, used the way a program that links it does:
// a libc usleep in one task lets the other task run (the hook parks it on
// the hub), so "b" is recorded before "a".
#include <unistd.h>

#include <cstdio>
#include <string>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"

int main() {
  fern::hooks::patch_all();
  if (!fern::hooks::is_patched("usleep")) return 1;
  std::string order;
  auto a = fern::spawn([&] {
    ::usleep(20000);
    order += 'a';
  });
  auto b = fern::spawn([&] { order += 'b'; });
  fern::joinall({fern::any_task(a), fern::any_task(b)});
  std::printf("hooks consumer saw %s\n", order.c_str());
  return order == "ba" ? 0 : 1;
}
