// The timer heap and the clock's rounding. SEMANTICS F5: timers with equal
// deadlines fire in creation order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "fern/core/clock.h"
#include "fern/core/timer_heap.h"

namespace fern {
namespace {

std::vector<TimerNode*> pop_all(TimerHeap& heap, Nanos now) {
  std::vector<TimerNode*> out;
  while (TimerNode* node = heap.pop_expired(now)) out.push_back(node);
  return out;
}

TEST(TimerHeap, PopsInDeadlineOrder) {
  const Nanos deadlines[] = {50, 10, 40, 30, 20, 70, 60, 0, 90, 80};
  TimerNode nodes[10];
  TimerHeap heap;
  for (int i = 0; i < 10; ++i) {
    nodes[i].deadline = deadlines[i];
    heap.push(&nodes[i]);
  }
  Nanos previous = -1;
  for (TimerNode* node : pop_all(heap, 1000)) {
    EXPECT_GT(node->deadline, previous);
    previous = node->deadline;
  }
  EXPECT_EQ(previous, 90);
  EXPECT_TRUE(heap.empty());
}

// SEMANTICS F5
TEST(TimerHeap, EqualDeadlinesPopInPushOrder) {
  TimerNode nodes[20];
  TimerHeap heap;
  for (auto& node : nodes) {
    node.deadline = 7;
    heap.push(&node);
  }
  const auto popped = pop_all(heap, 7);
  ASSERT_EQ(popped.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(popped[i], &nodes[i]);
}

// SEMANTICS F5: the order is that of the latest push, not of construction.
TEST(TimerHeap, RepushedNodeFiresAfterEqualDeadlinesPushedBefore) {
  TimerNode a, b;
  a.deadline = b.deadline = 5;
  TimerHeap heap;
  heap.push(&a);
  heap.push(&b);
  heap.remove(&a);
  heap.push(&a);
  EXPECT_EQ(pop_all(heap, 5), (std::vector<TimerNode*>{&b, &a}));
}

TEST(TimerHeap, PushOfQueuedNodeRequeuesIt) {
  TimerNode a, b;
  a.deadline = 1;
  b.deadline = 2;
  TimerHeap heap;
  heap.push(&a);
  heap.push(&b);
  a.deadline = 3;
  heap.push(&a);
  EXPECT_EQ(heap.size(), 2u);
  EXPECT_EQ(pop_all(heap, 3), (std::vector<TimerNode*>{&b, &a}));
}

class TimerHeapOfTen : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 10; ++i) {
      nodes_[i].deadline = 10 * (i + 1);
      heap_.push(&nodes_[i]);
    }
  }
  std::vector<Nanos> remaining() {
    std::vector<Nanos> out;
    for (TimerNode* node : pop_all(heap_, 1000)) out.push_back(node->deadline);
    return out;
  }
  TimerNode nodes_[10];
  TimerHeap heap_;
};

TEST_F(TimerHeapOfTen, RemoveOfTopLeavesTheRestInOrder) {
  ASSERT_EQ(heap_.top(), &nodes_[0]);
  heap_.remove(&nodes_[0]);
  EXPECT_FALSE(nodes_[0].queued());
  EXPECT_EQ(heap_.top(), &nodes_[1]);
  EXPECT_EQ(remaining(), (std::vector<Nanos>{20, 30, 40, 50, 60, 70, 80, 90, 100}));
}

TEST_F(TimerHeapOfTen, RemoveOfMiddleNodeLeavesTheRestInOrder) {
  heap_.remove(&nodes_[4]);
  EXPECT_FALSE(nodes_[4].queued());
  EXPECT_EQ(heap_.size(), 9u);
  EXPECT_EQ(remaining(), (std::vector<Nanos>{10, 20, 30, 40, 60, 70, 80, 90, 100}));
}

TEST_F(TimerHeapOfTen, RemoveOfLastNodeLeavesTheRestInOrder) {
  heap_.remove(&nodes_[9]);
  EXPECT_FALSE(nodes_[9].queued());
  EXPECT_EQ(remaining(), (std::vector<Nanos>{10, 20, 30, 40, 50, 60, 70, 80, 90}));
}

TEST_F(TimerHeapOfTen, RemoveOfUnqueuedNodeDoesNothing) {
  TimerNode stranger;
  stranger.deadline = 5;
  heap_.remove(&stranger);
  heap_.remove(&nodes_[3]);
  heap_.remove(&nodes_[3]);
  EXPECT_EQ(heap_.size(), 9u);
  EXPECT_FALSE(stranger.queued());
  EXPECT_EQ(remaining(), (std::vector<Nanos>{10, 20, 30, 50, 60, 70, 80, 90, 100}));
}

TEST_F(TimerHeapOfTen, PopExpiredReturnsNothingDueAfterNow) {
  EXPECT_EQ(heap_.pop_expired(9), nullptr);
  EXPECT_EQ(heap_.size(), 10u);
  const auto popped = pop_all(heap_, 35);
  EXPECT_EQ(popped, (std::vector<TimerNode*>{&nodes_[0], &nodes_[1], &nodes_[2]}));
  EXPECT_EQ(heap_.top(), &nodes_[3]);
  EXPECT_EQ(heap_.size(), 7u);
}

TEST_F(TimerHeapOfTen, QueuedFollowsPushPopAndRemove) {
  for (auto& node : nodes_) EXPECT_TRUE(node.queued());
  heap_.pop_expired(10);
  heap_.remove(&nodes_[5]);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(nodes_[i].queued(), i != 0 && i != 5) << i;
  heap_.push(&nodes_[0]);
  EXPECT_TRUE(nodes_[0].queued());
}

TEST(TimerHeap, DestructionUnqueuesRemainingNodes) {
  TimerNode a, b;
  {
    TimerHeap heap;
    heap.reserve(1000);
    heap.push(&a);
    heap.push(&b);
  }
  EXPECT_FALSE(a.queued());
  EXPECT_FALSE(b.queued());
}

TEST(TimerHeap, EmptyHeapHasNoTopAndPopsNothing) {
  TimerHeap heap;
  EXPECT_EQ(heap.top(), nullptr);
  EXPECT_EQ(heap.pop_expired(std::numeric_limits<Nanos>::max()), nullptr);
}

// Cancel is a tombstone: the cancelled node is no longer referred to, so
// its owner may free it at once (ASan sees any later touch), and the heap
// still pops the live ones in order, sweeping tombstones as they pile up.
TEST(TimerHeap, CancelledNodesMayBeFreedAtOnce) {
  std::mt19937_64 rng(7);
  std::vector<std::unique_ptr<TimerNode>> nodes;
  TimerHeap heap;
  for (int i = 0; i < 5000; ++i) {
    nodes.push_back(std::make_unique<TimerNode>());
    nodes.back()->deadline = static_cast<Nanos>(rng() % 100000);
    heap.push(nodes.back().get());
  }
  std::size_t live = nodes.size();
  for (std::size_t i = 0; i < nodes.size(); i += 1 + rng() % 2) {
    heap.remove(nodes[i].get());
    nodes[i].reset();
    --live;
    ASSERT_EQ(heap.size(), live);
  }
  Nanos previous = -1;
  std::size_t popped = 0;
  while (TimerNode* node = heap.pop_expired(100000)) {
    ASSERT_GE(node->deadline, previous);
    previous = node->deadline;
    ++popped;
  }
  EXPECT_EQ(popped, live);
  EXPECT_TRUE(heap.empty());
  EXPECT_EQ(heap.top(), nullptr);
}

// A sweep rebuilds the array and tells each live node its new slot: every
// node removed after sweeps leaves exactly its own entry, and what remains
// pops complete and in order.
TEST(TimerHeap, NodesRemovedAfterSweepsLeaveTheirOwnEntries) {
  std::mt19937_64 rng(11);
  std::vector<TimerNode> nodes(4000);
  TimerHeap heap;
  for (auto& node : nodes) {
    node.deadline = static_cast<Nanos>(rng() % 1000000);
    heap.push(&node);
  }
  std::vector<std::size_t> order(nodes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  // Three quarters cancelled in random order: tombstones pile up past half
  // the array more than once, so sweeps run between the removals.
  const std::size_t cancelled = nodes.size() * 3 / 4;
  for (std::size_t k = 0; k < cancelled; ++k) heap.remove(&nodes[order[k]]);
  ASSERT_EQ(heap.size(), nodes.size() - cancelled);
  // Half of the rest removed by the slots the sweeps wrote.
  for (std::size_t k = cancelled; k < cancelled + (nodes.size() - cancelled) / 2; ++k) {
    TimerNode& node = nodes[order[k]];
    ASSERT_TRUE(node.queued());
    heap.remove(&node);
    ASSERT_FALSE(node.queued());
  }
  std::vector<Nanos> expected;
  for (std::size_t k = cancelled + (nodes.size() - cancelled) / 2; k < nodes.size(); ++k) {
    expected.push_back(nodes[order[k]].deadline);
  }
  std::sort(expected.begin(), expected.end());
  ASSERT_EQ(heap.size(), expected.size());
  std::vector<Nanos> popped;
  while (TimerNode* node = heap.pop_expired(1000000)) popped.push_back(node->deadline);
  EXPECT_EQ(popped, expected);
  EXPECT_TRUE(heap.empty());
}

// A tombstone on top is not a timer: top() shows the earliest live one
// (the hub sizes its poll timeout from it).
TEST(TimerHeap, TopSkipsACancelledEarliestTimer) {
  TimerNode early, late;
  early.deadline = 1;
  late.deadline = 1000;
  TimerHeap heap;
  heap.push(&late);
  heap.push(&early);
  heap.remove(&early);
  EXPECT_EQ(heap.top(), &late);
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_EQ(heap.pop_expired(999), nullptr);
  EXPECT_EQ(heap.pop_expired(1000), &late);
}

// 100000 mixed operations against std::set of (deadline, sequence). A narrow
// deadline range makes ties common, so the sequence tie-break is exercised.
// A timer armed below a later one rises a level, pushing that one to the end
// of the array; cancelling it refills its slot from the end (no tombstone).
TEST(TimerHeap, CancelOfATimerThatRoseALevelKeepsTheOrderExact) {
  fern::TimerHeap heap;
  fern::TimerNode nodes[5];
  const fern::Nanos deadlines[5] = {10, 20, 30, 40, 50};
  for (int i = 0; i < 5; ++i) {
    nodes[i].deadline = deadlines[i];
    heap.push(&nodes[i]);
  }
  fern::TimerNode riser;
  for (int round = 0; round < 3; ++round) {
    riser.deadline = 15;  // below 20, its parent once appended
    heap.push(&riser);
    EXPECT_EQ(heap.size(), 6u);
    heap.remove(&riser);
    EXPECT_FALSE(riser.queued());
    EXPECT_EQ(heap.size(), 5u);
  }
  for (int i = 0; i < 5; ++i) {
    fern::TimerNode* n = heap.pop_expired(100);
    ASSERT_EQ(n, &nodes[i]);
  }
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeap, MatchesReferenceUnderRandomOperations) {
  using Key = std::pair<Nanos, std::uint64_t>;
  std::mt19937_64 rng(20240601);
  std::vector<TimerNode> nodes(3000);
  std::set<Key> reference;
  TimerHeap heap;
  auto key = [](const TimerNode& n) { return Key{n.deadline, n.sequence}; };
  Nanos now = 0;
  for (int op = 0; op < 100000; ++op) {
    TimerNode& node = nodes[rng() % nodes.size()];
    switch (rng() % 3) {
      case 0:
        if (node.queued()) reference.erase(key(node));
        node.deadline = now + static_cast<Nanos>(rng() % 500);
        heap.push(&node);
        reference.insert(key(node));
        break;
      case 1:
        if (node.queued()) reference.erase(key(node));
        heap.remove(&node);
        break;
      default: {
        now += static_cast<Nanos>(rng() % 20);
        for (TimerNode* popped = heap.pop_expired(now); popped; popped = heap.pop_expired(now)) {
          ASSERT_FALSE(reference.empty());
          ASSERT_EQ(key(*popped), *reference.begin()) << "op " << op;
          ASSERT_FALSE(popped->queued());
          reference.erase(reference.begin());
        }
        ASSERT_TRUE(reference.empty() || reference.begin()->first > now);
      }
    }
    ASSERT_EQ(heap.size(), reference.size()) << "op " << op;
    if (!reference.empty()) {
      ASSERT_EQ(key(*heap.top()), *reference.begin()) << "op " << op;
    }
  }
  std::size_t queued = 0;
  for (const auto& node : nodes) queued += node.queued();
  EXPECT_EQ(queued, reference.size());
}

TEST(Clock, SecondsToNanosRoundsUpToWholeNanoseconds) {
  EXPECT_EQ(seconds_to_nanos(1e-9), 1);
  EXPECT_EQ(seconds_to_nanos(1.5e-9), 2);
  EXPECT_EQ(seconds_to_nanos(1e-12), 1);
  EXPECT_EQ(seconds_to_nanos(0.001), 1000000);
  EXPECT_EQ(seconds_to_nanos(0.067), 67000000);
  EXPECT_EQ(seconds_to_nanos(2.5), 2500000000);
}

TEST(Clock, SecondsToNanosMapsNegativeAndNanToZero) {
  EXPECT_EQ(seconds_to_nanos(0.0), 0);
  EXPECT_EQ(seconds_to_nanos(-1.0), 0);
  EXPECT_EQ(seconds_to_nanos(-std::numeric_limits<double>::infinity()), 0);
  EXPECT_EQ(seconds_to_nanos(std::nan("")), 0);
}

TEST(Clock, SecondsToNanosSaturatesHugeValues) {
  constexpr Nanos kMax = std::numeric_limits<Nanos>::max();
  EXPECT_EQ(seconds_to_nanos(1e30), kMax);
  EXPECT_EQ(seconds_to_nanos(9.3e9), kMax);
  EXPECT_EQ(seconds_to_nanos(std::numeric_limits<double>::infinity()), kMax);
}

}  // namespace
}  // namespace fern
