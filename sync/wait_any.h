#pragma once
// Waiting on several objects at once (gevent.wait / gevent.iwait, HUB-13).
//
// Mapping from gevent:
//   gevent.wait(objects)                    fern::wait({a, b, c}) -> indices of the ready ones
//   gevent.wait(objects, timeout, count)    fern::wait({..}, WaitAny().within(d).count(n))
//   gevent.wait()  (no objects)             Hub::current().run_until_idle()  (HUB-6)
//   for x in gevent.iwait(objects, ...):    fern::IWait it({..}, options);
//                                           while (auto i = it.next()) ...
//   with iwait(...) as it:                  IWait unlinks from the objects not consumed when
//                                           it goes (RAII)
// An object is a task (Task<R> / AnyTask), an Event, an AsyncResult<T>, a
// Semaphore (ready while a permit is free, none taken: LK-5) or anything
// with a waitable() (a Popen: its child exited, SP-3). Results are
// indices into the list, in the order the objects became ready; those
// ready at the call come first, in list order. Each object is linked once
// (one link per object, removed on every exit path); waiting costs no
// polling. An Event, AsyncResult or Semaphore destroyed while watched is
// never ready, and nothing touches it again (its link tells the wait it
// went); a task is kept alive while watched. One thread: the hub's.
#include <cstddef>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fern/core/deadline.h"
#include "fern/core/exceptions.h"
#include "fern/core/hub.h"
#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/semaphore.h"
#include "fern/sync/wait_list.h"

namespace fern {

// A view of one waitable object (built implicitly from each kind above).
class Waitable {
 public:
  template <class R>
  Waitable(const Task<R>& task) : Waitable(task.core()) {}  // NOLINT: implicit
  Waitable(const AnyTask& task);                             // NOLINT
  Waitable(Event& event);                                     // NOLINT
  template <class T>
  Waitable(AsyncResult<T>& result)  // NOLINT
      : object_(&result),
        ready_([](void* o) { return static_cast<AsyncResult<T>*>(o)->ready(); }),
        link_([](void* o, std::function<void()> fn, std::size_t* holder) {
          return static_cast<AsyncResult<T>*>(o)->rawlink(std::move(fn), holder);
        }),
        unlink_([](void* o, std::size_t id) noexcept { static_cast<AsyncResult<T>*>(o)->unlink(id); }) {}
  Waitable(Semaphore& semaphore);  // NOLINT
  // Anything that offers one (a Popen, SP-3).
  template <class T, class = decltype(std::declval<T&>().waitable())>
  Waitable(T& object) : Waitable(object.waitable()) {}  // NOLINT

  bool ready() const { return ready_(object_); }

 private:
  friend class IWait;
  void* object_;
  AnyTask task_;  // keeps a task alive while watched
  bool (*ready_)(void*);
  // Links fn; *holder (IWait's slot for the id) is zeroed if the object
  // goes first. A task is kept alive instead (task_).
  std::size_t (*link_)(void*, std::function<void()>, std::size_t* holder);
  void (*unlink_)(void*, std::size_t) noexcept;
};

// wait()/IWait options: a deadline (within / until) and how many objects
// to wait for (count, 0: all).
struct WaitAny : detail::ManyWaitOptions<WaitAny> {};

// Yields the indices of objects as they become ready (gevent.iwait). next()
// returns at once for those already ready, else blocks (switches to the
// hub) until one is or the deadline passes (then, and after `count`
// results, empty). One greenlet waits in it at a time: a second next()
// meanwhile throws ConcurrentObjectUseError (core/exceptions.h; gevent's,
// "This Waiter is already used"). Unlinks from every object when
// destroyed; a next() waiting in it then stays parked until its deadline
// or a kill, and returns empty without touching it.
class IWait {
 public:
  IWait(std::vector<Waitable> objects, const WaitAny& options = {});
  IWait(std::initializer_list<Waitable> objects, const WaitAny& options = {})
      : IWait(std::vector<Waitable>(objects), options) {}
  IWait(const IWait&) = delete;
  IWait& operator=(const IWait&) = delete;
  ~IWait();

  std::optional<std::size_t> next();

 private:
  void became_ready(std::size_t index);

  std::vector<Waitable> objects_;
  std::vector<std::size_t> links_;  // 0: not linked
  std::deque<std::size_t> ready_;
  Waiter* waiter_ = nullptr;  // the parked next(), if any
  detail::Liveness liveness_;  // tells a parked next() that this IWait went
  Deadline deadline_;
  std::size_t remaining_;
};

// Waits until `count` (default: all) of the objects are ready or the
// deadline passes; returns the indices of the ready ones in the order they
// became ready (gevent.wait). Blocks: switches to the hub.
std::vector<std::size_t> wait(std::vector<Waitable> objects, const WaitAny& options = {});
inline std::vector<std::size_t> wait(std::initializer_list<Waitable> objects, const WaitAny& options = {}) {
  return wait(std::vector<Waitable>(objects), options);
}

}  // namespace fern
