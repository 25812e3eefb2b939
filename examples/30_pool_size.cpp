// Twin of gevent's tutorial program 30_pool_size.py: Pool(2).map over three
// inputs; each worker prints the pool's size it sees: 2, 2, 1.
// Deliberate difference: fern's map needs a function that returns a value,
// so hello_from returns its input (Python's return None, unused).
#include <cstdio>
#include <vector>

#include "fern/sync/group.h"

namespace {

fern::Pool pool(2);

int hello_from(int n) {
  std::printf("Size of pool %zu\n", pool.size());
  return n;
}

}  // namespace

int main() { pool.map(hello_from, std::vector<int>{0, 1, 2}); }
