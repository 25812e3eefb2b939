// Seeded random programs over the primitives, as a hostile user writes
// them: tasks that put, get, acquire, wait, join, spawn children, raise and
// kill each other at random points, under short timeouts and Timeout
// scopes. Whatever the interleaving, what the primitives promise holds:
// a queue or channel item is received exactly once if and only if its put
// succeeded (TO-10: a timed-out or killed putter leaves nothing behind, a
// timed-out or killed getter takes nothing), a semaphore's count comes back
// to where it started (LK-1), a Pool never holds more than its size (PL-2),
// every task ends, and nothing is left behind (the fixture's leak check).
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/channel.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "hub_fixture.h"
#include "random_program.h"

namespace {

using std::chrono::microseconds;
using RandomOps = fern::testing::HubTest;

struct World {
  explicit World(std::uint32_t seed) : rng(seed) {}

  std::mt19937 rng;
  fern::Queue<int> queue{3};
  fern::Channel<int> channel;
  fern::BoundedSemaphore sem{2};
  fern::Event event;
  fern::AsyncResult<int> result;
  fern::Pool pool{3};
  std::vector<fern::AnyTask> tasks;
  int next_item = 1;
  // item -> times it was put successfully / received
  std::map<int, int> put_ok, got;
  long held = 0, most_held = 0;
  std::size_t most_in_pool = 0;
  int spawned = 0;

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  microseconds short_wait() { return microseconds(pick(4) == 0 ? 0 : pick(300)); }

  void receive(int item) { ++got[item]; }

  void step(const fern::AnyTask& self);
  void body(const fern::AnyTask& self, int steps) {
    for (int i = 0; i < steps; ++i) step(self);
  }
  fern::AnyTask spawn_worker(int steps) {
    ++spawned;
    fern::AnyTask t = fern::spawn([this, steps] { body(fern::AnyTask(fern::current_task()), steps); }).core();
    tasks.push_back(t);
    return t;
  }
  fern::AnyTask other_task() { return tasks.empty() ? fern::AnyTask() : tasks[pick(int(tasks.size()))]; }
};

void World::step(const fern::AnyTask& self) {
  switch (pick(16)) {
    case 0:
      fern::sleep(0);
      break;
    case 1:
      fern::sleep(short_wait());
      break;
    case 2: {
      int item = next_item++;
      if (queue.put_for(std::move(item), short_wait())) ++put_ok[item];
      break;
    }
    case 3:
      if (auto item = queue.get_for(short_wait())) receive(*item);
      break;
    case 4: {
      int item = next_item++;
      if (channel.put_for(std::move(item), short_wait())) ++put_ok[item];
      break;
    }
    case 5:
      if (auto item = channel.get_for(short_wait())) receive(*item);
      break;
    case 6:
      if (sem.acquire_for(short_wait())) {
        struct Release {
          World& w;
          ~Release() {
            --w.held;
            w.sem.release();
          }
        } release{*this};
        if (++held > most_held) most_held = held;
        if (pick(2)) fern::sleep(short_wait());  // killed here: the release still runs
      }
      break;
    case 7:
      event.wait_for(short_wait());
      break;
    case 8:
      if (pick(2)) event.set();
      else event.clear();
      break;
    case 9:
      if (auto t = other_task(); t && t != self) t->kill_async();
      break;
    case 10:
      if (spawned < 120) spawn_worker(pick(12));
      break;
    case 11:
      if (auto t = other_task(); t && t != self) t->join_for(short_wait());
      break;
    case 12: {
      // A Timeout scope around a blocking get: the timeout, or an item.
      std::optional<fern::TimeoutScope> scope(std::in_place, short_wait());
      try {
        receive(pick(2) ? queue.get() : channel.get());
      } catch (const fern::Timeout& t) {
        if (t != scope->timeout()) throw;
      }
      scope.reset();
      break;
    }
    case 13:
      if (pick(8) == 0) throw std::runtime_error("a task fails at random");
      break;
    case 14:
      if (!result.ready() && pick(2)) result.set(1);
      else result.wait_for(short_wait());
      break;
    case 15: {
      if (spawned >= 120) break;
      ++spawned;
      // Blocks while the pool is full (F15); killed there, nothing is added.
      auto t = pool.spawn([this] {
        if (pool.size() > most_in_pool) most_in_pool = pool.size();
        fern::sleep(short_wait());
      });
      tasks.push_back(t.core());
      break;
    }
  }
}

class RandomOpsSeeds : public RandomOps, public ::testing::WithParamInterface<std::uint32_t> {};

TEST_P(RandomOpsSeeds, PromisesHoldWhateverTheInterleaving) {
  World w(GetParam());
  for (int i = 0; i < 12; ++i) w.spawn_worker(20 + w.pick(20));
  fern::testing::run_until_all_ended(w.tasks, microseconds(200));
  for (const auto& t : w.tasks) ASSERT_TRUE(t->dead());
  while (auto item = w.queue.try_get()) w.receive(*item);
  EXPECT_FALSE(w.channel.try_get().has_value());  // nobody is left to put

  for (const auto& [item, n] : w.put_ok) EXPECT_EQ(n, 1) << "item " << item;
  for (const auto& [item, n] : w.got) {
    EXPECT_EQ(n, 1) << "item " << item << " received " << n << " times";
    EXPECT_EQ(w.put_ok.count(item), 1u) << "item " << item << " received but its put failed";
  }
  EXPECT_EQ(w.got.size(), w.put_ok.size()) << "items lost";
  EXPECT_EQ(w.held, 0);
  EXPECT_EQ(w.sem.counter(), 2);
  EXPECT_LE(w.most_held, 2);
  EXPECT_LE(w.most_in_pool, 3u);
  // A member killed before it started is dead at once; the link that
  // takes it out of the pool runs from the hub (gevent too): join waits.
  w.pool.join();
  EXPECT_EQ(w.pool.size(), 0u);
  w.tasks.clear();
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomOpsSeeds, ::testing::Range<std::uint32_t>(1, 41));

}  // namespace
