// Run with libfern_hooks.so preloaded (and linked: it is the program's
// fern): calls a plain C library makes, not compiled against fern, park
// only their greenlet. Prints "ok" and exits 0, else says what failed.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "fern/core/task.h"
#include "fern/hooks/hooks.h"

extern "C" int probe_sleep(unsigned us);
extern "C" long probe_read(int fd, void* buf, unsigned long n);

int main() {
  fern::hooks::patch_all();
  // Ten sleeps of 0.1 s in ten greenlets: about 0.1 s, not 1 s.
  fern::Nanos start = fern::monotonic_now();
  std::vector<fern::Task<void>> sleepers;
  for (int i = 0; i < 10; ++i) sleepers.push_back(fern::spawn([] { probe_sleep(100'000); }));
  fern::joinall(sleepers);
  double took = static_cast<double>(fern::monotonic_now() - start) / 1e9;
  if (took < 0.1 || took > 0.6) {
    std::printf("ten sleeps took %.3f s\n", took);
    return 1;
  }
  // A read parks until another greenlet writes.
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  std::vector<char> order;
  auto reader = fern::spawn([&] {
    char c = 0;
    order.push_back('r');
    if (probe_read(sv[0], &c, 1) == 1) order.push_back(c);
  });
  auto writer = fern::spawn([&] {
    order.push_back('w');
    if (write(sv[1], "x", 1) != 1) order.push_back('!');
  });
  fern::joinall(reader, writer);
  close(sv[0]);
  close(sv[1]);
  if (order != std::vector<char>{'r', 'w', 'x'}) {
    std::printf("read did not park: order %.*s\n", static_cast<int>(order.size()), order.data());
    return 1;
  }
  std::puts(fern::hooks::is_patched("read") ? "ok" : "not patched");
  return 0;
}
