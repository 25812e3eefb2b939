#pragma once
// The machinery every sync/ primitive shares (gevent's AbstractLinkable):
// a FIFO of greenlets parked on one-shot Waiters, the one way to park on it,
// and the single hub callback through which a primitive wakes its waiters.
//
// Rules (SEMANTICS F7-F9, TO-10, STYLE "hub/waiter pattern"):
//   - set()/put()/release() never switch: they schedule the primitive's
//     Notifier, a hub callback;
//   - the Notifier runs in the hub and wakes waiters FIFO; each wake switches
//     into the waiter, which runs until it blocks again (as gevent's
//     Waiter.switch does), so a woken greenlet acts on the primitive before
//     the next one is considered;
//   - a parked greenlet leaves the list on every exit path (notified, timed
//     out, killed, Timeout, LoopExit), so nothing handed out is lost.
// Everything here belongs to one thread: the thread of the hub it runs on.
#include <cstddef>
#include <cstdint>

#include "fern/core/hub.h"

namespace fern::detail {

// One parked greenlet. Lives on that greenlet's stack while it waits.
struct WaitNode {
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  std::uint64_t seq = 0;  // arrival order: a notification round covers seq < its bound
  Waiter waiter;
  bool linked = false;
  bool notified = false;  // set by the primitive right before it wakes the node
};

// Intrusive doubly linked FIFO: O(1) push, pop and removal, no allocation.
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  // Nodes still parked are unlinked (left waiting for their timeout or a kill).
  ~WaitList() { detach_all(); }

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  WaitNode* front() const noexcept { return head_; }
  // The seq the next pushed node will get: a round that starts now covers
  // exactly the nodes with a smaller seq.
  std::uint64_t next_seq() const noexcept { return next_seq_; }

  void push_back(WaitNode* n) noexcept {
    n->prev = tail_;
    n->next = nullptr;
    n->seq = next_seq_++;
    n->linked = true;
    if (tail_) tail_->next = n;
    else head_ = n;
    tail_ = n;
    ++size_;
  }
  // No-op when not linked.
  void remove(WaitNode* n) noexcept {
    if (!n->linked) return;
    if (n->prev) n->prev->next = n->next;
    else head_ = n->next;
    if (n->next) n->next->prev = n->prev;
    else tail_ = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
    --size_;
  }
  // nullptr when empty.
  WaitNode* pop_front() noexcept {
    WaitNode* n = head_;
    if (n) remove(n);
    return n;
  }
  void detach_all() noexcept {
    while (pop_front()) {
    }
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
  std::size_t size_ = 0;
  std::uint64_t next_seq_ = 0;
};

// Parks the calling greenlet on `node` at the back of `list` until the
// primitive notifies it (returns true), `timeout` seconds pass (false;
// timeout < 0: no limit and no timer, so a deadlock ends in LoopExit) or an
// exception is thrown in (kill, Timeout, LoopExit: propagates). The node is
// off the list on every exit. Blocks: switches to the hub. Not in the hub.
// Inline: every call level between the switch and the caller costs a
// mispredicted return after each switch.
inline bool park(WaitList& list, WaitNode& node, double timeout) {
  list.push_back(&node);
  // A primitive destroyed while we wait has detached us (linked is false):
  // then the list must not be touched.
  struct Unlink {
    WaitList& list;
    WaitNode& node;
    ~Unlink() {
      if (node.linked) list.remove(&node);
    }
  } unlink{list, node};
  if (timeout < 0) {
    node.waiter.wait();  // no timer at all: the hub can tell nothing will wake us (LoopExit)
  } else {
    WakeTimer timer(Hub::current(), node.waiter, timeout);
    node.waiter.wait();
  }
  return node.notified;
}

// From the hub only: marks a node the caller already took off its list as
// notified and switches into its greenlet; returns when that greenlet
// blocks again or ends.
inline void notify(WaitNode& node) {
  node.notified = true;
  node.waiter.wake();
}

// A primitive's wake-up callback: at most one queued at a time. Because each
// wake switches into user code, the primitive may be destroyed while its
// callback runs (a woken greenlet returns and drops it: gevent's refcounts
// have no C++ analogue); the callback then sees `gone` and must return
// without touching the primitive again.
class Notifier : private Callback {
 public:
  // fn(owner, gone) runs in the hub; after each wake it checks `gone`.
  using Fn = void (*)(void* owner, const bool& gone);
  Notifier(void* owner, Fn run) noexcept : owner_(owner), run_(run) { Callback::fn = &fire; }
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  ~Notifier();

  // Queues the callback unless it is queued or running. No switch.
  void schedule() noexcept {
    if (!Callback::queued && !gone_) Hub::current().schedule(this);
  }
  // From inside fn: run once more after this run (for waiters that arrived
  // during it and must queue behind, SEMANTICS F8).
  void run_again() noexcept { again_ = true; }
  bool queued() const noexcept { return Callback::queued; }
  bool running() const noexcept { return gone_ != nullptr; }
  bool pending() const noexcept { return Callback::queued || gone_ != nullptr; }

 private:
  static void fire(Callback* cb);

  void* owner_;
  Fn run_;
  bool* gone_ = nullptr;  // the running callback's flag, while it runs
  bool again_ = false;
};

}  // namespace fern::detail
