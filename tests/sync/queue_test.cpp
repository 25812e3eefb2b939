// Queue, LifoQueue, PriorityQueue, JoinableQueue: SEMANTICS Q-1 .. Q-8,
// Q-10 .. Q-12, F7, TO-10, probe sequences S11, S12, seeds 22 and 23.
#include "fern/sync/queue.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Queues = fern::testing::HubTest;
using JoinableQueues = fern::testing::HubTest;

// S11, F7, Q-2, Q-3
TEST_F(Queues, GettersAreServedFifoAndPutDoesNotSwitch) {
  fern::Queue<std::string> q;
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 3; ++n)
    tasks.push_back(spawn([&, n] {
      log.push_back("get-" + std::to_string(n));
      std::string item = q.get();
      log.push_back("got-" + std::to_string(n) + ":" + item);
    }).core());
  sleep(0);
  for (const char* item : {"x", "y", "z"}) q.put(item);
  log.push_back("after 3 puts");
  sleep(0);
  EXPECT_EQ(log, (Vec{"get-0", "get-1", "get-2", "after 3 puts", "got-0:x", "got-1:y", "got-2:z"}));
  fern::joinall(tasks);
}

// S12, F7, Q-3
TEST_F(Queues, BlockedPuttersAreServedFifo) {
  fern::Queue<int> q(1);
  std::vector<fern::AnyTask> tasks;
  for (int n = 0; n < 3; ++n)
    tasks.push_back(spawn([&, n] {
      q.put(n);
      log.push_back("put-" + std::to_string(n) + " done");
    }).core());
  sleep(0);
  for (int i = 0; i < 3; ++i) log.push_back("main get " + std::to_string(q.get()));
  sleep(0);
  EXPECT_EQ(log, (Vec{"put-0 done", "main get 0", "put-1 done", "main get 1", "put-2 done", "main get 2"}));
  fern::joinall(tasks);
}

// Q-6 (probe Q1)
TEST_F(Queues, BasicsFollowGevent) {
  fern::Queue<int> q(2);
  q.put(1);
  q.put(2);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_FALSE(q.empty());
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), fern::QueueFull);
  EXPECT_EQ(q.peek(), 1);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 2);
  EXPECT_THROW(q.get_nowait(), fern::QueueEmpty);
  EXPECT_EQ(q.get_for(0.01), std::nullopt);
  fern::Queue<int> one(1);
  one.put(1);
  EXPECT_FALSE(one.put_for(2, 0.01));
  EXPECT_EQ(one.qsize(), 1u);
  EXPECT_EQ(one.putter_count(), 0u);
}

// Q-1 (probe Q2): maxsize 0 is unbounded, as in gevent 22.10.
TEST_F(Queues, ZeroMaxsizeIsUnbounded) {
  fern::Queue<int> q(0);
  for (int i = 0; i < 5; ++i) q.put(i);
  EXPECT_EQ(q.qsize(), 5u);
  EXPECT_EQ(q.maxsize(), 0u);
  EXPECT_FALSE(q.full());
}

// STYLE: the per-call timeout outcome as a value.
TEST_F(Queues, TryGetAndTryPutReturnTheOutcome) {
  fern::Queue<std::string> q(1);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_EQ(q.get_for(0.01), std::nullopt);
  std::string item = "a";
  EXPECT_TRUE(q.try_put(std::move(item)));
  std::string second = "b";
  EXPECT_FALSE(q.put_for(std::move(second), 0.01));
  EXPECT_EQ(second, "b");  // left untouched when refused
  EXPECT_EQ(q.try_get(), "a");
}

//
TEST_F(Queues, BlockingGetWithNothingElseRunnableEndsInLoopExit) {
  fern::Queue<int> q;
  EXPECT_THROW(q.get(), fern::LoopExit);
  EXPECT_EQ(q.getter_count(), 0u);
}

// TO-10 (probe TO8): a getter interrupted by a Timeout takes nothing.
TEST_F(Queues, GetterInterruptedByTimeoutConsumesNothing) {
  fern::Queue<int> q;
  auto g = spawn([&] {
    try {
      fern::TimeoutScope scope(0.01);
      q.get();
    } catch (const fern::Timeout&) {
      return std::string("timed out");
    }
    return std::string("got one");
  });
  EXPECT_EQ(g.get(), "timed out");
  q.put(1);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 1);
}

// TO-10, Q-8 (test_two_waiters_one_dies): the item goes to the survivor.
TEST_F(Queues, ItemGoesToTheWaiterThatDidNotDie) {
  fern::Queue<int> q;
  auto dying = spawn([&] { return q.get_for(0.001); });
  auto waiting = spawn([&] { return q.get(); });
  EXPECT_EQ(dying.get(), std::nullopt);
  q.put(7);
  EXPECT_EQ(waiting.get(), 7);
  EXPECT_TRUE(q.empty());
}

// TO-10: a killed putter leaves nothing behind; the next one is served.
TEST_F(Queues, KilledPutterLeavesNothingBehind) {
  fern::Queue<int> q(1);
  q.put(0);
  auto killed = spawn([&] { q.put(1); });
  auto kept = spawn([&] { q.put(2); });
  sleep(0);
  killed.kill();
  EXPECT_EQ(q.putter_count(), 1u);
  EXPECT_EQ(q.get(), 0);
  EXPECT_EQ(q.get(), 2);
  EXPECT_TRUE(kept.join_until(fern::Deadline::never()));
}

// Q-4 (test_max_size)
TEST_F(Queues, PutterOfThreeBlocksOnTheThirdUntilOneGet) {
  fern::Queue<std::string> q(2);
  auto putter = spawn([&] {
    for (const char* s : {"a", "b", "c"}) {
      q.put(s);
      log.push_back(std::string("put ") + s);
    }
  });
  sleep(0);
  EXPECT_EQ(log, (Vec{"put a", "put b"}));
  EXPECT_EQ(q.get(), "a");
  sleep(0);
  EXPECT_EQ(log, (Vec{"put a", "put b", "put c"}));
  putter.join();
}

// Q-6 (test_peek_multi_greenlet)
TEST_F(Queues, PeekBlocksAndLeavesTheItem) {
  fern::Queue<int> q;
  auto peeker = spawn([&] { return q.peek(); });
  sleep(0);
  q.put(5);
  EXPECT_EQ(peeker.get(), 5);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 5);
  EXPECT_EQ(q.peek_for(0.01), std::nullopt);
}

// Q-7 (test_put_nowait_unlock): put_nowait from a loop callback while a
// getter waits succeeds; the getter wakes on a later pass.
TEST_F(Queues, PutNowaitFromALoopCallbackWakesTheGetter) {
  fern::Queue<int> q(1);
  auto getter = spawn([&] { return q.get(); });
  sleep(0);
  fern::Hub::current().run_callback([&] {
    q.put_nowait(1);
    log.push_back("put");
  });
  EXPECT_EQ(getter.get(), 1);
  EXPECT_EQ(log, (Vec{"put"}));
}

// in a loop callback, which cannot wait, a blocking get() on an empty
// queue throws QueueEmpty and a blocking put() on a full one QueueFull (as
// gevent's get/put in the hub): nothing is taken from nothing, nothing is
// dropped, and the counts stay right.
TEST_F(Queues, BlockingGetAndPutInALoopCallbackThatCannotCompleteThrow) {
  fern::Queue<int> q(1);
  auto attempt = [&](const char* what, auto op) {
    fern::Hub::current().run_callback([&, what, op] {
      try {
        op();
        log.push_back(std::string(what) + " returned");
      } catch (const fern::QueueEmpty&) {
        log.push_back(std::string(what) + " empty");
      } catch (const fern::QueueFull&) {
        log.push_back(std::string(what) + " full");
      }
    });
    sleep(0);
  };
  attempt("get", [&] { q.get(); });
  attempt("peek", [&] { q.peek(); });
  q.put(1);
  attempt("put", [&] { q.put(2); });
  EXPECT_EQ(log, (Vec{"get empty", "peek empty", "put full"}));
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 1);
  EXPECT_TRUE(q.empty());
}

// Q-7 (test_put_nowait_simple): two put_nowait from callbacks on a 1-slot
// queue: the first is stored, the second raises QueueFull.
TEST_F(Queues, SecondPutNowaitFromALoopCallbackIsFull) {
  fern::Queue<int> q(1);
  for (int item : {2, 3})
    fern::Hub::current().run_callback([&, item] {
      try {
        q.put_nowait(item);
        log.push_back("stored");
      } catch (const fern::QueueFull&) {
        log.push_back("full");
      }
    });
  sleep(0);
  EXPECT_EQ(log, (Vec{"stored", "full"}));
  EXPECT_EQ(q.get(), 2);
}

// Q-8, seed 22: workers take items in strict rotation.
TEST_F(Queues, WorkersTakeItemsInRotation) {
  fern::Queue<int> tasks;
  spawn([&] {
    for (int i = 1; i < 7; ++i) tasks.put_nowait(i);
  }).join();
  auto worker = [&](std::string name) {
    while (!tasks.empty()) {
      log.push_back(name + " got " + std::to_string(tasks.get()));
      sleep(0);
    }
    log.push_back("Quitting time!");
  };
  fern::joinall({spawn(worker, "steve").core(), spawn(worker, "john").core(), spawn(worker, "nancy").core()});
  EXPECT_EQ(log, (Vec{"steve got 1", "john got 2", "nancy got 3", "steve got 4", "john got 5", "nancy got 6",
                      "Quitting time!", "Quitting time!", "Quitting time!"}));
}

// seed 23: a boss blocked on a full queue and three workers.
TEST_F(Queues, BossBlocksOnAFullQueueWhileWorkersRotate) {
  fern::Queue<int> tasks(3);
  auto worker = [&](std::string name) {
    while (std::optional<int> task = tasks.get_for(0.05)) {
      log.push_back(name + " " + std::to_string(*task));
      sleep(0);
    }
    log.push_back("quit");
  };
  auto boss = [&] {
    for (int i = 1; i < 10; ++i) tasks.put(i);
    log.push_back("iteration 1");
    for (int i = 10; i < 20; ++i) tasks.put(i);
    log.push_back("iteration 2");
  };
  fern::joinall({spawn(boss).core(), spawn(worker, "steve").core(), spawn(worker, "john").core(),
                 spawn(worker, "bob").core()});
  EXPECT_EQ(log, (Vec{"steve 1",  "john 2",  "bob 3",       "steve 4",  "john 5",  "bob 6",  "iteration 1",
                      "steve 7",  "john 8",  "bob 9",       "steve 10", "john 11", "bob 12", "steve 13",
                      "john 14",  "bob 15",  "steve 16",    "john 17",  "bob 18",  "iteration 2",
                      "steve 19", "quit",    "quit",        "quit"}));
}

// gevent's PriorityQueue is heapq; items that compare equal come out
// in heapq's order too (Python's heapq, pushing these 40 with a pop after
// every third, then draining, gives this order of ids).
struct Prioritised {
  int priority, id;
};
struct ByPriority {
  bool operator()(const Prioritised& a, const Prioritised& b) const { return a.priority < b.priority; }
};

TEST_F(Queues, PriorityQueueOrdersTiesAsHeapqDoes) {
  fern::PriorityQueue<Prioritised, ByPriority> q;
  std::vector<int> out;
  for (int i = 0; i < 40; ++i) {
    q.put({i * 7 % 5, i});
    if (i % 3 == 2) out.push_back(q.get().id);
  }
  while (!q.empty()) out.push_back(q.get().id);
  EXPECT_EQ(out, (std::vector<int>{0,  5,  3,  10, 8,  15, 20, 13, 25, 18, 30, 35, 23, 38, 28, 33, 21, 16, 1,  36,
                                   31, 6,  26, 11, 19, 9,  29, 34, 39, 4,  14, 24, 2,  32, 22, 37, 7,  27, 17, 12}));
}

// A comparator that throws fails the put or get it throws in, and only that
// one: the queue keeps every item, its count and its order (std::push_heap
// and pop_heap lost the item being sifted and left a moved-from one).
// std::less, but the call numbered `throw_at` (from 1) throws.
struct ThrowingLess {
  static inline int calls = 0;
  static inline int throw_at = 0;
  bool operator()(const std::string& a, const std::string& b) const {
    if (++calls == throw_at) throw std::runtime_error("compare");
    return a < b;
  }
};

TEST_F(Queues, PriorityQueueWhoseComparatorThrowsLosesNothing) {
  for (int throw_at = 1; throw_at < 40; ++throw_at) {
    ThrowingLess::calls = 0;
    ThrowingLess::throw_at = throw_at;
    fern::PriorityQueue<std::string, ThrowingLess> q;
    std::vector<std::string> kept;
    for (std::string s : {"m", "c", "x", "a", "q", "f", "b", "k", "d"}) {
      try {
        q.put(s);
        kept.push_back(s);
      } catch (const std::runtime_error&) {
      }
    }
    std::sort(kept.begin(), kept.end());
    ASSERT_EQ(q.qsize(), kept.size()) << "throw at " << throw_at;
    std::vector<std::string> got;
    while (!q.empty()) {
      try {
        got.push_back(q.get());
      } catch (const std::runtime_error&) {
        EXPECT_FALSE(q.empty());  // the failed get took nothing
      }
    }
    EXPECT_EQ(got, kept) << "throw at " << throw_at;
  }
}

// An item whose copy or move throws on the `throw_in`-th one from now
// (0: the next; -1: never), as a copy constructor that runs out of memory.
struct Brittle {
  static inline int throw_in = -1;
  int v;
  explicit Brittle(int value) : v(value) {}
  Brittle(const Brittle& o) : v(o.v) { tick(); }
  Brittle(Brittle&& o) : v(o.v) { tick(); }  // NOLINT: may throw, on purpose
  Brittle& operator=(const Brittle& o) {
    tick();
    v = o.v;
    return *this;
  }
  Brittle& operator=(Brittle&& o) {  // NOLINT: may throw, on purpose
    tick();
    v = o.v;
    return *this;
  }
  bool operator<(const Brittle& o) const { return v < o.v; }
  static void tick() {
    if (throw_in >= 0 && throw_in-- == 0) throw std::length_error("brittle");
  }
};

// Takes the first item of a FIFO or LIFO queue holding 2, 1 and 3 (in `order`) with each
// of the five takes, the n-th copy or move inside it throwing, for every n:
// a take that throws takes nothing, so the queue still holds all three, in
// order; one that returns took exactly the first. (The timed and
// non-blocking takes used to pop the item and then move it into their
// std::optional: a throw there lost it and the count said it was gone.)
template <class Q>
void expect_throwing_takes_lose_nothing(const std::vector<int>& order) {
  std::vector<std::function<int(Q&)>> takes = {
      [](Q& q) { return q.get().v; },
      [](Q& q) { return q.get_nowait().v; },
      [](Q& q) { return q.try_get()->v; },
      [](Q& q) { return q.get_for(1.0)->v; },
      [](Q& q) { return q.get_until(fern::Deadline::never())->v; },
  };
  for (std::size_t k = 0; k < takes.size(); ++k) {
    for (int n = 0; n < 8; ++n) {
      Q q;
      for (int v : {2, 1, 3}) q.put(Brittle(v));
      Brittle::throw_in = n;
      std::optional<int> got;
      try {
        got = takes[k](q);
      } catch (const std::length_error&) {
      }
      Brittle::throw_in = -1;
      std::vector<int> rest;
      while (!q.empty()) rest.push_back(q.get().v);
      std::vector<int> expected = order;
      if (got) {
        EXPECT_EQ(*got, order[0]) << "take " << k << ", throw at " << n;
        expected.erase(expected.begin());
      }
      EXPECT_EQ(rest, expected) << "take " << k << ", throw at " << n;
    }
  }
}

TEST_F(Queues, ATakeWhoseItemsCopyThrowsTakesNothing) {
  expect_throwing_takes_lose_nothing<fern::Queue<Brittle>>({2, 1, 3});
  expect_throwing_takes_lose_nothing<fern::LifoQueue<Brittle>>({3, 1, 2});
}

// Q-11 (probe Q4)
TEST_F(Queues, LifoPopsNewestAndPriorityPopsSmallestFirst) {
  fern::LifoQueue<int> l;
  fern::PriorityQueue<int> p;
  fern::PriorityQueue<int, std::greater<int>> largest_first;
  for (int i : {1, 2, 3}) l.put(i);
  for (int i : {3, 1, 2}) {
    p.put(i);
    largest_first.put(i);
  }
  EXPECT_EQ(l.peek(), 3);
  std::vector<int> lifo, prio, big;
  for (int i = 0; i < 3; ++i) {
    lifo.push_back(l.get());
    prio.push_back(p.get());
    big.push_back(largest_first.get());
  }
  EXPECT_EQ(lifo, (std::vector<int>{3, 2, 1}));
  EXPECT_EQ(prio, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(big, (std::vector<int>{3, 2, 1}));
}

// Q-10 (probe Q4): iteration stops at, and consumes, the stop item.
TEST_F(Queues, IterationStopsAtTheStopItem) {
  fern::Queue<std::optional<int>> q;
  for (auto item : {std::optional<int>(1), std::optional<int>(2), std::optional<int>(), std::optional<int>(4)})
    q.put(item);
  std::vector<int> seen;
  for (int x : q) seen.push_back(x);
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  EXPECT_EQ(q.qsize(), 1u);

  fern::Queue<std::string> words;
  auto producer = spawn([&] {
    for (const char* w : {"a", "b", "STOP"}) {
      words.put(w);
      sleep(0);
    }
  });
  Vec got;
  for (std::string& w : words.until("STOP")) got.push_back(w);
  EXPECT_EQ(got, (Vec{"a", "b"}));
  producer.join();
}

// Q-12 (probe Q5)
TEST_F(JoinableQueues, JoinWaitsUntilEveryItemIsDone) {
  fern::JoinableQueue<int> jq;
  EXPECT_TRUE(jq.join_for(0));  // nothing was ever put
  jq.put(1);
  jq.put(2);
  EXPECT_EQ(jq.unfinished_tasks(), 2u);
  auto worker = spawn([&] {
    for (;;) {
      jq.get();
      sleep(0);
      jq.task_done();
    }
  });
  EXPECT_FALSE(jq.join_for(0));
  EXPECT_TRUE(jq.join_until(fern::Deadline::never()));
  EXPECT_EQ(jq.unfinished_tasks(), 0u);
  worker.kill();
  EXPECT_THROW(jq.task_done(), fern::TaskDoneError);
}

}  // namespace
