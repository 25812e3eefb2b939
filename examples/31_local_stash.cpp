// Twin of gevent's tutorial program 31_local_stash.py: attributes of a
// greenlet-local object are per task; f2 does not see f1's x.
// A Python local's attributes become std::optional members of the local<T>'s
// T; "no such attribute" (AttributeError) is an empty optional.
#include <cstdio>
#include <optional>

#include "fern/core/task.h"
#include "fern/sync/local.h"

namespace {

struct Stash {
  std::optional<int> x;
  std::optional<int> y;
};

fern::local<Stash> stash;

void f1() {
  stash->x = 1;
  std::printf("%d\n", *stash->x);
}

void f2() {
  stash->y = 2;
  std::printf("%d\n", *stash->y);

  if (!stash->x) std::puts("x is not local to f2");
}

}  // namespace

int main() {
  fern::Task<void> g1 = fern::spawn(f1);
  fern::Task<void> g2 = fern::spawn(f2);

  fern::joinall({fern::any_task(g1), fern::any_task(g2)});
}
