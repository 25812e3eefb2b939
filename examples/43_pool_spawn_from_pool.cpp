// Twin of gevent's tutorial program 43_pool_spawn_from_pool.py: a member of
// an unbounded Pool spawns 100 more members; join() waits for all of them,
// so "b" is printed 100 times. No deliberate differences.
#include <cstdio>

#include "fern/sync/group.h"

namespace {

fern::Pool g_pool;

void b() { std::puts("b"); }

void a() {
  for (int i = 0; i < 100; ++i) g_pool.spawn(b);
}

}  // namespace

int main() {
  g_pool.spawn(a);
  g_pool.join();
}
