#pragma once
// Group and Pool (gevent.pool): sets of tasks, with waiting, killing and
// map-style helpers; a Pool also bounds how many run at once.
//
// Mapping from gevent:
//   Group(), Pool(size=None)        Group, Pool(size): std::nullopt (default) = unbounded;
//                                   negative -> std::invalid_argument; 0 = always full (PL-5)
//   g.add(gl), g.discard(gl)        add(task), discard(task); a full pool: add blocks
//   g.add(gl, blocking=False)       try_add(task) -> bool (false: full; gevent raises PoolFull)
//   g.add(gl, timeout=s)            add_for(task, d) / add_until(task, deadline) -> bool
//   len(g), gl in g, g.greenlets    size(), contains(task), members()
//   g.spawn(f, *args)               spawn(f, args...) -> Task<R>; blocks while a Pool is full (F15)
//   g.start(gl[, blocking, timeout])  start(task), try_start(task), start_for(task, d) -> bool
//   g.join()                        join()
//   g.join(timeout, raise_error)    join_for(d) -> bool empty, join(JoinAll().within(d).raise_error())
//   g.kill(exc, block, timeout)     kill(error) (waits), kill_for(d, error) -> bool empty,
//                                   kill_async(error)
//   g.killone(gl, exc, block, t)    killone(task, error), killone_for(task, d, error),
//                                   killone_async(task, error) -> bool dead
//   g.map(f, it)                    map(f, inputs) -> std::vector<R>, input order (PL-4)
//   g.imap(f, it) / imap_unordered  imap(f, inputs) / imap_unordered(f, inputs) -> IMap<R>:
//                                   next() -> std::optional<R>, or range-for (PL-4, PL-7)
//   g.apply(f, args)                apply(f, args...): a member calls f directly (PL-4)
//   g.apply_async(f, args, kw, cb)  apply_async(f, args...) / apply_async_cb(cb, f, args...)
//   g.full(), free_count(), wait_available(timeout)   same names (wait_available_for(d));
//                                   an unbounded Pool's
//                                   free_count() is SIZE_MAX (gevent says 1)
// A member leaves when it ends, through a link that runs in the hub after
// it ends (so a Pool slot frees only then, PL-6). A Group must outlive the
// tasks, IMaps and apply_async wrappers that use it. One thread: the hub's.
#include <cstddef>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fern/core/task.h"
#include "fern/sync/event.h"
#include "fern/sync/imap.h"
#include "fern/sync/semaphore.h"

namespace fern {

// Pool::add (or spawn) found no free slot in time, or without blocking.
class PoolFull : public std::runtime_error {
 public:
  PoolFull() : std::runtime_error("fern: pool is full") {}
};

class Group : public detail::IMapFront<Group> {
 public:
  Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  // Forgets the members (unlinks them); they keep running.
  virtual ~Group();

  // Makes task a member until it ends (PL-1); a member already: no-op,
  // true. A Group never blocks; a full Pool blocks (switches to the hub) up
  // to the deadline and returns false (nothing added) when it passed (PL-6).
  virtual bool add_until(const AnyTask& task, Deadline deadline);
  void add(const AnyTask& task) { add_until(task, Deadline::never()); }
  bool add_for(const AnyTask& task, Duration d) { return add_until(task, d.from_now()); }
  // Without blocking: false when the pool is full.
  bool try_add(const AnyTask& task) { return add_until(task, Deadline::at(0)); }
  // Stops tracking task (no-op if not a member); never switches.
  void discard(const AnyTask& task);
  template <class R>
  void discard(const Task<R>& task) {
    discard(task.core());
  }

  std::size_t size() const noexcept { return members_.size(); }
  bool contains(const AnyTask& task) const { return index_.count(task.get()) != 0; }
  template <class R>
  bool contains(const Task<R>& task) const {
    return contains(task.core());
  }
  // Whether the calling greenlet is a member's (apply runs f inline then).
  bool contains_current() const;
  // The members, in the order they were added.
  std::vector<AnyTask> members() const;

  // add(task) (blocking while a Pool is full), then task->start(). The
  // bounded forms return false (task neither added nor started) when no
  // slot came in time.
  bool start_until(const AnyTask& task, Deadline deadline) {
    if (!add_until(task, deadline)) return false;
    task->start();
    return true;
  }
  void start(const AnyTask& task) { start_until(task, Deadline::never()); }
  bool start_for(const AnyTask& task, Duration d) { return start_until(task, d.from_now()); }
  bool try_start(const AnyTask& task) { return start_until(task, Deadline::at(0)); }
  // Creates f(args...) as a task, adds it (blocking while a Pool is full,
  // F15) and starts it; it runs once the caller blocks (F1).
  template <class F, class... Args>
  Task<TaskResult<F, Args...>> spawn(F&& fn, Args&&... args) {
    auto task = Task<TaskResult<F, Args...>>::create(std::forward<F>(fn), std::forward<Args>(args)...);
    start(task.core());
    return task;
  }

  // Blocks (switches to the hub) until there are no members (at once when
  // empty), up to the options' deadline; true when empty (PL-2). With
  // raise_error, rethrows the first failure among those that were members.
  bool join(const JoinAll& options);
  void join() { join(JoinAll()); }
  bool join_for(Duration d) { return join(JoinAll().within(d)); }
  bool join_until(Deadline deadline) { return join(JoinAll().until(deadline)); }
  // Kills every member once (error: default GreenletExit; repeated calls do
  // not kill a member twice) and waits for them to end, killing members
  // added meanwhile too; kill_for waits up to d, kill_async not at all.
  // True when empty (PL-3).
  bool kill(std::exception_ptr error = nullptr) { return kill_until(Deadline::never(), std::move(error)); }
  bool kill_for(Duration d, std::exception_ptr error = nullptr) { return kill_until(d.from_now(), std::move(error)); }
  bool kill_async(std::exception_ptr error = nullptr);
  // Kills one member unless it is already being killed by this group (then,
  // and for a non-member, nothing happens and nothing is awaited); waits for
  // it to die (killone_for: up to d). True if dead.
  bool killone(const AnyTask& task, std::exception_ptr error = nullptr) {
    return killone_until(task, Deadline::never(), std::move(error));
  }
  bool killone_for(const AnyTask& task, Duration d, std::exception_ptr error = nullptr) {
    return killone_until(task, d.from_now(), std::move(error));
  }
  bool killone_async(const AnyTask& task, std::exception_ptr error = nullptr);

  // A Group is never full; a Pool is when its size is reached.
  virtual bool full() const noexcept { return false; }
  virtual std::size_t free_count() const noexcept;
  // Blocks until a slot is free or the deadline; the number of free slots
  // (0 on timeout). A Group returns at once.
  virtual long wait_available_until(Deadline deadline);
  long wait_available() { return wait_available_until(Deadline::never()); }
  long wait_available_for(Duration d) { return wait_available_until(d.from_now()); }

  // f(x) for each input in a member task; the results in input order. Spawns
  // (blocking while a Pool is full), then waits; rethrows the first failure
  // in input order (PL-4, PL-7).
  template <class F, class Range>
  auto map(F fn, const Range& inputs) {
    using R = TaskResult<F, typename Range::value_type>;
    static_assert(!std::is_void_v<R>, "fern: map needs a function that returns a value");
    std::vector<Task<R>> tasks;
    for (const auto& x : inputs) tasks.push_back(spawn(fn, x));
    std::vector<R> out;
    out.reserve(tasks.size());
    for (auto& t : tasks) out.push_back(t.get());
    return out;
  }
  // imap / imap_unordered (detail::IMapFront): lazy map, results in input
  // order or completion order. Returns at once; a feeder task spawns the members.
  // maxsize > 0 bounds the results buffered ahead of the consumer: the
  // feeder waits before spawning more (PL-8).
  // The inputs are read by the feeder as it goes (PL-4): a copyable range
  // is copied (an rvalue moved), a non-copyable one (a Queue or Channel of
  // std::optional items, read until std::nullopt) is used in place and must
  // outlive the feeder. An exception from the input's iterator ends the
  // results after those of the inputs before it (PL-7).

  // f(args...) in a member, waiting for its result; called directly when
  // the caller is already a member, so nesting cannot deadlock (PL-4).
  template <class F, class... Args>
  TaskResult<F, Args...> apply(F&& fn, Args&&... args) {
    if (contains_current()) return std::invoke(std::forward<F>(fn), std::forward<Args>(args)...);
    return spawn(std::forward<F>(fn), std::forward<Args>(args)...).get();
  }
  // f(args...) in a member, without waiting. Never blocks: when full, the
  // returned task is a non-member that calls apply() (gevent does the same).
  template <class F, class... Args>
  Task<TaskResult<F, Args...>> apply_async(F fn, Args... args) {
    if (full()) return fern::spawn([this, fn, args...]() mutable { return apply(fn, args...); });
    return spawn(std::move(fn), std::move(args)...);
  }
  // apply_async that then calls callback(result) (callback() for void) on
  // success: in the hub from a link, or in the wrapper task when full.
  template <class Callback, class F, class... Args>
  Task<TaskResult<F, Args...>> apply_async_cb(Callback callback, F fn, Args... args);

 protected:
  // Called when a member leaves (its end, discard): a Pool frees a slot.
  virtual void on_removed() noexcept {}
  // Adds without any capacity check (the Pool checked).
  void add_member(const AnyTask& task);

 private:
  struct Member {
    AnyTask task;
    TaskBase::LinkId link = 0;
    bool dying = false;
  };
  void remove(TaskBase* task, bool unlink);
  bool kill_until(Deadline deadline, std::exception_ptr error);
  bool killone_until(const AnyTask& task, Deadline deadline, std::exception_ptr error);
  bool mark_dying(const AnyTask& task);
  friend class detail::IMapFront<Group>;
  template <class F, class Range>
  auto make_imap(F fn, Range&& inputs, bool ordered, std::size_t maxsize);

  std::list<Member> members_;
  std::unordered_map<TaskBase*, std::list<Member>::iterator> index_;
  Event empty_;  // set while there are no members
};

class Pool : public Group {
 public:
  // At most `size` members; std::nullopt: unbounded. Negative throws
  // std::invalid_argument; 0 is always full (PL-5).
  explicit Pool(std::optional<long> size = std::nullopt);

  // As Group::add, waiting for a slot first (PL-6).
  bool add_until(const AnyTask& task, Deadline deadline) override;
  bool full() const noexcept override { return free_count() == 0; }
  std::size_t free_count() const noexcept override;
  long wait_available_until(Deadline deadline) override;
  // The size given to the constructor.
  std::optional<long> capacity() const noexcept { return capacity_; }

 private:
  void on_removed() noexcept override;

  std::optional<long> capacity_;
  std::optional<Semaphore> slots_;  // empty when unbounded
};

namespace detail {
// call(), then callback(its result) (callback() for void); returns the
// result. An exception from call() skips the callback (apply_async_cb).
template <class Callback, class Call>
auto call_then(Callback& callback, Call&& call) {
  using R = decltype(call());
  if constexpr (std::is_void_v<R>) {
    call();
    callback();
  } else {
    R result = call();
    callback(result);
    return result;
  }
}
}  // namespace detail

template <class Callback, class F, class... Args>
Task<TaskResult<F, Args...>> Group::apply_async_cb(Callback callback, F fn, Args... args) {
  using R = TaskResult<F, Args...>;
  if (full()) {
    return fern::spawn([this, callback, fn, args...]() mutable -> R {
      return detail::call_then(callback, [&] { return apply(fn, args...); });
    });
  }
  Task<R> task = spawn(std::move(fn), std::move(args)...);
  task->link_value([callback](TaskBase& t) mutable {
    if constexpr (std::is_void_v<R>) {
      (void)t;
      callback();
    } else {
      callback(detail::task_value<R>(t));
    }
  });
  return task;
}

template <class F, class Range>
auto Group::make_imap(F fn, Range&& inputs, bool ordered, std::size_t maxsize) {
  using X = detail::RangeItem<Range>;
  using R = TaskResult<F, X>;
  static_assert(!std::is_void_v<R>, "fern: imap needs a function that returns a value");
  auto state = std::make_shared<detail::IMapState<R>>(ordered, maxsize);
  // The feeder reads the input and blocks in spawn() while a Pool is full;
  // the consumer meanwhile takes results as they come (gevent's IMap
  // greenlet).
  auto feeder = fern::spawn([this, state, fn = std::move(fn),
                             feed = detail::FeedRange<Range>(std::forward<Range>(inputs))]() mutable {
    for (auto&& x : feed.get()) {
      if (state->bound) state->bound->acquire();  // PL-8: wait for the consumer
      Task<R> task = spawn(fn, X(std::forward<decltype(x)>(x)));
      task->link([state, i = state->spawned](TaskBase& t) { state->finished(i, t); });
      ++state->spawned;
    }
  });
  feeder->link([state](TaskBase& t) { state->feeder_ended(t); });
  return IMap<R>(std::move(state), feeder.core());
}

}  // namespace fern
