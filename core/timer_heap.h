#pragma once
// The timer heap: intrusive, no allocation per timer, ordered by
// (deadline, sequence) so that equal deadlines fire in creation order.
//
// A TimerNode lives inside its owner (a sleeping greenlet's waiter, a
// Timeout, a spawn_later) and is a Hook: it leaves the heap when its owner
// goes. The heap holds pointers to nodes; each node knows its slot, so
// cancel is O(log n) without searching. The heap also counts its nodes that
// keep the loop alive (`ref`, HUB-7).
#include <cstddef>
#include <cstdint>

#include "fern/core/clock.h"
#include "fern/core/hook.h"

namespace fern {

struct TimerNode : detail::Hook {
  Nanos deadline = 0;
  std::uint64_t sequence = 0;      // assigned by push(): creation order for ties
  std::size_t slot = kNotQueued;   // index in the heap, or kNotQueued
  static constexpr std::size_t kNotQueued = ~std::size_t{0};
  bool queued() const noexcept { return linked(); }
  bool ref() const noexcept { return ref_; }
  // HUB-7: may change while armed; the heap's count follows.
  void set_ref(bool ref) noexcept;

 private:
  friend class TimerHeap;
  bool ref_ = true;  // keeps the loop alive while armed
};

class TimerHeap : private detail::HookHolder {
 public:
  TimerHeap() noexcept;
  TimerHeap(const TimerHeap&) = delete;
  TimerHeap& operator=(const TimerHeap&) = delete;
  ~TimerHeap();

  // Queues node with its deadline; a node already in this heap is re-keyed.
  // O(log n). The slot array grows only when the number of queued timers
  // reaches a new high-water mark. A node linked in another container is
  // refused (false; an assert in debug builds).
  bool push(TimerNode* node);
  // Unqueues node if queued here. O(log n).
  void remove(TimerNode* node) noexcept;
  // The earliest node, or nullptr. O(1).
  TimerNode* top() const noexcept { return size_ ? entries_[0].node : nullptr; }
  // Unqueues and returns the earliest node if its deadline <= now, else nullptr.
  TimerNode* pop_expired(Nanos now) noexcept;

  std::size_t size() const noexcept { return size_; }
  // Queued nodes with ref() set.
  std::size_t ref_count() const noexcept { return ref_count_; }
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
  std::size_t ref_count_ = 0;
  std::uint64_t next_sequence_ = 0;
  friend struct TimerNode;
  static void detach_from(HookHolder* self, detail::Hook* h) noexcept;
  void unqueue(TimerNode* node) noexcept;
};

}  // namespace fern
