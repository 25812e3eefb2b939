// Memory of parked greenlets: starts N greenlets that each switch back to
// their parent once, so all N are suspended at the same time with their
// stacks touched, then reports resident bytes per greenlet and the process's
// kernel mappings (vm.max_map_count is 65530 by default).
//
//   park_memory [N = 100000] [stack bytes = fern's default]
//
// The last line is `parked N greenlets: X bytes RSS each, M mappings, guard
// pages on|off`.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "fern/arch/stack.h"
#include "fern/core/greenlet.h"

namespace {

// Resident bytes, from the second field of /proc/self/statm (pages).
long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

long mapping_count() {
  std::ifstream maps("/proc/self/maps");
  long lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return lines;
}

bool parse_count(const char* text, unsigned long long& out) {
  char* end = nullptr;
  out = std::strtoull(text, &end, 10);
  return *text != '\0' && *end == '\0' && out > 0;
}

int park(std::size_t n, std::size_t stack_bytes) {
  std::vector<fern::Greenlet> parked;
  parked.reserve(n);  // before the baseline: vector growth is not counted
  fern::Greenlet main = fern::Greenlet::current();
  long before = resident_bytes();

  for (std::size_t i = 0; i < n; ++i) {
    parked.emplace_back([&main] { main.switch_to(); }, fern::Greenlet(), stack_bytes);
    parked.back().switch_to();
  }

  long after = resident_bytes();
  long mappings = mapping_count();
  fern::arch::StackStats stats = fern::arch::stack_stats();
  std::size_t stack_size = parked.empty() ? 0 : parked.front().stack_size();
  std::printf("stacks: %zu bytes each, guard pages via %s\n", stack_size,
              stats.guard_install ? "MADV_GUARD_INSTALL (inside the carved mappings)"
                                  : "mprotect (two mappings per stack)");

  parked.clear();  // each handle is the last: GreenletExit unwinds its greenlet
  if (fern::Greenlet::live_count() != 1 || fern::arch::stack_stats().live != 0) {
    std::fprintf(stderr, "park_memory: %zu greenlets and %zu stacks left after the kill\n",
                 fern::Greenlet::live_count() - 1, fern::arch::stack_stats().live);
    return 1;
  }
  // Every stack has a guard page, by either mechanism.
  std::printf("parked %zu greenlets: %ld bytes RSS each, %ld mappings, guard pages on\n", n,
              (after - before + static_cast<long>(n) / 2) / static_cast<long>(n), mappings);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long long n = 100000, stack_bytes = 0;
  if (argc > 3 || (argc > 1 && !parse_count(argv[1], n)) ||
      (argc > 2 && !parse_count(argv[2], stack_bytes))) {
    std::fprintf(stderr, "usage: %s [greenlets = 100000] [stack bytes = %zu]\n", argv[0],
                 fern::arch::default_stack_size());
    return 2;
  }
  try {
    return park(n, stack_bytes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "park_memory: %s\n", e.what());
    return 1;
  }
}
