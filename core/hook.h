#pragma once
// The one intrusive node type for everything the hub queues or arms:
// callbacks, timers, parked waiters, fd watchers and their cancel nodes.
//
// A Hook knows the container that holds it (a HookList or the timer heap)
// and leaves it in its destructor, so a node that lives on a greenlet's stack
// or inside a user object can never be reached after its owner is gone, and
// no call site unlinks by hand. Linking a hook that is already linked is a
// checked error: an assert in debug builds, refused (a no-op that leaves
// every container intact) in release. Containers detach their nodes when
// they go first. Not thread-safe: one thread (the hub's) owns all of them.
#include <cassert>
#include <cstddef>

namespace fern {
class TimerHeap;
namespace detail {

class Hook;

// A container of hooks: how a hook leaves it.
struct HookHolder {
  void (*detach)(HookHolder* self, Hook* hook) noexcept = nullptr;
};

class Hook {
 public:
  Hook() noexcept = default;
  Hook(const Hook&) = delete;
  Hook& operator=(const Hook&) = delete;
  ~Hook() { unlink(); }

  bool linked() const noexcept { return holder_ != nullptr; }
  HookHolder* holder() const noexcept { return holder_; }
  // Leaves whatever container holds it; a no-op when not linked. O(1) for
  // lists, O(log n) for the timer heap.
  void unlink() noexcept {
    if (holder_) holder_->detach(holder_, this);
  }

 private:
  friend class HookList;
  friend class fern::TimerHeap;
  friend struct HookAccess;
  Hook* prev_ = nullptr;
  Hook* next_ = nullptr;
  HookHolder* holder_ = nullptr;
};

// For a holder that keeps its hooks in a structure of its own (the hub's fd
// table): marks a hook as held by it, or as free again.
struct HookAccess {
  static bool attach(Hook* h, HookHolder* holder) noexcept {
    assert(!h->linked() && "fern: a hook linked twice");
    if (h->linked()) return false;
    h->holder_ = holder;
    return true;
  }
  static void release(Hook* h) noexcept { h->holder_ = nullptr; }
  // A hook's links, for such a holder's own lists.
  static Hook*& prev(Hook* h) noexcept { return h->prev_; }
  static Hook*& next(Hook* h) noexcept { return h->next_; }
};

// An intrusive doubly linked FIFO of hooks: O(1) push, pop and removal, no
// allocation. Its nodes are detached (not destroyed) when it goes.
class HookList : private HookHolder {
 public:
  HookList() noexcept { HookHolder::detach = &detach_from; }
  HookList(const HookList&) = delete;
  HookList& operator=(const HookList&) = delete;
  ~HookList() { clear(); }

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  Hook* front() const noexcept { return head_; }
  bool contains(const Hook* h) const noexcept { return h->holder_ == this; }
  // The node after h in the list that holds h, or nullptr.
  static Hook* next(const Hook* h) noexcept { return h->next_; }

  // Appends h. False (and nothing changes) when h is already linked anywhere.
  bool push_back(Hook* h) noexcept {
    assert(!h->linked() && "fern: a hook linked twice");
    if (h->linked()) return false;
    h->holder_ = this;
    h->prev_ = tail_;
    h->next_ = nullptr;
    if (tail_) tail_->next_ = h;
    else head_ = h;
    tail_ = h;
    ++size_;
    return true;
  }
  // Puts h first. False (and nothing changes) when h is already linked.
  bool push_front(Hook* h) noexcept {
    assert(!h->linked() && "fern: a hook linked twice");
    if (h->linked()) return false;
    h->holder_ = this;
    h->prev_ = nullptr;
    h->next_ = head_;
    if (head_) head_->prev_ = h;
    else tail_ = h;
    head_ = h;
    ++size_;
    return true;
  }
  // Unlinks and returns the first node, or nullptr.
  Hook* pop_front() noexcept {
    Hook* h = head_;
    if (h) remove_front();
    return h;
  }
  // Unlinks the first node; the list is not empty. remove(front()) without
  // the tests a node with a node before it needs.
  void remove_front() noexcept {
    Hook* h = head_;
    assert(h && h->holder_ == this);
    head_ = h->next_;
    if (head_) head_->prev_ = nullptr;
    else tail_ = nullptr;
    h->next_ = nullptr;
    h->holder_ = nullptr;
    --size_;
  }
  // Unlinks h, which this list holds.
  void remove(Hook* h) noexcept {
    assert(h->holder_ == this);
    if (h->prev_) h->prev_->next_ = h->next_;
    else head_ = h->next_;
    if (h->next_) h->next_->prev_ = h->prev_;
    else tail_ = h->prev_;
    h->prev_ = h->next_ = nullptr;
    h->holder_ = nullptr;
    --size_;
  }
  // Moves every node of `other` to the back of this list, in order. O(n):
  // each node learns its new holder.
  void splice_back(HookList& other) noexcept {
    while (Hook* h = other.pop_front()) push_back(h);
  }
  void clear() noexcept {
    while (pop_front()) {
    }
  }

 private:
  static void detach_from(HookHolder* self, Hook* h) noexcept { static_cast<HookList*>(self)->remove(h); }

  Hook* head_ = nullptr;
  Hook* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail
}  // namespace fern
