#pragma once
// For the seeded random-program tests: runs the hub until every task of a
// list that grows as they spawn has ended; after `patience` rounds of `tick`
// it kills them all (the blocked ones end too), and at the end whatever is
// left.
#include <vector>

#include "fern/core/task.h"

namespace fern::testing {

inline void run_until_all_ended(std::vector<AnyTask>& tasks, Duration tick, int patience = 100) {
  for (int round = 0; round <= 2 * patience; ++round) {
    sleep(tick);
    bool all_dead = true;
    for (const auto& t : tasks) all_dead = all_dead && t->dead();
    if (all_dead) return;
    if (round == patience) {
      std::vector<AnyTask> all = tasks;  // a copy: the list may grow meanwhile
      killall(all);
    }
  }
  std::vector<AnyTask> all = tasks;
  killall(all);
}

}  // namespace fern::testing
