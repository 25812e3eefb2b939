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
#include <vector>

#include "fern/core/hub.h"

namespace fern::detail {

// One parked greenlet. Lives on that greenlet's stack while it waits and is
// a Hook: it leaves the list by itself on every exit path.
struct WaitNode : Hook {
  std::uint64_t seq = 0;  // arrival order: a notification round covers seq < its bound
  Waiter waiter;
  bool notified = false;  // set by the primitive right before it wakes the node
};

// A FIFO of parked greenlets: O(1) push, pop and removal, no allocation.
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  // Nodes still parked are detached (left waiting for their timeout or a kill).

  bool empty() const noexcept { return list_.empty(); }
  std::size_t size() const noexcept { return list_.size(); }
  WaitNode* front() const noexcept { return static_cast<WaitNode*>(list_.front()); }
  // The seq the next pushed node will get: a round that starts now covers
  // exactly the nodes with a smaller seq.
  std::uint64_t next_seq() const noexcept { return next_seq_; }

  void push_back(WaitNode* n) noexcept {
    if (list_.push_back(n)) n->seq = next_seq_++;
  }
  // nullptr when empty.
  WaitNode* pop_front() noexcept { return static_cast<WaitNode*>(list_.pop_front()); }
  void remove(WaitNode* n) noexcept {
    if (list_.contains(n)) list_.remove(n);
  }

 private:
  HookList list_;
  std::uint64_t next_seq_ = 0;
};

// Parks the calling greenlet on `node` at the back of `list` until the
// primitive notifies it (returns true), the deadline passes (false; never:
// no timer, so a deadlock ends in LoopExit) or an exception is thrown in
// (kill, Timeout, LoopExit: propagates). The node is off the list on every
// exit (its destructor). Blocks: switches to the hub. Not in the hub.
// `what` and `object` name the wait for dump_greenlets and gdb.
inline bool park(WaitList& list, WaitNode& node, Deadline deadline, const char* what = nullptr,
                 const void* object = nullptr) {
  list.push_back(&node);
  Hub::current().park(node.waiter, deadline, what, object);
  node.unlink();  // timed out: leave the list now, before anything else runs
  return node.notified;
}

// From the hub only: marks a node the caller already took off its list as
// notified and switches into its greenlet; returns when that greenlet
// blocks again or ends.
inline void notify(WaitNode& node) {
  node.notified = true;
  node.waiter.wake();
}

// Tells code that switches into user code from inside an object (a hand-off
// loop in the hub) whether the object survived the switch: the woken
// greenlet may destroy it. The object owns a Liveness; each loop holds a
// Guard and checks gone() after every switch. Guards nest.
class Liveness {
 public:
  Liveness() = default;
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;
  ~Liveness() {
    for (Guard* g = top_; g; g = g->below_) g->gone_ = true;
  }

  class Guard {
   public:
    // The owner points at the guard only while the guard lives (its
    // destructor unlinks it): GCC's dangling-pointer warning is wrong here.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
    explicit Guard(Liveness& l) noexcept : owner_(&l), below_(l.top_) { l.top_ = this; }
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#  pragma GCC diagnostic pop
#endif
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() {
      if (!gone_) owner_->top_ = below_;
    }
    bool gone() const noexcept { return gone_; }

   private:
    friend class Liveness;
    Liveness* owner_;
    Guard* below_;
    bool gone_ = false;
  };

 private:
  Guard* top_ = nullptr;
};

// gevent's rawlink list of a primitive: callbacks by id, run from its
// Notifier. A callback may unlink others or itself while they run. A link
// added with a holder (where its adder keeps the id) has the holder zeroed
// when the primitive goes first: the adder then knows there is nothing to
// unlink (IWait over an Event destroyed meanwhile).
template <class Fn>
class RawLinks {
 public:
  RawLinks() = default;
  RawLinks(const RawLinks&) = delete;
  RawLinks& operator=(const RawLinks&) = delete;
  ~RawLinks() {
    for (Link& l : links_)
      if (l.holder) *l.holder = 0;
  }
  bool empty() const noexcept { return links_.empty(); }
  std::size_t add(Fn fn, std::size_t* holder = nullptr) {
    links_.push_back(Link{next_id_, std::move(fn), holder});
    return next_id_++;
  }
  void remove(std::size_t id) noexcept {
    for (auto it = links_.begin(); it != links_.end(); ++it) {
      if (it->id == id) {
        links_.erase(it);
        return;
      }
    }
  }
  // Calls run(fn) for each link present now and still linked when its turn
  // comes, while more() holds; stops when `gone` (the owner was destroyed).
  template <class More, class Run>
  void run_each(const bool& gone, More&& more, Run&& run) {
    std::vector<std::size_t> ids;
    for (const Link& l : links_) ids.push_back(l.id);
    for (std::size_t id : ids) {
      if (!more()) return;
      for (const Link& l : links_) {
        if (l.id != id) continue;
        Fn fn = l.fn;  // the link may remove itself while it runs
        run_guarded("a rawlink", [&] { run(fn); });
        break;
      }
      if (gone) return;
    }
  }

 private:
  struct Link {
    std::size_t id;
    Fn fn;
    std::size_t* holder;
  };
  std::vector<Link> links_;
  std::size_t next_id_ = 1;
};

// A primitive's wake-up round (a RoundNode): at most one queued at a time.
// Because each wake switches into user code, the primitive may be destroyed
// while its round runs (a woken greenlet returns and drops it: gevent's
// refcounts have no C++ analogue); the round then stops without touching
// it (its node leaves the queue by itself, and a running round sees `gone`).
class Notifier : private RoundNode {
 public:
  // step(owner, first): the next wake of the round (see RoundNode);
  // finish(owner, gone): after the last wake, in the hub (null: nothing to
  // do); it may switch (rawlinks) and must stop when `gone` becomes true.
  using Step = Waiter* (*)(void* owner, bool first);
  using Finish = void (*)(void* owner, const bool& gone);
  using HasLinks = bool (*)(const void* owner);  // finish may switch (rawlinks)
  Notifier(void* owner, Step step, Finish finish, HasLinks has_links = nullptr) noexcept {
    RoundNode::owner = owner;
    RoundNode::step = step;
    RoundNode::finish = finish;
    RoundNode::finish_switches = has_links;
  }

  // Queues the round unless it is queued or running. No switch.
  void schedule() noexcept {
    if (!Callback::queued() && !gone) Hub::current().schedule(this);
  }
  // From finish: run once more after this round (for waiters that arrived
  // during it and must queue behind, SEMANTICS F8).
  void run_again() noexcept { again = true; }
  bool queued() const noexcept { return Callback::queued(); }
  bool pending() const noexcept { return Callback::queued() || gone != nullptr; }
};

}  // namespace fern::detail
