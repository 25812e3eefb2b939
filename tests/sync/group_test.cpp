// Group and Pool: SEMANTICS PL-1 .. PL-10, F15, probe sequences
// PL1 .. PL6, seed 30.
#include "fern/sync/group.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "fern/core/task.h"
#include "hub_fixture.h"

namespace {

using fern::sleep;
using fern::spawn;
using Vec = std::vector<std::string>;
using Groups = fern::testing::HubTest;
using Pools = fern::testing::HubTest;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// PL1, F15, PL-6
TEST_F(Pools, SpawnOnAFullPoolBlocksTheSpawnerUntilASlotFrees) {
  fern::Pool p(2);
  auto job = [&](std::string n, double d) {
    sleep(d);
    log.push_back(n);
  };
  p.spawn(job, "a", 0.02);
  p.spawn(job, "b", 0.3);  // far enough behind "a" and "c" on a loaded machine
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p.free_count(), 0u);
  EXPECT_TRUE(p.full());
  auto t0 = std::chrono::steady_clock::now();
  p.spawn(job, "c", 0.0);
  EXPECT_GE(seconds_since(t0), 0.015);  // blocked until "a" ended
  EXPECT_EQ(log, (Vec{"a"}));
  EXPECT_TRUE(p.join_until(fern::Deadline::never()));
  EXPECT_EQ(log, (Vec{"a", "c", "b"}));
  EXPECT_EQ(p.size(), 0u);
}

// PL2, PL-4, PL-9
TEST_F(Pools, MapAndImapKeepInputOrderImapUnorderedFollowsCompletion) {
  auto d = [](int n) {
    sleep(n / 1000.0);
    return n;
  };
  const std::vector<int> in{30, 10, 20};
  fern::Pool p(5);
  EXPECT_EQ(p.map(d, in), in);
  std::vector<int> ordered, unordered, single;
  for (int x : p.imap(d, in)) ordered.push_back(x);
  // Completion order is made, not timed: a director releases 10, 20, 30,
  // each once the one before has returned.
  std::map<int, fern::Event> gate;
  int returned = 0;
  auto gated = [&](int n) {
    gate[n].wait();
    ++returned;
    return n;
  };
  auto director = fern::spawn([&] {
    int expect = 0;
    for (int n : {10, 20, 30}) {
      gate[n].set();
      ++expect;
      while (returned < expect) sleep(0);
    }
  });
  for (int x : p.imap_unordered(gated, in)) unordered.push_back(x);
  director.join();
  EXPECT_EQ(ordered, in);
  EXPECT_EQ(unordered, (std::vector<int>{10, 20, 30}));
  fern::Pool p1(1);
  for (int x : p1.imap_unordered(d, in)) single.push_back(x);
  EXPECT_EQ(single, in);  // PL-9: one slot runs them in input order
}

// PL-8: with maxsize, the feeder never gets more than maxsize results ahead.
TEST_F(Pools, ImapMaxsizeBoundsResultsAheadOfTheConsumer) {
  fern::Group g;
  int started = 0, taken = 0, most_ahead = 0;
  auto f = [&](int x) {
    ++started;
    most_ahead = std::max(most_ahead, started - taken);
    return x;
  };
  std::vector<int> in(20), out;
  for (int i = 0; i < 20; ++i) in[i] = i;
  for (int x : g.imap_unordered(f, in, 3)) {
    out.push_back(x);
    ++taken;
    sleep(0);
    sleep(0);
  }
  std::sort(out.begin(), out.end());
  EXPECT_EQ(out, in);
  EXPECT_LE(most_ahead, 3);
  EXPECT_GE(most_ahead, 2);  // and it does run ahead
  out.clear();
  for (int x : g.imap(f, in, 1)) out.push_back(x);
  EXPECT_EQ(out, in);
}

// PL3, PL-4
TEST_F(Pools, ApplyAndApplyAsyncWithCallback) {
  fern::Pool p(2);
  EXPECT_EQ(p.apply([](int a, int b) { return a + b; }, 1, 2), 3);
  int called_with = 0;
  auto r = p.apply_async_cb([&](int v) { called_with = v; }, [](int x) { return x * 10; }, 1);
  EXPECT_EQ(r.get(), 10);
  sleep(0);
  EXPECT_EQ(called_with, 10);
  EXPECT_EQ(p.apply_async([] { return 7; }).get(), 7);
}

// PL-4 (TestCoroutinePool::test_reentrant): nested apply in a full pool.
TEST_F(Pools, ApplyFromAMemberCallsTheFunctionDirectly) {
  fern::Pool p(1);
  int result = p.apply([&] { return p.apply([] { return 41; }) + 1; });
  EXPECT_EQ(result, 42);
}

// PL-6: apply_async on a full pool does not block the caller.
TEST_F(Pools, ApplyAsyncOnAFullPoolReturnsAtOnce) {
  fern::Pool p(1);
  auto first = p.spawn([] { sleep(0.01); });
  auto second = p.apply_async([] { return 2; });
  EXPECT_FALSE(p.contains(second));
  EXPECT_EQ(second.get(), 2);
  first.join();
}

// PL-7 (probe PL3)
TEST_F(Pools, MapRethrowsAndImapContinuesAfterAFailure) {
  ::testing::internal::CaptureStderr();
  fern::Pool p(2);
  auto inverse = [](int x) {
    if (x == 0) throw std::domain_error("division by zero");
    return 1.0 / x;
  };
  EXPECT_THROW(p.map(inverse, std::vector<int>{1, 0, 2}), std::domain_error);
  fern::Pool one(1);
  auto it = one.imap(inverse, std::vector<int>{1, 0, 2});
  Vec out;
  for (int i = 0; i < 3; ++i) {
    try {
      out.push_back(std::to_string(*it.next()));
    } catch (const std::domain_error&) {
      out.push_back("error");
    }
  }
  EXPECT_EQ(it.next(), std::nullopt);
  EXPECT_EQ(out, (Vec{"1.000000", "error", "0.500000"}));
  p.join();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("failed with std::domain_error"), std::string::npos) << err;
}

// PL-7 with the feeder gone: a feeder killed while a full Pool holds it
// back ends the results as gevent's IMap does (the members it spawned and
// its GreenletExit: after them in input order, when it came unordered), and
// then the iterator ends instead of waiting forever.
TEST_F(Pools, ImapWhoseFeederIsKilledYieldsWhatItSpawnedThenTheKillThenEnds) {
  for (bool ordered : {true, false}) {
    SCOPED_TRACE(ordered ? "imap" : "imap_unordered");
    fern::Pool one(1);
    fern::Event gate;
    auto work = [&gate](int x) {
      gate.wait();
      return x * 10;
    };
    std::vector<int> in{1, 2, 3};
    auto it = ordered ? one.imap(work, in) : one.imap_unordered(work, in);
    sleep(0);  // the feeder spawned member 0 and blocks on the full pool
    it.feeder()->kill();
    gate.set();
    if (ordered) {  // the kill after the member before it
      EXPECT_EQ(it.next(), 10);
      EXPECT_THROW(it.next(), fern::GreenletExit);
    } else {  // the kill when it came, before the member ended
      EXPECT_THROW(it.next(), fern::GreenletExit);
      EXPECT_EQ(it.next(), 10);
    }
    EXPECT_EQ(it.next(), std::nullopt);
    EXPECT_EQ(it.next(), std::nullopt);
    one.join();
  }
  // Killed before it ever ran: no member, the kill at once, then the end.
  fern::Group g;
  auto it = g.imap([](int x) { return x; }, std::vector<int>{1, 2});
  it.feeder()->kill();
  EXPECT_THROW(it.next(), fern::GreenletExit);
  EXPECT_EQ(it.next(), std::nullopt);
}

// PL4, PL-5, PL-6
TEST_F(Pools, AddOnAFullPoolThrowsPoolFullAndZeroSizeIsAlwaysFull) {
  fern::Pool p(1);
  auto g1 = spawn([] { sleep(10); });
  auto g2 = spawn([] { sleep(10); });
  p.add(g1);
  EXPECT_FALSE(p.try_add(g2));
  EXPECT_FALSE(p.add_for(g2, 0.01));
  p.discard(g1);
  EXPECT_EQ(p.size(), 0u);
  EXPECT_EQ(p.free_count(), 1u);
  fern::killall({g1.core(), g2.core()});

  fern::Pool p0(0);
  EXPECT_EQ(p0.free_count(), 0u);
  EXPECT_TRUE(p0.full());
  EXPECT_EQ(p0.wait_available_for(0.01), 0);
  EXPECT_THROW(fern::Pool(-1), std::invalid_argument);
  EXPECT_FALSE(fern::Pool().full());
}

// PL4, PL-10
TEST_F(Pools, KillEndsEveryMember) {
  fern::Pool p(3);
  for (int i = 0; i < 3; ++i) p.spawn([] { sleep(10); });
  sleep(0);
  EXPECT_TRUE(p.kill());
  EXPECT_EQ(p.size(), 0u);
}

// Seed 30: Pool(2).map prints the pool size from each worker.
TEST_F(Pools, MapBlocksWhileFull) {
  fern::Pool pool(2);
  std::vector<std::size_t> sizes;
  pool.map([&](int) { sizes.push_back(pool.size()); return 0; }, std::vector<int>{0, 1, 2});
  EXPECT_EQ(sizes, (std::vector<std::size_t>{2, 2, 1}));
}

// PL5, PL-1, PL-2
TEST_F(Groups, MembersLeaveWhenTheyEndAndJoinReportsEmptiness) {
  fern::Group g;
  auto a = g.spawn([] { sleep(0.02); });
  auto b = spawn([] { sleep(0.05); });
  g.add(b);
  EXPECT_EQ(g.size(), 2u);
  EXPECT_TRUE(g.contains(a));
  EXPECT_FALSE(g.join_for(0.01));
  EXPECT_EQ(g.size(), 2u);
  EXPECT_TRUE(g.join_until(fern::Deadline::never()));
  EXPECT_EQ(g.size(), 0u);
  EXPECT_TRUE(fern::Group().join_until(fern::Deadline::never()));
  EXPECT_FALSE(g.full());
}

// PL5: Group.map interleaving.
TEST_F(Groups, MapRunsMembersConcurrently) {
  fern::Group g;
  g.map(
      [&](const std::string& m) {
        for (int i = 0; i < 2; ++i) {
          log.push_back(m);
          sleep(0);
        }
        return 0;
      },
      Vec{"x", "y"});
  EXPECT_EQ(log, (Vec{"x", "y", "x", "y"}));
}

// PL5, PL-3
TEST_F(Groups, KillAndKilloneEndMembers) {
  fern::Group g;
  for (int i = 0; i < 3; ++i) g.spawn([] { sleep(10); });
  EXPECT_TRUE(g.kill());
  EXPECT_EQ(g.size(), 0u);
  auto x = g.spawn([] { sleep(10); });
  auto y = g.spawn([] { sleep(10); });
  sleep(0);
  EXPECT_TRUE(g.killone(x.core()));
  EXPECT_TRUE(x.dead());
  EXPECT_EQ(g.size(), 1u);
  EXPECT_FALSE(g.contains(x));
  EXPECT_FALSE(g.kill_async());  // not blocking: y is still dying
  EXPECT_TRUE(g.join_until(fern::Deadline::never()));
  EXPECT_TRUE(y.dead());
}

// PL-3 (test_kill_fires_once): a second kill does not hit a member again.
TEST_F(Groups, RepeatedKillDeliversTheExceptionOnce) {
  fern::Group g;
  int hits = 0;
  g.spawn([&] {
    for (;;) {
      try {
        sleep(10);
      } catch (const fern::GreenletExit&) {
        if (++hits == 1) continue;  // survive the first kill
        throw;
      }
    }
  });
  sleep(0);
  g.kill_async();
  g.kill_async();
  sleep(0);
  sleep(0);
  EXPECT_EQ(hits, 1);
  EXPECT_EQ(g.size(), 1u);
  g.members()[0]->kill();
  EXPECT_EQ(hits, 2);
}

// PL-3: a member that kills its own group (gevent's Group.kill from a
// member) kills every member, those after it too, and dies at its next block.
TEST_F(Groups, KillFromAMemberKillsEveryMemberAndThenTheCaller) {
  fern::Group g;
  auto sleeper = [&](std::string name) {
    return [&, name] {
      try {
        sleep(10);
      } catch (const fern::GreenletExit&) {
        log.push_back(name);
        throw;
      }
    };
  };
  g.spawn(sleeper("a"));
  g.spawn([&] {
    sleep(0);
    try {
      g.kill();
    } catch (const fern::GreenletExit&) {
      log.push_back("killer");
      throw;
    }
  });
  g.spawn(sleeper("c"));
  EXPECT_TRUE(g.join_for(5.0));
  EXPECT_EQ(log, (Vec{"a", "killer", "c"}));
}

// PL6
TEST_F(Groups, JoinWithRaiseErrorRethrowsTheFirstFailure) {
  ::testing::internal::CaptureStderr();
  fern::Group g;
  g.spawn([]() -> int { throw std::range_error("zero"); });
  g.spawn([] { sleep(0.01); });
  EXPECT_THROW(g.join(fern::JoinAll().raise_error()), std::range_error);
  ::testing::internal::GetCapturedStderr();
}

}  // namespace
