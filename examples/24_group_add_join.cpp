// Twin of gevent's tutorial program 24_group_add_join.py: tasks spawned
// first, then added to a Group; join() runs them; each prints its three
// lines without yielding, in spawn order. No deliberate differences.
#include <cstdio>

#include "fern/core/task.h"
#include "fern/sync/group.h"

namespace {

void talk(const char* msg) {
  for (int i = 0; i < 3; ++i) std::puts(msg);
}

}  // namespace

int main() {
  fern::Task<void> g1 = fern::spawn(talk, "bar");
  fern::Task<void> g2 = fern::spawn(talk, "foo");
  fern::Task<void> g3 = fern::spawn(talk, "fizz");

  fern::Group group;
  group.add(g1);
  group.add(g2);
  group.join();

  group.add(g3);
  group.join();
}
