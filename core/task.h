#pragma once
// gevent's Greenlet: a greenlet scheduled by the hub, with a result, links,
// join/get/kill. fern calls it Task to keep Greenlet for the raw greenlet.
//
// Mapping from gevent:
//   Greenlet(f, *args) / spawn(f, *args)    Task<R>::create(f, args...) / spawn(f, args...)
//   spawn_later(s, f), g.start_later(s)     spawn_later(s, f, args...), t.start_later(s)
//   subclass overriding _run                class X : public TaskBase { void run() override; }
//                                           Task<void> t = Task<void>::adopt(std::make_shared<X>(...))
//   g.join(timeout)                         t.join(timeout) -> bool ready (gevent returns None)
//   g.get(block, timeout)                   t.get(block, timeout): the value, or rethrows the
//                                           failure; not ready in time -> throws Timeout (GV-9).
//                                           A killed Task<T> has no T: get() throws the GreenletExit.
//   g.kill(exc, block, timeout)             t.kill(exc, block, timeout) -> bool dead
//   g.value, g.exception, ready(), successful(), started, dead
//                                           t.value() (std::optional<T>), t.exception(), ...
//   link / link_value / link_exception / unlink   same names; link returns an id for unlink
//   joinall(gs, timeout, raise_error, count) joinall(tasks, timeout, raise_error, count) -> ready, in
//                                           completion order (F12)
//   killall(gs, exc, block, timeout)        killall(tasks, exc, block, timeout)
// Scheduling (SEMANTICS F1, F2, F11, F14): start() queues the first switch
// as a hub callback (lazy, FIFO); links run in the hub after the task ends,
// in link order, before joiners resume. A failure is printed by the hub
// (GV-3) and kept, never thrown into joiners. A started task stays alive
// until it ends even when every handle is dropped (the hub owns it).
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/core/greenlet.h"
#include "fern/core/hub.h"

namespace fern {

class TaskBase : public std::enable_shared_from_this<TaskBase> {
 public:
  virtual ~TaskBase();
  TaskBase(const TaskBase&) = delete;
  TaskBase& operator=(const TaskBase&) = delete;

  using LinkId = std::size_t;
  using LinkFn = std::function<void(TaskBase&)>;

  // GV-2 state table: started = scheduled or running (false again once dead).
  bool started() const noexcept { return scheduled_ && !dead_; }
  bool ready() const noexcept { return dead_; }
  bool dead() const noexcept { return dead_; }
  bool successful() const noexcept { return dead_ && !exception_; }
  // Ended by GreenletExit (a kill): counts as successful (GV-4).
  bool killed() const noexcept { return killed_; }
  std::exception_ptr exception() const noexcept { return exception_; }

  // "Greenlet-N" unless set (GV-17); minimal_ident is small and unique per hub.
  const std::string& name() const;
  void set_name(std::string name) { name_ = std::move(name); }
  unsigned long minimal_ident() const noexcept { return ident_; }
  const Greenlet& greenlet() const noexcept { return greenlet_; }

  // Schedules the first run for the next callback batch; no-op if started
  // or dead (GV-16). start_later uses a timer (F14).
  void start();
  void start_later(double seconds);

  // Blocks until the task ends or `timeout` seconds pass (< 0: no limit).
  // True if it ended. Never rethrows its failure (GV-9).
  bool join(double timeout = -1);

  // Raises `error` (default GreenletExit) in the task at its blocking point;
  // an unstarted task dies without running (GV-5). block: wait up to
  // `timeout` for it to die. Returns dead(). Killing a dead task: no-op.
  bool kill(std::exception_ptr error = nullptr, bool block = true, double timeout = -1);

  // fn(task) runs in the hub after the task ends, in link order (F11, GV-11);
  // linking an ended task schedules fn soon. link_value / link_exception
  // only on success / failure. unlink(id) removes a link not yet run.
  LinkId link(LinkFn fn);
  LinkId link_value(LinkFn fn);
  LinkId link_exception(LinkFn fn);
  void unlink(LinkId id) noexcept;
  bool has_links() const noexcept;

  // How the hub describes it in reports: <Task "name" at 0x...>.
  std::string describe() const;

 protected:
  TaskBase();
  // The body (gevent's _run). Exceptions escaping it make the task fail.
  virtual void run() = 0;

 private:
  struct Link {
    LinkId id;
    LinkFn fn;
    int when;  // 0 always, 1 on success, 2 on failure
  };
  friend struct TaskAccess;
  LinkId add_link(LinkFn fn, int when);
  void bootstrap();
  void finish(std::exception_ptr error, bool killed);
  void schedule_links();
  void run_links();

  struct TaskCallback : Callback {
    TaskBase* task;
  };
  struct TaskTimer : Timer {
    TaskBase* task;
  };
  struct TaskExit : ExitHook {
    TaskBase* task;
  };

  Greenlet greenlet_;
  std::shared_ptr<TaskBase> self_;  // the hub's reference while scheduled or running
  TaskCallback start_cb_;
  TaskTimer start_timer_;
  TaskCallback links_cb_;
  TaskExit exit_hook_;  // registered while running
  std::vector<Link> links_;  // few, and most tasks have none: no allocation until one
  LinkId next_link_ = 1;
  std::exception_ptr exception_;
  mutable std::string name_;  // made on first use: spawning pays nothing for it
  unsigned long ident_ = 0;
  bool scheduled_ = false;
  bool running_ = false;
  bool dead_ = false;
  bool killed_ = false;
};

namespace detail {

template <class R>
class FunctionTask final : public TaskBase {
 public:
  explicit FunctionTask(std::function<R()> fn) : fn_(std::move(fn)) {}
  std::optional<R> value;

 protected:
  void run() override {
    value.emplace(fn_());
    fn_ = nullptr;
  }

 private:
  std::function<R()> fn_;
};

template <>
class FunctionTask<void> final : public TaskBase {
 public:
  explicit FunctionTask(std::function<void()> fn) : fn_(std::move(fn)) {}

 protected:
  void run() override {
    fn_();
    fn_ = nullptr;
  }

 private:
  std::function<void()> fn_;
};

void throw_not_ready(const TaskBase& task, bool block);

}  // namespace detail

// A handle to a task whose body returns R (void for none). Copies share it.
template <class R>
class Task {
 public:
  Task() = default;

  // Creates a task that will call fn(args...) once started (GV-1).
  template <class F, class... Args>
  static Task create(F&& fn, Args&&... args) {
    auto bound = [f = std::forward<F>(fn), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable -> R {
      return std::apply(f, std::move(tup));
    };
    Task t;
    t.core_ = std::make_shared<detail::FunctionTask<R>>(std::function<R()>(std::move(bound)));
    return t;
  }
  // Wraps a TaskBase subclass (gevent's Greenlet subclass with _run).
  static Task adopt(std::shared_ptr<TaskBase> core) {
    static_assert(std::is_void_v<R>, "a TaskBase subclass has no typed result: use Task<void>");
    Task t;
    t.core_ = std::move(core);
    return t;
  }

  TaskBase& operator*() const { return *core_; }
  TaskBase* operator->() const { return core_.get(); }
  explicit operator bool() const noexcept { return core_ != nullptr; }
  const std::shared_ptr<TaskBase>& core() const noexcept { return core_; }
  friend bool operator==(const Task& a, const Task& b) noexcept { return a.core_ == b.core_; }

  // Convenience forwards of the common calls.
  Task& start() {
    core_->start();
    return *this;
  }
  bool join(double timeout = -1) { return core_->join(timeout); }
  bool kill(std::exception_ptr error = nullptr, bool block = true, double timeout = -1) {
    return core_->kill(std::move(error), block, timeout);
  }
  bool ready() const noexcept { return core_->ready(); }
  bool successful() const noexcept { return core_->successful(); }
  bool dead() const noexcept { return core_->dead(); }
  bool started() const noexcept { return core_->started(); }
  std::exception_ptr exception() const noexcept { return core_->exception(); }

  // The result once ended successfully (empty before, on failure, or when killed).
  template <class T = R, class = std::enable_if_t<!std::is_void_v<T>>>
  std::optional<T> value() const {
    auto* f = dynamic_cast<detail::FunctionTask<T>*>(core_.get());
    return f ? f->value : std::nullopt;
  }

  // gevent's get(): waits (block, timeout < 0: no limit); the value, or the
  // failure rethrown; Timeout when not ready in time (GV-9).
  R get(bool block = true, double timeout = -1) const {
    if (!core_->ready()) {
      if (block) core_->join(timeout);
      if (!core_->ready()) detail::throw_not_ready(*core_, block);
    }
    if (core_->exception()) std::rethrow_exception(core_->exception());
    if (core_->killed()) throw GreenletExit();
    if constexpr (!std::is_void_v<R>) {
      auto* f = static_cast<detail::FunctionTask<R>*>(core_.get());
      return *f->value;
    }
  }

 private:
  std::shared_ptr<TaskBase> core_;
};

// A handle of any result type, for joinall / killall / groups.
using AnyTask = std::shared_ptr<TaskBase>;
template <class R>
AnyTask any_task(const Task<R>& t) {
  return t.core();
}

template <class F, class... Args>
using TaskResult = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;

// Create + start: runs once the spawning greenlet blocks (F1, F2).
template <class F, class... Args>
Task<TaskResult<F, Args...>> spawn(F&& fn, Args&&... args) {
  auto t = Task<TaskResult<F, Args...>>::create(std::forward<F>(fn), std::forward<Args>(args)...);
  t->start();
  return t;
}

// Create + start_later(seconds): a timer, so after every spawn of this pass (F14).
template <class F, class... Args>
Task<TaskResult<F, Args...>> spawn_later(double seconds, F&& fn, Args&&... args) {
  auto t = Task<TaskResult<F, Args...>>::create(std::forward<F>(fn), std::forward<Args>(args)...);
  t->start_later(seconds);
  return t;
}

// Waits for all (or `count`) tasks; returns the ended ones in completion
// order (F12), duplicates tolerated. raise_error: rethrows the first failure
// to happen (GV-13). timeout < 0: no limit; count 0: all.
std::vector<AnyTask> joinall(const std::vector<AnyTask>& tasks, double timeout = -1,
                             bool raise_error = false, std::size_t count = 0);

// Kills every task (GV-14): unstarted ones at once; with block, waits up to
// timeout for started ones and throws Timeout if some are still alive (GV-8).
void killall(const std::vector<AnyTask>& tasks, std::exception_ptr error = nullptr, bool block = true,
             double timeout = -1);

// Blocks the caller: seconds <= 0 is a FIFO yield through the callback queue
// (F3, HUB-3), otherwise a timer; never returns early.
void sleep(double seconds = 0);
// Returns once the loop has nothing else pending (HUB-5).
void idle();

}  // namespace fern
