#pragma once
// The timer heap: intrusive, no allocation per timer, ordered by
// (deadline, sequence) so that equal deadlines fire in creation order.
//
// A TimerNode lives inside its owner (a sleeping greenlet's waiter, a
// Timeout, a spawn_later). The heap holds pointers to nodes; each node
// knows its slot, so cancel is O(log n) without searching.
#include <cstddef>
#include <cstdint>

#include "fern/core/clock.h"

namespace fern {

struct TimerNode {
  Nanos deadline = 0;
  std::uint64_t sequence = 0;      // assigned by push(): creation order for ties
  std::size_t slot = kNotQueued;   // index in the heap, or kNotQueued
  static constexpr std::size_t kNotQueued = ~std::size_t{0};
  bool queued() const noexcept { return slot != kNotQueued; }
};

class TimerHeap {
 public:
  TimerHeap() = default;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;
  ~TimerHeap();

  // Queues node with its deadline. O(log n). The slot array grows only
  // when the number of queued timers reaches a new high-water mark.
  void push(TimerNode* node);
  // Unqueues node if queued. O(log n).
  void remove(TimerNode* node) noexcept;
  // The earliest node, or nullptr. O(1).
  TimerNode* top() const noexcept { return size_ ? entries_[0].node : nullptr; }
  // Unqueues and returns the earliest node if its deadline <= now, else nullptr.
  TimerNode* pop_expired(Nanos now) noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // Makes room for n timers up front.
  void reserve(std::size_t n);

 private:
  struct Entry {
    Nanos deadline;   // cached beside the pointer: sift compares touch no node
    TimerNode* node;
  };
  Entry* entries_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace fern
