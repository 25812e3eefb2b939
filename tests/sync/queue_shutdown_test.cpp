// Queue shutdown: SEMANTICS Q-13 (gevent 24.10's and Python 3.13's
// shutdown(immediate), ShutDown), with Q-12 (join) and F7 (FIFO wake-ups).
// The first tests port gevent's test_shutdown_*_all_methods_in_one_thread
// and CPython's test_shutdown_* cases; the rest are greenlets parked at the
// shutdown and hostile orders.
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/queue.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using QueueShutdown = fern::testing::HubTest;

// Runs op and names its outcome for the log: "shut down" or the value.
template <class Op>
std::string outcome(Op op) {
  try {
    return op();
  } catch (const fern::QueueShutDown&) {
    return "shut down";
  }
}

// Spawns n greenlets that each get once from q and log "get-<n>: <item>"
// or "get-<n>: shut down".
std::vector<fern::AnyTask> spawn_getters(fern::Queue<int>& q, int n, Vec& log) {
  std::vector<fern::AnyTask> getters;
  for (int i = 0; i < n; ++i)
    getters.push_back(spawn([&q, &log, i] {
      log.push_back("get-" + std::to_string(i) + ": " + outcome([&] { return std::to_string(q.get()); }));
    }).core());
  return getters;
}

// Q-13, Q-12 (gevent test_shutdown_all_methods_in_one_thread; CPython
// test_shutdown_nonempty, test_shutdown_empty): puts throw at once, gets
// drain the items left, then throw, the timed and non-blocking ones too.
TEST_F(QueueShutdown, PutsThrowAndGetsDrainThenThrow) {
  fern::JoinableQueue<std::string> q;
  q.put("L");
  q.put_nowait("O");
  EXPECT_FALSE(q.is_shut_down());
  q.shutdown();
  EXPECT_TRUE(q.is_shut_down());
  EXPECT_THROW(q.put("E"), fern::QueueShutDown);
  EXPECT_THROW(q.put_nowait("W"), fern::QueueShutDown);
  EXPECT_THROW(q.try_put("S"), fern::QueueShutDown);
  std::string kept = "K";
  EXPECT_THROW(q.put_for(std::move(kept), 1.0), fern::QueueShutDown);
  EXPECT_EQ(kept, "K");  // a refused put does not touch its item
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.peek(), "L");
  EXPECT_EQ(q.get(), "L");
  q.task_done();
  EXPECT_EQ(q.try_get(), "O");
  q.task_done();
  q.join();
  EXPECT_THROW(q.get(), fern::QueueShutDown);
  EXPECT_THROW(q.get_nowait(), fern::QueueShutDown);
  EXPECT_THROW(q.get_for(1.0), fern::QueueShutDown);  // at once: no timer left
  EXPECT_THROW(q.try_get(), fern::QueueShutDown);
  EXPECT_THROW(q.peek_nowait(), fern::QueueShutDown);
  EXPECT_THROW(q.try_peek(), fern::QueueShutDown);
  EXPECT_EQ(fern::Hub::current().armed_timers(), 0u);
}

// Q-13, Q-12 (gevent test_shutdown_immediate_all_methods_in_one_thread;
// CPython test_shutdown_immediate): the items are dropped and count as
// done, gets throw at once, one task_done too many throws, join returns.
TEST_F(QueueShutdown, ShutdownNowDropsTheItemsAndSettlesTheirTasks) {
  fern::JoinableQueue<std::string> q;
  q.put("L");
  q.put_nowait("O");
  q.shutdown_now();
  EXPECT_TRUE(q.is_shut_down());
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_THROW(q.put("E"), fern::QueueShutDown);
  EXPECT_THROW(q.put_nowait("W"), fern::QueueShutDown);
  EXPECT_THROW(q.get(), fern::QueueShutDown);
  EXPECT_THROW(q.get_nowait(), fern::QueueShutDown);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), fern::TaskDoneError);
  q.join();
}

// Q-13 (CPython test_shutdown_allowed_transitions): shutdown twice changes
// nothing more; shutdown_now after shutdown drops what was left.
TEST_F(QueueShutdown, ShutdownTwiceThenShutdownNow) {
  fern::Queue<int> q;
  q.put(1);
  q.put(2);
  q.shutdown();
  q.shutdown();
  EXPECT_TRUE(q.is_shut_down());
  EXPECT_EQ(q.get(), 1);
  q.shutdown_now();
  q.shutdown();
  EXPECT_TRUE(q.is_shut_down());
  EXPECT_TRUE(q.empty());
  EXPECT_THROW(q.get(), fern::QueueShutDown);
}

// LifoQueue and PriorityQueue share the same core: their own order
// while draining, then QueueShutDown; shutdown_now empties them.
TEST_F(QueueShutdown, LifoAndPriorityQueuesDrainInTheirOrder) {
  fern::LifoQueue<int> lifo;
  fern::PriorityQueue<int> prio;
  for (int v : {2, 3, 1}) {
    lifo.put(v);
    prio.put(v);
  }
  lifo.shutdown();
  prio.shutdown();
  EXPECT_THROW(lifo.put(4), fern::QueueShutDown);
  EXPECT_THROW(prio.put(0), fern::QueueShutDown);
  EXPECT_EQ(lifo.get(), 1);
  EXPECT_EQ(prio.get(), 1);
  EXPECT_EQ(prio.get(), 2);
  lifo.shutdown_now();
  prio.shutdown_now();
  EXPECT_THROW(lifo.get(), fern::QueueShutDown);
  EXPECT_THROW(prio.get_nowait(), fern::QueueShutDown);
}

// Q-13, F7 (CPython test_shutdown_pending_get): getters parked on an
// empty queue wake FIFO with QueueShutDown; shutdown itself does not
// switch.
TEST_F(QueueShutdown, ParkedGettersWakeFifoWithShutDown) {
  fern::Queue<int> q;
  std::vector<fern::AnyTask> getters = spawn_getters(q, 3, log);
  sleep(0);
  EXPECT_EQ(q.getter_count(), 3u);
  q.shutdown();
  log.push_back("shut down");
  fern::joinall(getters);
  EXPECT_EQ(log, (Vec{"shut down", "get-0: shut down", "get-1: shut down", "get-2: shut down"}));
  EXPECT_EQ(q.getter_count(), 0u);
}

// Q-13, F7: putters parked on a full queue wake FIFO with QueueShutDown and
// store nothing; the item stored before the shutdown is still drained.
TEST_F(QueueShutdown, ParkedPuttersWakeFifoWithShutDownAndStoreNothing) {
  fern::Queue<int> q(1);
  q.put(0);
  std::vector<fern::AnyTask> putters;
  for (int n = 1; n <= 2; ++n)
    putters.push_back(spawn([&, n] {
      std::string what = outcome([&] {
        q.put(n);
        return std::string("stored");
      });
      log.push_back("put-" + std::to_string(n) + ": " + what);
    }).core());
  sleep(0);
  EXPECT_EQ(q.putter_count(), 2u);
  q.shutdown();
  EXPECT_EQ(q.putter_count(), 2u);  // still parked until the hub's round
  fern::joinall(putters);
  EXPECT_EQ(log, (Vec{"put-1: shut down", "put-2: shut down"}));
  EXPECT_EQ(q.putter_count(), 0u);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 0);
  EXPECT_THROW(q.get(), fern::QueueShutDown);
}

// Q-13, F7: a get frees a slot and queues the round that would store the
// parked putter's item (gevent's _unlock); a shutdown before that round
// runs refuses the putter all the same, and the slot stays empty. The same
// with the get right after the shutdown.
TEST_F(QueueShutdown, SlotFreedAroundShutdownDoesNotTakeAParkedPuttersItem) {
  for (bool get_first : {true, false}) {
    fern::Queue<int> q(1);
    q.put(0);
    auto putter = spawn([&] {
      return outcome([&] {
        q.put(1);
        return std::string("stored");
      });
    });
    sleep(0);
    if (get_first) EXPECT_EQ(q.get(), 0);
    q.shutdown();
    if (!get_first) EXPECT_EQ(q.get(), 0);
    EXPECT_EQ(putter.get(), "shut down");
    EXPECT_TRUE(q.empty());
    EXPECT_THROW(q.get(), fern::QueueShutDown);
  }
}

// Q-13, F7: getters parked when the queue is shut down with items on their
// way take those items first, FIFO; the rest then wake with QueueShutDown.
TEST_F(QueueShutdown, ParkedGettersTakeTheItemsLeftThenShutDown) {
  fern::Queue<int> q;
  std::vector<fern::AnyTask> getters = spawn_getters(q, 4, log);
  sleep(0);
  q.put(10);
  q.put(11);
  q.shutdown();
  fern::joinall(getters);
  EXPECT_EQ(log, (Vec{"get-0: 10", "get-1: 11", "get-2: shut down", "get-3: shut down"}));
}

// the same with shutdown_now: the items are dropped, every parked
// getter wakes with QueueShutDown.
TEST_F(QueueShutdown, ShutdownNowGivesParkedGettersNothing) {
  fern::Queue<int> q;
  std::vector<fern::AnyTask> getters = spawn_getters(q, 2, log);
  sleep(0);
  q.put(10);
  q.shutdown_now();
  fern::joinall(getters);
  EXPECT_EQ(log, (Vec{"get-0: shut down", "get-1: shut down"}));
}

// Q-13, Q-12 (CPython test_shutdown_immediate_put_join): join() parked on
// items nobody took returns after shutdown_now; an item taken before stays
// unfinished until its task_done.
TEST_F(QueueShutdown, JoinReturnsAfterShutdownNowOnceTakenItemsAreDone) {
  fern::JoinableQueue<int> q;
  for (int v : {1, 2, 3}) q.put(v);
  EXPECT_EQ(q.get(), 1);  // taken, not done
  auto joiner = spawn([&] {
    q.join();
    log.push_back("joined");
  });
  sleep(0);
  q.shutdown_now();
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  sleep(0);
  EXPECT_TRUE(log.empty());
  q.task_done();
  joiner.join();
  EXPECT_EQ(log, (Vec{"joined"}));
  EXPECT_THROW(q.task_done(), fern::TaskDoneError);
}

// with nothing taken, shutdown_now alone wakes join().
TEST_F(QueueShutdown, JoinParkedOnUntakenItemsReturnsAfterShutdownNow) {
  fern::JoinableQueue<int> q(2);
  q.put(1);
  q.put(2);
  auto putter = spawn([&] {
    return outcome([&] {
      q.put(3);
      return std::string("stored");
    });
  });
  auto joiner = spawn([&] { q.join(); });
  sleep(0);
  q.shutdown_now();
  EXPECT_TRUE(joiner.join_until(fern::Deadline::never()));
  EXPECT_EQ(putter.get(), "shut down");
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

// shutdown from a loop callback (in the hub): the callback's own
// calls see the shutdown at once, and the parked greenlets wake after it.
TEST_F(QueueShutdown, ShutdownFromALoopCallback) {
  fern::Queue<int> q(1);
  auto getter = spawn([&] { return outcome([&] { return std::to_string(q.get()); }); });
  sleep(0);
  fern::Hub::current().run_callback([&] {
    q.shutdown();
    log.push_back("put_nowait: " + outcome([&] {
                    q.put_nowait(1);
                    return std::string("stored");
                  }));
    log.push_back("get_nowait: " + outcome([&] { return std::to_string(q.get_nowait()); }));
  });
  EXPECT_EQ(getter.get(), "shut down");
  EXPECT_EQ(log, (Vec{"put_nowait: shut down", "get_nowait: shut down"}));
}

// Q-13, TO-10: a getter and a putter parked with a timeout when the queue
// is shut down throw QueueShutDown at the round (not false or empty at
// their deadline), and leave no timer armed.
TEST_F(QueueShutdown, TimedWaitersParkedAtShutdownThrowAtOnce) {
  fern::Queue<int> empty_q;
  fern::Queue<int> full_q(1);
  full_q.put(0);
  auto getter = spawn([&] {
    return outcome([&] {
      auto v = empty_q.get_for(60.0);
      return v ? std::to_string(*v) : std::string("timed out");
    });
  });
  auto putter =
      spawn([&] { return outcome([&] { return std::string(full_q.put_for(1, 60.0) ? "stored" : "timed out"); }); });
  sleep(0);
  EXPECT_EQ(fern::Hub::current().armed_timers(), 2u);
  empty_q.shutdown();
  full_q.shutdown();
  EXPECT_EQ(getter.get(), "shut down");
  EXPECT_EQ(putter.get(), "shut down");
  EXPECT_EQ(fern::Hub::current().armed_timers(), 0u);
}

// a getter killed between shutdown() and the hub's round is not
// woken; the next one is.
TEST_F(QueueShutdown, GetterKilledBeforeTheRoundIsSkipped) {
  fern::Queue<int> q;
  auto killed = spawn([&] { q.get(); });
  auto kept = spawn([&] { return outcome([&] { return std::to_string(q.get()); }); });
  sleep(0);
  q.shutdown();
  killed.kill();
  EXPECT_EQ(kept.get(), "shut down");
  EXPECT_EQ(q.getter_count(), 0u);
}

// a getter woken with the last item shuts the queue down now from
// inside the round: the getters after it wake with QueueShutDown.
TEST_F(QueueShutdown, ShutdownNowFromAGetterWokenByTheRound) {
  fern::Queue<int> q;
  std::vector<fern::AnyTask> getters;
  for (int n = 0; n < 3; ++n)
    getters.push_back(spawn([&, n] {
      std::string got = outcome([&] { return std::to_string(q.get()); });
      log.push_back("get-" + std::to_string(n) + ": " + got);
      if (n == 0) q.shutdown_now();
    }).core());
  sleep(0);
  q.put(1);
  q.put(2);
  q.shutdown();
  fern::joinall(getters);
  EXPECT_EQ(log, (Vec{"get-0: 1", "get-1: shut down", "get-2: shut down"}));
}

// a range-for over a queue shut down without its stop item ends
// with QueueShutDown after the items left.
TEST_F(QueueShutdown, IterationEndsWithShutDown) {
  fern::Queue<std::string> q;
  q.put("a");
  q.put("b");
  q.shutdown();
  Vec got;
  EXPECT_THROW(for (std::string& s : q.until("STOP")) got.push_back(s), fern::QueueShutDown);
  EXPECT_EQ(got, (Vec{"a", "b"}));
}

// Q-13, EV-9: a put from another thread on a queue shut down meanwhile
// drops the item (nobody is left to throw to) instead of failing the hub's
// callback.
TEST_F(QueueShutdown, RemotePutOnAShutDownQueueDropsTheItem) {
  fern::Queue<int> q;
  fern::Event posted;
  q.shutdown();
  std::thread other([remote = q.remote(), done = posted.remote()] {
    EXPECT_TRUE(remote.put(1));
    done.set();  // posted after the put: it has run when this one has
  });
  posted.wait();
  other.join();
  EXPECT_TRUE(q.empty());
}

}  // namespace
