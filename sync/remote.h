#pragma once
// Cross-thread use of a primitive (SEMANTICS EV-9, LK-7): another OS thread
// sets an Event or AsyncResult, releases a Semaphore or puts on a Queue of
// this thread, and the greenlets waiting on it wake in this thread's hub.
//
//   fern::Event done;                      // on the waiting thread
//   auto remote = done.remote();           // there too: a handle for others
//   std::thread worker([remote] { work(); remote.set(); });
//   done.wait();                           // wakes when the worker sets it
//
// gevent lets set() itself be called from any thread. fern asks for a
// handle instead, so that the single-thread paths stay free of thread checks
// and locks, and so that lifetimes stay structural: a handle posts the
// operation to the primitive's hub (its RemoteQueue, the hub's cross-thread
// door), where it runs in a callback exactly as if called there (no switch
// inline, FIFO wake-ups). An operation that arrives after the primitive was
// destroyed is dropped; one posted after its hub is gone is refused (false).
// While any handle of a primitive exists, its hub's loop stays alive (as for
// thread-pool work, a referenced timer that never fires), so a greenlet
// waiting for another thread does not get LoopExit.
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "fern/core/hub.h"
#include "fern/core/task.h"

namespace fern {
namespace detail {

// Shared by a primitive and its handles. `target`, `hold`, `backlog` and
// `putter` are touched on the primitive's thread only (in the hub's
// callbacks, the putter and the primitive); other threads touch `handles`
// and post through `door`.
struct RemoteAnchor {
  void* target = nullptr;  // the primitive, null once it is gone
  std::shared_ptr<RemoteQueue> door;
  std::atomic<long> handles{0};
  Timer hold;  // armed while handles exist: the hub waits for them
  // Queue puts that found no room, in arrival order, each left first in
  // line until stored; a later put waits behind them (Remote::put). The
  // putter stores them one by one, and ends when none is left.
  std::deque<std::function<void(void*)>> backlog;
  AnyTask putter;
};

// The primitive's side: made by the first remote(), cut by the primitive's
// destructor (on its thread, where every posted operation also runs).
class RemoteHome {
 public:
  RemoteHome() = default;
  RemoteHome(const RemoteHome&) = delete;
  RemoteHome& operator=(const RemoteHome&) = delete;
  ~RemoteHome() {
    if (anchor_) {
      anchor_->target = nullptr;
      anchor_->hold.unlink();
      // Parked on this primitive, which no longer wakes it: it ends, and
      // the items left in the backlog are dropped with it.
      if (AnyTask putter = std::move(anchor_->putter)) putter->kill_async();
    }
  }
  // The primitive's thread: one more handle on `target`.
  std::shared_ptr<RemoteAnchor> acquire(void* target) {
    if (!anchor_) {
      anchor_ = std::make_shared<RemoteAnchor>();
      anchor_->target = target;
      anchor_->door = Hub::current().remote();
      anchor_->hold.fn = [](Timer*) {};
    }
    anchor_->handles.fetch_add(1, std::memory_order_relaxed);
    if (!anchor_->hold.linked()) Hub::current().start_timer(&anchor_->hold, Deadline::never());
    return anchor_;
  }

 private:
  std::shared_ptr<RemoteAnchor> anchor_;
};

}  // namespace detail

// A handle through which any thread acts on primitive P of another thread
// (made by P::remote() on P's thread). Copyable; copies count as handles.
// Each operation returns at once: false when P's hub is gone (nothing done),
// true when posted (done in P's hub soon, unless P is gone by then).
template <class P>
class Remote {
 public:
  Remote() = default;
  explicit Remote(std::shared_ptr<detail::RemoteAnchor> anchor) noexcept : anchor_(std::move(anchor)) {}
  Remote(const Remote& other) noexcept : anchor_(other.anchor_) {
    if (anchor_) anchor_->handles.fetch_add(1, std::memory_order_relaxed);
  }
  Remote(Remote&& other) noexcept = default;
  Remote& operator=(Remote other) noexcept {
    std::swap(anchor_, other.anchor_);
    return *this;
  }
  ~Remote() { drop(); }

  explicit operator bool() const noexcept { return anchor_ != nullptr; }

  // Runs op(primitive) in the primitive's hub, in a callback (it must not block).
  bool post(std::function<void(P&)> op) const {
    if (!anchor_) return false;
    return anchor_->door->post([a = anchor_, op = std::move(op)] {
      if (a->target) op(*static_cast<P*>(a->target));
    });
  }

  // Event, AsyncResult<void>: set(). AsyncResult<T>: set(value), set_exception(e).
  bool set() const {
    return post([](P& p) { p.set(); });
  }
  template <class U>
  bool set(U value) const {
    return post([v = std::make_shared<U>(std::move(value))](P& p) { p.set(std::move(*v)); });
  }
  bool set_exception(std::exception_ptr error) const {
    return post([error](P& p) { p.set_exception(error); });
  }
  // Semaphore: release().
  bool release() const {
    return post([](P& p) { p.release(); });
  }
  // Queue: put(item). Stored at once when there is room and no earlier
  // remote put is still waiting for it; else it joins those (the handles'
  // backlog), which one task stores in arrival order, each waiting for room
  // as Q-2's put does: the items of one thread arrive in its order. A queue
  // shut down by then drops the item (Q-13: there is no caller left to
  // throw QueueShutDown to), and so does a queue destroyed meanwhile.
  template <class U>
  bool put(U item) const {
    return post([v = std::make_shared<U>(std::move(item)), a = anchor_](P& p) {
      if (p.is_shut_down()) return;
      if (a->backlog.empty() && p.try_put(std::move(*v))) return;
      a->backlog.push_back([v](void* target) {
        try {
          static_cast<P*>(target)->put(std::move(*v));
        } catch (const typename P::ShutDown&) {
        }
      });
      if (!a->putter) a->putter = spawn([a] { store_backlog(*a); }).core();
    });
  }

 private:
  // The putter's body: the backlog's items, first to last, into the queue
  // while it is there (each leaves the backlog once stored, so that a put
  // arriving meanwhile queues behind it). However it ends (done, the queue
  // gone, killed), what is left is dropped and a new put starts a new one.
  static void store_backlog(detail::RemoteAnchor& a) {
    struct End {
      detail::RemoteAnchor& a;
      ~End() {
        a.backlog.clear();
        a.putter = AnyTask();
      }
    } end{a};
    while (!a.backlog.empty() && a.target) {
      a.backlog.front()(a.target);
      a.backlog.pop_front();
    }
  }

  // The last handle lets the hub's loop go (on the hub's thread).
  void drop() noexcept {
    if (!anchor_) return;
    std::shared_ptr<detail::RemoteAnchor> a = std::move(anchor_);
    if (a->handles.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    auto door = a->door;
    try {
      door->post([a] {
        if (a->handles.load(std::memory_order_acquire) == 0) a->hold.unlink();
      });
    } catch (...) {
      // Out of memory: the hold stays until the primitive or its hub goes.
    }
  }

  std::shared_ptr<detail::RemoteAnchor> anchor_;
};

}  // namespace fern
