#pragma once
// The timer heap: intrusive, no allocation per timer, ordered by
// (deadline, sequence) so that equal deadlines fire in creation order.
//
// A TimerNode lives inside its owner (a sleeping greenlet's waiter, a
// Timeout, a spawn_later) and is a Hook: it leaves the heap when its owner
// goes. The heap holds pointers to nodes; each node knows its slot, so
// cancel is O(1) without searching: the node's entry becomes a tombstone
// that no longer refers to it (so the node may go at once), skipped when it
// reaches the top and swept out in O(n) once tombstones outnumber live
// timers (amortised O(1)). A cancel of the last entry just shortens the
// array. Re-arming an armed node re-keys its entry in place. The heap also
// counts its nodes that keep the loop alive (`ref`, HUB-7).
#include <cstddef>
#include <cstdint>

#include "fern/core/clock.h"
#include "fern/core/hook.h"

namespace fern {

struct TimerNode : detail::Hook {
  Nanos deadline = 0;
  std::uint64_t sequence = 0;      // assigned by push(): creation order for ties
  std::size_t slot = kNotQueued;   // index in the heap; meaningful only while queued
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
  // Unqueues node if queued here. O(1) amortised.
  void remove(TimerNode* node) noexcept;
  // The earliest node, or nullptr (tombstones on top are dropped first).
  TimerNode* top() noexcept {
    if (size_ && entries_[0].node == &tomb_) drop_tombstones_on_top();
    return size_ ? entries_[0].node : nullptr;
  }
  // Unqueues and returns the earliest node if its deadline <= now, else nullptr.
  TimerNode* pop_expired(Nanos now) noexcept;

  // Queued (armed) nodes; tombstones do not count.
  std::size_t size() const noexcept { return size_ - tombs_; }
  // Queued nodes with ref() set.
  std::size_t ref_count() const noexcept { return ref_count_; }
  bool empty() const noexcept { return size_ == tombs_; }
  // Makes room for n timers up front.
  void reserve(std::size_t n);

 private:
  struct Entry {
    Nanos deadline;   // cached beside the pointer: sift compares touch no node
    TimerNode* node;
  };
  Entry* entries_ = nullptr;
  std::size_t size_ = 0;   // entries, tombstones included
  std::size_t tombs_ = 0;
  std::size_t capacity_ = 0;
  std::size_t ref_count_ = 0;
  std::uint64_t next_sequence_ = 1;  // 0 is the tombstone's
  friend struct TimerNode;
  // What a cancelled entry points to: sequence 0 (a tombstone sorts first
  // among equal deadlines), and its slot takes the sifts' writes.
  TimerNode tomb_;
  static void detach_from(HookHolder* self, detail::Hook* h) noexcept;
  bool push_held(TimerNode* node) noexcept;
  bool push_growing(TimerNode* node);
  void unqueue(TimerNode* node) noexcept;
  void trim_tombstones() noexcept;
  void remove_inside(std::size_t hole) noexcept;
  void pop_top() noexcept;
  void drop_tombstones_on_top() noexcept;
  void sweep() noexcept;
};

}  // namespace fern
