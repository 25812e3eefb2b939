// Hostile probes of sync/: kills and timeouts racing every wait, primitives
// destroyed under their waiters, misuse that must be a typed error, and
// values whose destructors reach back into the primitive. SEMANTICS EV-2,
// LK-1 .. LK-3, LK-6, PL-2, PL-5, LOC-3, TO-10, F7.
#include <algorithm>
#include <iterator>
#include <limits>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "fern/core/timeout.h"
#include "fern/sync/channel.h"
#include "fern/sync/event.h"
#include "fern/sync/group.h"
#include "fern/sync/local.h"
#include "fern/sync/queue.h"
#include "fern/sync/semaphore.h"
#include "fern/sync/wait_any.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Probe = fern::testing::HubTest;

// A value whose destructor reaches its own local once more. While the local
// itself is being destroyed that access makes a new value: it must go with
// the local too, not outlive it (leaked, with an exit hook into a dead table).
struct Haunting {
  static inline fern::local<Haunting>* home = nullptr;
  static inline int live = 0;
  static inline int haunts = 0;
  Haunting() { ++live; }
  ~Haunting() {
    --live;
    if (haunts > 0) {
      --haunts;
      (void)home->get();
    }
  }
};

// LOC-3
TEST_F(Probe, ValueMadeByADestructorWhileTheLocalGoesGoesWithIt) {
  Haunting::live = 0;
  auto l = std::make_unique<fern::local<Haunting>>();
  Haunting::home = l.get();
  fern::Event release;
  auto t = spawn([&] {
    (void)l->get();
    release.wait();
  });
  sleep(0);
  ASSERT_EQ(Haunting::live, 1);
  Haunting::haunts = 1;
  l.reset();  // t's value is destroyed here and makes a new one for main
  EXPECT_EQ(Haunting::live, 0);
  release.set();
  t.join();  // t's exit must not reach the dead table
  EXPECT_EQ(Haunting::live, 0);
}

// LOC-3: a destructor run by its greenlet's exit that reaches the local again.
TEST_F(Probe, ValueMadeByADestructorAtGreenletExitGoesToo) {
  Haunting::live = 0;
  fern::local<Haunting> l;
  Haunting::home = &l;
  auto t = spawn([&] {
    (void)l.get();
    Haunting::haunts = 1;
  });
  t.join();
  EXPECT_EQ(Haunting::live, 0);
  EXPECT_EQ(l.size(), 0u);
}

// LK-1, LK-3, TO-10: a waiter killed before the release's round runs takes
// no permit; the others get theirs FIFO and the counter ends right.
TEST_F(Probe, SemaphoreWaiterKilledBeforeTheRoundTakesNoPermit) {
  fern::Semaphore sem(0);
  std::vector<fern::Task<void>> ts;
  for (int n = 0; n < 3; ++n)
    ts.push_back(spawn([&, n] {
      sem.acquire();
      log.push_back("got-" + std::to_string(n));
    }));
  sleep(0);
  ts[0].kill_async();
  sem.release();
  sem.release();
  sleep(0);
  EXPECT_EQ(log, (Vec{"got-1", "got-2"}));
  EXPECT_EQ(sem.counter(), 0);
  EXPECT_EQ(sem.waiter_count(), 0u);
  fern::joinall(ts);
}

// LK-1, TO-10: a waiter whose timeout expires in the same iteration as the
// release's round: it either got the permit (true) or left none behind.
TEST_F(Probe, SemaphoreTimeoutRacingAReleaseLosesNoPermit) {
  fern::Semaphore sem(0);
  bool got = false;
  auto t = spawn([&] { got = sem.acquire_for(0.0); });
  sleep(0);
  sem.release();
  t.join();
  EXPECT_EQ(sem.counter() + (got ? 1 : 0), 1);
  EXPECT_EQ(sem.waiter_count(), 0u);
}

// LK-2
TEST_F(Probe, BoundedSemaphoreWithAWaiterStillRefusesTheExtraRelease) {
  fern::BoundedSemaphore sem(1);
  sem.acquire();
  auto t = spawn([&] { sem.acquire(); });
  sleep(0);
  sem.release();
  EXPECT_THROW(sem.release(), fern::SemaphoreReleasedTooManyTimes);
  t.join();
  EXPECT_EQ(sem.counter(), 0);
  sem.release();
  EXPECT_THROW(sem.release(), fern::SemaphoreReleasedTooManyTimes);
  EXPECT_EQ(sem.counter(), 1);
}

// LK-6: a non-owner's release is refused and changes nothing; an unowned
// release too; Lock is not re-entrant (its owner blocks: LoopExit alone).
TEST_F(Probe, RLockRefusesNonOwnersAndLockIsNotReentrant) {
  fern::RLock r;
  EXPECT_THROW(r.release(), fern::NotOwnerError);
  r.acquire();
  r.acquire();
  auto other = spawn([&] {
    EXPECT_THROW(r.release(), fern::NotOwnerError);
    EXPECT_FALSE(r.acquire_for(0.001));
  });
  other.join();
  EXPECT_EQ(r.count(), 2u);
  r.release();
  r.release();
  EXPECT_FALSE(r.locked());
  EXPECT_THROW(r.release(), fern::NotOwnerError);

  fern::Lock lock;
  lock.acquire();
  EXPECT_FALSE(lock.try_acquire());
  EXPECT_FALSE(lock.acquire_for(0.001));
  EXPECT_THROW(lock.acquire(), fern::LoopExit);
  lock.release();
}

// LK-6: an owner killed while it holds an RLock leaves it held; a waiter
// killed in acquire leaves the lock free for the next one.
TEST_F(Probe, RLockWaiterKilledInAcquireLeavesTheQueueInOrder) {
  fern::RLock r;
  r.acquire();
  std::vector<fern::Task<void>> ts;
  for (int n = 0; n < 3; ++n)
    ts.push_back(spawn([&, n] {
      std::lock_guard<fern::RLock> g(r);
      log.push_back("got-" + std::to_string(n));
    }));
  sleep(0);
  ts[1].kill();
  r.release();
  fern::joinall(ts);
  EXPECT_EQ(log, (Vec{"got-0", "got-2"}));
  EXPECT_FALSE(r.locked());
}

// TO-10: a getter killed while parked takes nothing and the
// remaining getters keep their order.
TEST_F(Probe, QueueGetterKilledBeforeTheRoundTakesNothing) {
  fern::Queue<int> q;
  std::vector<fern::Task<void>> ts;
  for (int n = 0; n < 3; ++n)
    ts.push_back(spawn([&, n] { log.push_back(std::to_string(n) + ":" + std::to_string(q.get())); }));
  sleep(0);
  ts[0].kill_async();
  q.put(10);
  q.put(11);
  q.put(12);
  fern::joinall(ts);
  EXPECT_EQ(log, (Vec{"1:10", "2:11"}));
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 12);
  EXPECT_EQ(q.getter_count(), 0u);
}

// Q-2, TO-10: a putter killed while parked leaves nothing; the other
// putters' items arrive in order.
TEST_F(Probe, QueuePutterKilledBeforeTheRoundLeavesNothing) {
  fern::Queue<int> q(1);
  q.put(0);
  std::vector<fern::Task<void>> ts;
  for (int n = 1; n < 4; ++n) ts.push_back(spawn([&, n] { q.put(n); }));
  sleep(0);
  ts[1].kill_async();
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(q.get());
  fern::joinall(ts);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 3}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.putter_count(), 0u);
}

// a peeker killed while parked leaves the item for the getter.
TEST_F(Probe, QueuePeekerTimeoutsAndKillsLeaveTheItem) {
  fern::Queue<int> q;
  auto peeker = spawn([&] { return q.peek_for(0.0); });
  auto killed = spawn([&] { (void)q.peek(); });
  auto getter = spawn([&] { return q.get(); });
  sleep(0);
  killed.kill_async();
  EXPECT_FALSE(peeker.get().has_value());
  q.put(5);
  EXPECT_EQ(getter.get(), 5);
  killed.join();
  EXPECT_TRUE(q.empty());
}

//
TEST_F(Probe, TaskDoneTooOftenThrowsAndKeepsTheCount) {
  fern::JoinableQueue<int> q;
  EXPECT_THROW(q.task_done(), fern::TaskDoneError);
  q.put(1);
  q.put(2);
  EXPECT_FALSE(q.join_for(0.0));
  q.task_done();
  q.task_done();
  EXPECT_THROW(q.task_done(), fern::TaskDoneError);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_TRUE(q.join_for(0.0));
}

// a joiner killed while waiting leaves the others to wake.
TEST_F(Probe, JoinerKilledWhileWaitingLeavesTheOthers) {
  fern::JoinableQueue<int> q;
  q.put(1);
  auto a = spawn([&] { q.join(); });
  auto b = spawn([&] {
    q.join();
    log.push_back("b joined");
  });
  sleep(0);
  a.kill();
  (void)q.get();
  q.task_done();
  b.join();
  EXPECT_EQ(log, Vec{"b joined"});
}

// EV-2: an Event destroyed under a timed waiter: the waiter times out and
// touches nothing of it.
TEST_F(Probe, EventDestroyedUnderATimedWaiterTimesOut) {
  auto e = std::make_unique<fern::Event>();
  auto t = spawn([&] { return e->wait_for(0.001); });
  sleep(0);
  e.reset();
  EXPECT_FALSE(t.get());
}

// a Queue destroyed under a parked getter whose round is queued, and
// one destroyed under a parked putter: both time out touching nothing.
TEST_F(Probe, QueueDestroyedUnderParkedGetterAndPutter) {
  auto q = std::make_unique<fern::Queue<std::string>>(1);
  auto getter = spawn([&q] { return q->get_for(0.001); });
  sleep(0);
  q->put("x");  // the getter's round is queued
  q.reset();
  EXPECT_FALSE(getter.get().has_value());

  q = std::make_unique<fern::Queue<std::string>>(1);
  q->put("x");
  auto putter = spawn([&q] { return q->put_for("y", 0.001); });
  sleep(0);
  EXPECT_EQ(q->putter_count(), 1u);
  q.reset();
  EXPECT_FALSE(putter.get());
}

// LK-1: a Semaphore destroyed under a timed acquirer.
TEST_F(Probe, SemaphoreDestroyedUnderATimedAcquirer) {
  auto s = std::make_unique<fern::Semaphore>(0);
  auto t = spawn([&] { return s->acquire_for(0.001); });
  sleep(0);
  s->release();
  s.reset();
  EXPECT_FALSE(t.get());
}

// PL-2: join with a timeout on a group whose member outlives it.
TEST_F(Probe, GroupJoinTimesOutThenSucceeds) {
  fern::Group g;
  fern::Event go;
  g.spawn([&] { go.wait(); });
  EXPECT_FALSE(g.join_for(0.0));
  EXPECT_FALSE(g.join_for(0.001));
  go.set();
  EXPECT_TRUE(g.join_for(1.0));
  EXPECT_EQ(g.size(), 0u);
}

// PL-5, PL-6: spawn on a full pool from inside its only member: nothing
// can free the slot, so the member ends in LoopExit (gevent hangs there).
TEST_F(Probe, PoolSpawnFromItsOnlyMemberWhenFullIsLoopExit) {
  fern::Pool pool(1);
  auto t = pool.spawn([&] {
    EXPECT_FALSE(pool.try_start(fern::Task<void>::create([] {}).core()));
    EXPECT_FALSE(pool.wait_available_for(0.001));
  });
  t.join();
  EXPECT_TRUE(t.successful());
  EXPECT_THROW(fern::Pool(-1), std::invalid_argument);
  fern::Pool zero(0);
  EXPECT_TRUE(zero.full());
  EXPECT_EQ(zero.wait_available_for(0.001), 0);
}

// a getter killed while it waits on a Channel takes nothing.
TEST_F(Probe, ChannelGetterKilledWhileWaitingTakesNothing) {
  fern::Channel<int> ch;
  auto a = spawn([&] { (void)ch.get(); });
  auto b = spawn([&] { return ch.get(); });
  sleep(0);
  a.kill_async();
  auto putter = spawn([&] { ch.put(3); });
  EXPECT_EQ(b.get(), 3);
  putter.join();
  a.join();
}

}  // namespace

namespace {

void spin_for(fern::Nanos ns) {
  fern::Nanos end = fern::monotonic_now() + ns;
  while (fern::monotonic_now() < end) {
  }
}

// Q-9, TO-10: a put whose item a getter took counts as done, even when the
// putter's own deadline passes while the getter runs (past the switch
// interval: the hub's batch cut, F6, which never splits the round of the two
// wakes). The filler callbacks move the cut's checks (every 64 steps)
// across every position of the round.
TEST_F(Probe, ChannelPutWhoseItemWasTakenIsTrueEvenPastItsDeadline) {
  for (int fillers = 60; fillers < 130; ++fillers) {
    fern::Channel<int> ch;
    bool got = false;
    auto getter = spawn([&] {
      (void)ch.get();
      got = true;
      spin_for(6'000'000);  // past the 5 ms switch interval
      sleep(0);
    });
    sleep(0);
    for (int i = 0; i < fillers; ++i) fern::Hub::current().run_callback([] {});
    auto putter = spawn([&] { return ch.put_for(1, 0.001); });
    bool put = putter.get();
    getter.join();
    ASSERT_EQ(put, got) << "with " << fillers << " fillers";
  }
}

}  // namespace

namespace {

// TO-10, PL-6, HUB-13: a greenlet killed in each remaining kind of wait
// leaves nothing of itself behind: no slot, no link, no waiter.
TEST_F(Probe, KilledInEveryWaitLeavesEachPrimitiveAsBefore) {
  fern::Pool pool(1);
  fern::Event hold;
  pool.spawn([&] { hold.wait(); });
  fern::Semaphore sem(0);
  fern::AsyncResult<int> ar;
  fern::Event ev;
  std::vector<fern::Task<void>> victims;
  victims.push_back(spawn([&] { pool.spawn([] {}); }));           // Pool.spawn on a full pool
  victims.push_back(spawn([&] { pool.join(); }));                 // Group.join
  victims.push_back(spawn([&] { (void)sem.wait(); }));            // Semaphore.wait
  victims.push_back(spawn([&] { (void)ar.get(); }));              // AsyncResult.get
  victims.push_back(spawn([&] { (void)fern::wait({ev, ar}); }));  // wait on several
  victims.push_back(spawn([&] { (void)pool.wait_available(); })); // Pool.wait_available
  sleep(0);
  EXPECT_EQ(sem.waiter_count(), 1u);
  EXPECT_EQ(ev.waiter_count(), 0u);  // wait() links, it does not park on the Event
  std::vector<fern::AnyTask> all;
  for (auto& v : victims) all.push_back(v.core());
  fern::killall(all);
  EXPECT_EQ(sem.waiter_count(), 0u);
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(pool.free_count(), 0u);
  hold.set();
  pool.join();
  EXPECT_EQ(pool.free_count(), 1u);
  EXPECT_TRUE(pool.try_start(fern::Task<void>::create([] {}).core()));
  pool.join();
  EXPECT_EQ(pool.free_count(), 1u);
  sem.release();
  EXPECT_EQ(sem.counter(), 1);
  ev.set();
  ar.set(1);
  sleep(0);  // the links of the killed wait() are gone: nothing runs
  EXPECT_EQ(ar.get(), 1);
}

}  // namespace

namespace {

// A value whose destructor throws (declared noexcept(false)).
struct ThrowsOnDestroy {
  static inline int destroyed = 0;
  ~ThrowsOnDestroy() noexcept(false) {
    ++destroyed;
    throw std::runtime_error("fern test: a destructor that throws");
  }
};

// LOC-3: a value whose destructor throws is reported and freed, as gevent
// reports an exception raised in __del__; the program goes on, and the other
// values are still destroyed (at greenlet exit, at reset(), with the local).
TEST_F(Probe, LocalValueWhoseDestructorThrowsIsReportedAndTheRestGoOn) {
  ThrowsOnDestroy::destroyed = 0;
  auto l = std::make_unique<fern::local<ThrowsOnDestroy>>();
  spawn([&] { (void)l->get(); }).join();
  EXPECT_EQ(ThrowsOnDestroy::destroyed, 1);
  (void)l->get();
  l->reset();
  EXPECT_EQ(ThrowsOnDestroy::destroyed, 2);
  fern::Event release;
  std::vector<fern::Task<void>> ts;
  for (int i = 0; i < 2; ++i)
    ts.push_back(spawn([&] {
      (void)l->get();
      release.wait();
    }));
  sleep(0);
  (void)l->get();
  l.reset();
  EXPECT_EQ(ThrowsOnDestroy::destroyed, 5);
  release.set();
  fern::joinall(ts);
}

}  // namespace

namespace {

// An input range read as it goes: items from a queue until -1; an item -2
// makes the iterator throw.
struct QueueInput {
  fern::Queue<int>* q;
  using value_type = int;
  struct iterator {
    fern::Queue<int>* q = nullptr;
    int cur = 0;
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    using reference = int&;
    using pointer = int*;
    using iterator_category = std::input_iterator_tag;
    int& operator*() { return cur; }
    iterator& operator++() {
      cur = q->get();
      if (cur == -2) throw std::out_of_range("fern test: the input failed");
      if (cur < 0) q = nullptr;
      return *this;
    }
    bool operator==(const iterator& o) const { return q == o.q; }
    bool operator!=(const iterator& o) const { return q != o.q; }
  };
  iterator begin() const {
    iterator it{q};
    ++it;
    return it;
  }
  iterator end() const { return {}; }
};

// PL-4: imap reads its input as it goes, in its feeder (gevent's IMap
// greenlet iterates the iterable), so a consumer may feed the input from
// the results, and imap() itself never blocks on the input.
TEST_F(Probe, ImapReadsItsInputAsItGoes) {
  for (bool ordered : {true, false}) {
    fern::Pool p(2);
    fern::Queue<int> in;
    in.put(1);
    auto times10 = [](int x) { return x * 10; };
    auto it = ordered ? p.imap(times10, QueueInput{&in}) : p.imap_unordered(times10, QueueInput{&in});
    EXPECT_EQ(it.next(), 10);
    in.put(2);
    EXPECT_EQ(it.next(), 20);
    in.put(-1);
    EXPECT_EQ(it.next(), std::nullopt);
    EXPECT_EQ(it.next(), std::nullopt);
    p.join();
  }
}

// PL-7 (test__pool.py TestErrorInIterator): an exception from the input
// iterator reaches the consumer after the results of the inputs before it.
TEST_F(Probe, ImapInputThatThrowsEndsTheResultsWithItsException) {
  ::testing::internal::CaptureStderr();
  for (bool ordered : {true, false}) {
    fern::Pool p(3);
    fern::Queue<int> in;
    for (int x : {1, 2, -2}) in.put(x);
    auto same = [](int x) { return x; };
    auto it = ordered ? p.imap(same, QueueInput{&in}) : p.imap_unordered(same, QueueInput{&in});
    std::vector<int> got;
    bool threw = false;
    for (int i = 0; i < 3; ++i) {
      try {
        if (auto v = it.next()) got.push_back(*v);
      } catch (const std::out_of_range&) {
        threw = true;
      }
    }
    EXPECT_TRUE(threw);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<int>{1, 2}));
    EXPECT_EQ(it.next(), std::nullopt);
    p.join();
  }
  (void)::testing::internal::GetCapturedStderr();
}

// PL-4: a queue of std::optional items (gevent's StopIteration) is an imap
// input too (test__pool.py TestPool::test_imap_no_stop).
TEST_F(Probe, ImapOverAQueueUntilItsStopItem) {
  fern::Pool p(2);
  fern::Queue<std::optional<int>> q;
  q.put(123);
  auto stop = fern::spawn_later(0.001, [&] { q.put(std::nullopt); });
  std::vector<int> out;
  for (int x : p.imap([](int v) { return v; }, q)) out.push_back(x);
  EXPECT_EQ(out, std::vector<int>{123});
  stop.join();
}

}  // namespace

namespace {

// EV-4: an AsyncResult destroyed under timed waiters: get_for throws
// Timeout and wait_for returns false, touching nothing of it (ASan).
TEST_F(Probe, AsyncResultDestroyedUnderTimedWaitersTimesThemOut) {
  auto ar = std::make_unique<fern::AsyncResult<int>>();
  auto getter = spawn([&ar] {
    try {
      (void)ar->get_for(0.001);
      return std::string("value");
    } catch (const fern::Timeout&) {
      return std::string("timeout");
    }
  });
  auto waiter = spawn([&ar] { return ar->wait_for(0.001); });
  sleep(0);
  ar.reset();
  EXPECT_EQ(getter.get(), "timeout");
  EXPECT_FALSE(waiter.get());
}

// PL-6, Q-12: a Pool destroyed under a timed spawner, a JoinableQueue under
// a timed joiner: both give up at their deadline, touching nothing of it.
TEST_F(Probe, PoolAndJoinableQueueDestroyedUnderTimedWaiters) {
  auto pool = std::make_unique<fern::Pool>(0);
  auto spawner = spawn([&pool] { return pool->start_for(fern::Task<void>::create([] {}).core(), 0.001); });
  auto q = std::make_unique<fern::JoinableQueue<int>>();
  q->put(1);
  auto joiner = spawn([&q] { return q->join_for(0.001); });
  sleep(0);
  pool.reset();
  q.reset();
  EXPECT_FALSE(spawner.get());
  EXPECT_FALSE(joiner.get());
}

}  // namespace

namespace {

// TO-8 style durations on every timed wait: 0, negative and NaN give up at
// once (no hang, nothing taken); +inf and huge ones wait like no timeout.
TEST_F(Probe, ZeroNegativeNanInfiniteAndHugeTimeoutsOnEveryWait) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double d : {0.0, -1.0, nan, -inf}) {
    fern::Event e;
    EXPECT_FALSE(e.wait_for(d));
    fern::Semaphore s(0);
    EXPECT_FALSE(s.acquire_for(d));
    EXPECT_EQ(s.wait_for(d), 0);
    fern::Queue<int> q(1);
    EXPECT_FALSE(q.get_for(d).has_value());
    EXPECT_FALSE(q.peek_for(d).has_value());
    q.put(1);
    EXPECT_FALSE(q.put_for(2, d));
    EXPECT_EQ(q.qsize(), 1u);
    fern::Channel<int> ch;
    EXPECT_FALSE(ch.get_for(d).has_value());
    EXPECT_FALSE(ch.put_for(1, d));
    fern::AsyncResult<int> ar;
    EXPECT_THROW(ar.get_for(d), fern::Timeout);
    EXPECT_FALSE(ar.wait_for(d));
    fern::Pool p0(0);
    EXPECT_EQ(p0.wait_available_for(d), 0);
    fern::RLock r;
    auto holder = spawn([&] {
      r.acquire();
      e.wait();
      r.release();
    });
    sleep(0);
    EXPECT_FALSE(r.acquire_for(d));
    fern::JoinableQueue<int> jq;
    jq.put(1);
    EXPECT_FALSE(jq.join_for(d));
    fern::Group g;
    g.add(holder.core());
    EXPECT_FALSE(g.join_for(d));
    e.set();
    EXPECT_TRUE(g.join_for(inf));
  }
  for (double d : {inf, 1e300, 9.3e9}) {
    fern::Event e;
    fern::Semaphore s(0);
    fern::Queue<int> q;
    fern::AsyncResult<int> ar;
    auto setter = spawn([&] {
      e.set();
      s.release();
      q.put(3);
      ar.set(4);
    });
    EXPECT_TRUE(e.wait_for(d));
    EXPECT_TRUE(s.acquire_for(d));
    EXPECT_EQ(q.get_for(d), 3);
    EXPECT_EQ(ar.get_for(d), 4);
    setter.join();
    EXPECT_EQ(fern::Hub::current().armed_timers(), 0u);
  }
}

}  // namespace

namespace {

// An item whose move throws when armed.
struct Fragile {
  static inline bool armed = false;
  int v = 0;
  explicit Fragile(int x) : v(x) {}
  Fragile(const Fragile& o) : v(o.v) {}
  Fragile(Fragile&& o) : v(o.v) {
    if (std::exchange(armed, false)) throw std::length_error("fern test: a move that throws");
  }
  Fragile& operator=(const Fragile&) = default;
};

// a parked putter whose item cannot be moved in when its turn
// comes gets the error from its put(); the queue is as before, and the
// next putter and getter are served.
TEST_F(Probe, ParkedPutWhoseItemsMoveThrowsFailsThatPutOnly) {
  fern::Queue<Fragile> q(1);
  q.put(Fragile(1));
  auto bad = spawn([&] {
    try {
      q.put(Fragile(2));
      return std::string("stored");
    } catch (const std::length_error&) {
      return std::string("failed");
    }
  });
  auto good = spawn([&] { q.put(Fragile(3)); });
  sleep(0);
  EXPECT_EQ(q.get().v, 1);
  Fragile::armed = true;  // the round's move of the first parked putter's item
  EXPECT_EQ(bad.get(), "failed");
  EXPECT_EQ(q.get().v, 3);
  good.join();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.putter_count(), 0u);

  fern::Channel<Fragile> ch;
  auto cbad = spawn([&] {
    try {
      ch.put(Fragile(4));
      return std::string("taken");
    } catch (const std::length_error&) {
      return std::string("failed");
    }
  });
  auto cgood = spawn([&] { ch.put(Fragile(5)); });
  sleep(0);
  Fragile::armed = true;
  EXPECT_EQ(ch.get().v, 5);
  EXPECT_EQ(cbad.get(), "failed");
  cgood.join();
  EXPECT_EQ(ch.balance(), 0);
}

}  // namespace

namespace {

// LK-6: an RLock destroyed under a timed acquirer: false, nothing touched.
TEST_F(Probe, RLockDestroyedUnderATimedAcquirer) {
  auto r = std::make_unique<fern::RLock>();
  r->acquire();
  auto t = spawn([&r] { return r->acquire_for(0.001); });
  sleep(0);
  r.reset();
  EXPECT_FALSE(t.get());
}

}  // namespace
