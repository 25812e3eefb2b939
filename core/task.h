#pragma once
// gevent's Greenlet: a greenlet scheduled by the hub, with a result, links,
// join/get/kill. fern calls it Task to keep Greenlet for the raw greenlet.
//
// Mapping from gevent (behaviour kept, C++ spelling: std::chrono or double
// seconds for durations, Deadlines for absolute limits, distinct names for
// what gevent passes as flags):
//   Greenlet(f, *args) / spawn(f, *args)    Task<R>::create(f, args...) / spawn(f, args...)
//                                           (the callable is stored inside the task, moved,
//                                           never copied: move-only lambdas and results work)
//   spawn_later(s, f), g.start_later(s)     spawn_later(d, f, args...), t.start_later(d)
//   spawn_raw(f, *args)                     spawn_raw(f, args...) -> Greenlet (GV-22)
//   getcurrent() inside a Greenlet          current_task() -> AnyTask (empty outside a task)
//   subclass overriding _run                class X : public TaskBase { void run() override; }
//                                           Task<void> t = make_task<X>(...) (one pooled block), or
//                                           Task<void>::adopt(std::make_shared<X>(...))
//   g.join() / g.join(timeout)              t.join() / t.join_for(d) -> bool, t.join_until(deadline)
//   g.get()                                 t.get(): the value (std::move(t).get() moves it out),
//                                           or rethrows the failure; killed -> GreenletExit
//   g.get(timeout=s) / g.get(block=False)   t.get_for(d) / t.get_nowait(): not ready -> Timeout (GV-9)
//   g.get(timeout=Timeout(...))             t.get(timeout_object): that very Timeout is raised (GV-10)
//   g.kill() / kill(exc)                    t.kill() / t.kill(exc): blocks until dead
//   g.kill(block=False) / kill(timeout=s)   t.kill_async(exc) / t.kill_for(d, exc) -> bool dead
//   g.value, g.exception, ready(), successful(), started, dead
//                                           t.value() (std::optional<R>), t.exception(), ...
//   link / link_value / link_exception / unlink   same names; link returns an id for unlink
//   joinall(gs)                             joinall(range) / joinall(t1, t2, ...) -> ended tasks in
//                                           completion order (F12)
//   joinall(gs, timeout, raise_error, count)  joinall(range, JoinAll().within(d).raise_error().count(n))
//   killall(gs, exc, block, timeout)        killall(range, exc) / killall_async / killall_for(d, ...)
//   with spawn(f) as g: body                with_task(spawn(f), [&](Task<R>& g) { body }) (GV-15)
//   sleep(s)                                sleep(d) (any number of seconds or chrono), sleep_until(deadline);
//                                           never POSIX ::sleep, even under `using namespace fern`
// Time: NaN and negative durations mean "now", +inf and huge ones "never"
// (core/deadline.h), one rule everywhere.
//
// Handles: Task<R> and AnyTask count references in the task itself, without
// atomics (a task and its handles belong to their hub's thread, like its
// greenlet): a copy is an increment, and the task goes with its last handle
// and the hub's own reference (held from start until its links ran). An
// AnyTask converts to a std::shared_ptr<TaskBase> that holds one reference,
// for code that wants one; a task adopted from a shared_ptr keeps that
// shared_ptr while it has references (one made with make_shared and started
// or handled without adopt() is adopted then: shared_from_this() still works,
// and the hub keeps it alive while it runs). Inside a task, AnyTask(this).
// An empty Task<R> throws EmptyTaskError when used; an empty AnyTask is a
// null pointer, as an empty shared_ptr (test it: explicit operator bool).
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "fern/core/block_pool.h"
#include "fern/core/greenlet.h"
#include "fern/core/hook.h"
#include "fern/core/hub.h"

namespace fern {

// A Task<R> handle that holds no task (default-made, or moved from) was
// used: everything but operator bool, ==, and assignment throws it.
class EmptyTaskError : public std::logic_error {
 public:
  EmptyTaskError() : std::logic_error("fern: this Task handle holds no task (made empty, or moved from)") {}
};

class Timeout;
class TaskBase;
class AnyTask;
namespace detail {
template <class T>
class Pooled;
}

namespace detail {
// start() of a task that Task::create made just now, held by its first
// handle only (spawn): unscheduled, alive, of this thread and held by no
// shared_ptr, so there is nothing to check.
inline void start_new(TaskBase& task);

// A task's link: an intrusive node in the task's list, fired from the hub
// after the task ends, in link order (F11). link() makes one that owns its
// function; join and joinall put one on the joining greenlet's stack (no
// allocation), which leaves the list by itself when the join returns.
struct TaskLink : Hook {
  void (*fire)(TaskLink* self, TaskBase& task) = nullptr;
};
}  // namespace detail

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

  // "Greenlet-N" unless set (GV-17); minimal_ident is unique among this
  // thread's live tasks and, as in gevent, given on first use (by it or by
  // name()): the smallest free one then. A destroyed task's ident is reused
  // (gevent's IdentRegistry); spawning pays nothing for it.
  const std::string& name() const;
  void set_name(std::string name);
  unsigned long minimal_ident() const;
  // The ident if minimal_ident() or name() gave it one already, else 0,
  // without giving one (the watchdog reads it in a signal handler).
  unsigned long minimal_ident_if_given() const noexcept { return extras_ ? extras_->ident : 0; }
  const Greenlet& greenlet() const noexcept { return greenlet_; }

  // Schedules the first run for the next callback batch; no-op if started
  // or dead (GV-16). start_later uses a timer on the loop's cached clock (F14).
  // A task of another thread: CrossThreadError (it runs in its own hub).
  void start() {
    if (scheduled_ || dead_) return;
    if (__builtin_expect(!of_this_thread(), 0)) check_thread("start");  // throws
    hub_hold();
    schedule_start();
  }
  void start_later(Duration delay);

  // Blocks until the task ends (true) or the deadline passes (false).
  // Never rethrows its failure (GV-9). Joining, getting or killing a task of
  // another thread throws CrossThreadError (a task belongs to its hub's).
  bool join_until(Deadline deadline);
  void join() { join_until(Deadline::never()); }
  bool join_for(Duration d) { return join_until(d.from_now()); }

  // Raises `error` (null: GreenletExit) in the task at its blocking point;
  // an unstarted task dies at once without running (GV-5). kill() waits for
  // it to die; kill_for() up to d; kill_async() not at all (the kill is
  // delivered from the hub). Return dead(). Killing a dead task: no-op.
  // A task killing itself goes on until it next blocks, where the kill is
  // raised (kill() and kill_for() block at once).
  bool kill(std::exception_ptr error = nullptr) { return kill_until(std::move(error), Deadline::never()); }
  bool kill_for(Duration d, std::exception_ptr error = nullptr) { return kill_until(std::move(error), d.from_now()); }
  bool kill_async(std::exception_ptr error = nullptr);

  // fn(task) runs in the hub after the task ends, in link order (F11, GV-11);
  // linking an ended task schedules fn soon. link_value / link_exception
  // only on success / failure. unlink(id) removes a link not yet run.
  // Linking a task of another thread: CrossThreadError; an empty fn:
  // std::invalid_argument.
  LinkId link(LinkFn fn);
  LinkId link_value(LinkFn fn);
  LinkId link_exception(LinkFn fn);
  void unlink(LinkId id) noexcept;
  bool has_links() const noexcept;

  // How the hub describes it in reports: <Task "name" at 0x...>.
  std::string describe() const;

 protected:
  TaskBase() : TaskBase(Hub::current()) {}
  // The body (gevent's _run). Exceptions escaping it make the task fail.
  virtual void run() = 0;
  // Called when the last reference goes: a task adopted from a shared_ptr
  // drops that shared_ptr; one made by create() or make_task() frees its
  // pooled block. A subclass object owned otherwise (a member, a local that
  // outlives its handles) is left alone.
  virtual void release_storage() noexcept;

 private:
  friend struct TaskAccess;
  friend struct JoinAccess;
  friend class AnyTask;
  friend void detail::start_new(TaskBase& task);
  explicit TaskBase(Hub& hub);
  void schedule_start() {
    scheduled_ = true;
    node_.fn = &StartNode::fire;  // or a greenlet that parks or ends before it starts this one
    Hub::current().schedule(&node_);
  }
  void retain() noexcept { ++refs_; }
  // The first reference to a task shared_ptrs own (made with make_shared,
  // never adopted): it adopts one of them, as adopt() would.
  void retain_first() noexcept {
    if (refs_ == 0 && !owner_) adopt_shared();
    ++refs_;
  }
  void adopt_shared() noexcept;
  void release() noexcept {
    if (--refs_ == 0) release_storage();
  }
  void hub_hold() noexcept;  // the hub's reference, from start until the links ran
  void check_thread(const char* what) const;  // CrossThreadError for another thread's task
  // Inline: whether the task's greenlet is of the calling thread (its key's
  // serial is the thread's).
  bool of_this_thread() const noexcept {
    return (detail::core_of(detail::impl_of(greenlet_))->key >> detail::kStatusBits) == detail::t_state.serial;
  }
  AnyTask hub_drop() noexcept;
  bool kill_until(std::exception_ptr error, Deadline deadline);
  LinkId add_link(LinkFn fn, int when);
  // Appends a link node (join's and joinall's waiters; add_link also fires
  // the links of an ended task).
  void add_link_node(detail::TaskLink* node) noexcept;
  void drop_links() noexcept;
  void bootstrap();
  static void run_greenlet(void* task);  // the greenlet's run (a detail::DirectRun)
  void finish(std::exception_ptr error, bool killed, bool report = true);
  void finish_ok() noexcept;
  void schedule_links();
  void run_links();

  struct TaskCallback : StartNode {
    TaskBase* task;
  };
  struct TaskTimer : Timer {
    TaskBase* task;
  };

  detail::CountingGreenlet greenlet_;  // in the task, never on its greenlet's stack
  std::shared_ptr<TaskBase> owner_;  // adopt(): the shared_ptr it came in, while referenced
  // One node, two roles in turn (an idle connection is mostly this
  // object): the start callback while scheduled, the links callback once
  // dead. (A running task needs no node: the hub finds the suspended ones
  // in the greenlet registry when it goes.)
  TaskCallback node_;
  detail::HookList links_;  // of detail::TaskLink: few, and most tasks have none
  std::exception_ptr exception_;
  // What few tasks use, out of line (an idle connection is mostly this
  // object, and its end checks one pointer for all of it): made on first
  // use, freed with the task (tools/fern_gdb.py reads name and ident).
  struct Extras {
    std::unique_ptr<std::string> name;  // set, or made on first use
    unsigned long ident = 0;            // 0 until first asked for
    std::optional<TaskTimer> start_timer;  // start_later only
  };
  Extras& extras() const;
  mutable std::unique_ptr<Extras> extras_;
  std::uint32_t next_link_ = 1;  // beside the flags: an idle connection is mostly this object
  std::uint32_t refs_ = 0;       // handles, and the hub's while hub_holds_
  bool hub_holds_ = false;
  bool scheduled_ = false;
  bool running_ = false;
  bool dead_ = false;
  bool killed_ = false;
};

// A handle to a task of any result type (for joinall, killall, groups):
// copies share the task (see Handles above). A Task<R> converts to it.
class AnyTask {
 public:
  AnyTask() noexcept = default;
  AnyTask(std::nullptr_t) noexcept {}  // NOLINT: implicit, as a null shared_ptr
  // Shares a task something else keeps alive (inside a body: AnyTask(this)).
  explicit AnyTask(TaskBase* task) noexcept : task_(task) {
    if (task_) task_->retain_first();
  }
  // Adopts a task owned by shared_ptrs: it keeps `owner` while referenced.
  AnyTask(const std::shared_ptr<TaskBase>& owner);  // NOLINT: implicit, as before
  AnyTask(const AnyTask& other) noexcept : task_(other.task_) {
    if (task_) task_->retain();
  }
  AnyTask(AnyTask&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  AnyTask& operator=(AnyTask other) noexcept {
    std::swap(task_, other.task_);
    return *this;
  }
  ~AnyTask() {
    if (task_) task_->release();
  }

  TaskBase* get() const noexcept { return task_; }
  TaskBase& operator*() const noexcept { return *task_; }
  TaskBase* operator->() const noexcept { return task_; }
  explicit operator bool() const noexcept { return task_ != nullptr; }
  void reset() noexcept { AnyTask().swap(*this); }
  void swap(AnyTask& other) noexcept { std::swap(task_, other.task_); }
  // References: handles plus the hub's while the task is scheduled or running.
  long use_count() const noexcept { return task_ ? static_cast<long>(task_->refs_) : 0; }
  // A shared_ptr holding one reference (and the task, for the pointer).
  operator std::shared_ptr<TaskBase>() const;  // NOLINT: implicit, for code written for shared_ptr

  friend bool operator==(const AnyTask& a, const AnyTask& b) noexcept { return a.task_ == b.task_; }
  friend bool operator!=(const AnyTask& a, const AnyTask& b) noexcept { return a.task_ != b.task_; }
  friend bool operator<(const AnyTask& a, const AnyTask& b) noexcept { return a.task_ < b.task_; }
  friend bool operator==(const AnyTask& a, std::nullptr_t) noexcept { return a.task_ == nullptr; }
  friend bool operator!=(const AnyTask& a, std::nullptr_t) noexcept { return a.task_ != nullptr; }

 private:
  friend class TaskBase;
  friend struct JoinAccess;
  template <class T>
  friend class detail::Pooled;
  struct Adopt {};
  AnyTask(TaskBase* task, Adopt) noexcept : task_(task) {}  // takes a reference already counted
  struct Fresh {};
  AnyTask(TaskBase* task, Fresh) noexcept : task_(task) { task_->retain(); }  // a new task's first
  TaskBase* task_ = nullptr;
};

inline void TaskBase::hub_hold() noexcept {
  if (!hub_holds_) {
    hub_holds_ = true;
    retain_first();
  }
}
inline void detail::start_new(TaskBase& task) {
  task.hub_holds_ = true;
  ++task.refs_;
  task.schedule_start();
}
inline AnyTask TaskBase::hub_drop() noexcept {
  if (!hub_holds_) return AnyTask();
  hub_holds_ = false;
  return AnyTask(this, AnyTask::Adopt{});
}

namespace detail {

// A task's result slot, apart from the callable that fills it.
template <class R>
class ResultTask : public TaskBase {
 public:
  std::optional<R> value;
};
template <>
class ResultTask<void> : public TaskBase {};

// A task object in one pooled block (block_pool.h), freed with its last reference.
template <class T>
class Pooled final : public T {
 public:
  using T::T;
  // The first handle to a new task (no shared_ptr to adopt: counted directly).
  template <class... Args>
  static AnyTask make(Args&&... args) {
    PoolAllocator<Pooled> alloc;
    Pooled* p = alloc.allocate(1);
    try {
      ::new (static_cast<void*>(p)) Pooled(std::forward<Args>(args)...);
    } catch (...) {
      alloc.deallocate(p, 1);
      throw;
    }
    return AnyTask(p, AnyTask::Fresh{});
  }

 protected:
  void release_storage() noexcept override {
    this->~Pooled();
    PoolAllocator<Pooled>().deallocate(this, 1);
  }
};

// The callable is stored in the task itself (one allocation for both), and
// destroyed as soon as it returns.
template <class R, class F>
class FunctionTask : public ResultTask<R> {
 public:
  explicit FunctionTask(F&& fn) : fn_(std::move(fn)) {}

 protected:
  // A small callable moves onto the task's own stack first: its captures
  // then sit beside the body's frames (a task looping on a switch touches
  // one cache line fewer each time). A large one stays here: the stack is
  // small. Either way it is destroyed as soon as it returns.
  void run() override {
    if constexpr (sizeof(F) <= kOnStack) {
      F fn(std::move(*fn_));
      fn_.reset();
      call(fn);
    } else {
      call(*fn_);
      fn_.reset();
    }
  }

 private:
  static constexpr std::size_t kOnStack = 128;
  void call(F& fn) {
    if constexpr (std::is_void_v<R>) {
      fn();
    } else {
      this->value.emplace(fn());
    }
  }

  std::optional<F> fn_;
};

[[noreturn]] void throw_not_ready();
[[noreturn]] void throw_empty_task();
void start_timeout(Timeout& t);
void cancel_timeout(Timeout& t) noexcept;

}  // namespace detail

// A handle to a task whose body returns R (void for none). Copies share it.
template <class R>
class Task {
 public:
  Task() = default;

  // Creates a task that will call fn(args...) once started (GV-1). fn and
  // args are moved (or copied) into the task once.
  template <class F, class... Args>
  static Task create(F&& fn, Args&&... args) {
    auto bound = [f = std::forward<F>(fn), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable -> R {
      return std::apply(f, std::move(tup));
    };
    Task t;
    // One pooled block for the task and the callable (block_pool.h).
    t.core_ = detail::Pooled<detail::FunctionTask<R, decltype(bound)>>::make(std::move(bound));
    return t;
  }
  // Wraps a TaskBase subclass (gevent's Greenlet subclass with _run) that
  // shared_ptrs own (make_task<X>(...) makes one in a pooled block instead).
  static Task adopt(std::shared_ptr<TaskBase> core) {
    static_assert(std::is_void_v<R>, "a TaskBase subclass has no typed result: use Task<void>");
    Task t;
    t.core_ = AnyTask(core);
    return t;
  }
  static Task adopt(AnyTask core) {
    static_assert(std::is_void_v<R>, "a TaskBase subclass has no typed result: use Task<void>");
    Task t;
    t.core_ = std::move(core);
    return t;
  }

  // The task. An empty handle (default-made or moved from) throws
  // EmptyTaskError here and in every call below, never dereferences null.
  TaskBase& operator*() const { return task(); }
  TaskBase* operator->() const { return &task(); }
  explicit operator bool() const noexcept { return core_ != nullptr; }
  const AnyTask& core() const& noexcept { return core_; }
  AnyTask core() && noexcept { return std::move(core_); }  // spawn(f).core(): no count touched
  operator const AnyTask&() const noexcept { return core_; }  // NOLINT: an AnyTask
  friend bool operator==(const Task& a, const Task& b) noexcept { return a.core_ == b.core_; }

  // Convenience forwards of the common calls.
  Task& start() {
    task().start();
    return *this;
  }
  void join() { task().join(); }
  bool join_for(Duration d) { return task().join_for(d); }
  bool join_until(Deadline deadline) { return task().join_until(deadline); }
  bool kill(std::exception_ptr error = nullptr) { return task().kill(std::move(error)); }
  bool kill_for(Duration d, std::exception_ptr error = nullptr) { return task().kill_for(d, std::move(error)); }
  bool kill_async(std::exception_ptr error = nullptr) { return task().kill_async(std::move(error)); }
  bool ready() const { return task().ready(); }
  bool successful() const { return task().successful(); }
  bool dead() const { return task().dead(); }
  bool started() const { return task().started(); }
  std::exception_ptr exception() const { return task().exception(); }

  // The result once ended successfully (empty before, on failure, or when
  // killed). A copy: R must be copyable.
  template <class T = R, class = std::enable_if_t<!std::is_void_v<T>>>
  std::optional<T> value() const {
    return result().value;
  }

  // gevent's get(): waits without limit; the value, or the failure rethrown.
  // For a move-only R, std::move(task).get() moves the value out (later
  // gets see the moved-from value).
  R get() const& {
    wait_settled(Deadline::never());
    if constexpr (!std::is_void_v<R>) {
      static_assert(std::is_copy_constructible_v<R>,
                    "fern: a move-only result is moved out with std::move(task).get()");
      return *result().value;
    }
  }
  R get() && {
    wait_settled(Deadline::never());
    if constexpr (!std::is_void_v<R>) return std::move(*result().value);
  }
  // Not ready by the deadline (or at once, for get_nowait): throws Timeout (GV-9).
  R get_until(Deadline deadline) const {
    wait_settled(deadline);
    if constexpr (!std::is_void_v<R>) return *result().value;
  }
  R get_for(Duration d) const { return get_until(d.from_now()); }
  R get_nowait() const { return get_until(Deadline::at(0)); }
  // GV-10: waits under `timeout` (started here unless pending); when it
  // fires, that very Timeout (or its exception) is raised.
  R get(Timeout timeout) const;

 private:
  TaskBase& task() const {
    if (__builtin_expect(!core_, 0)) detail::throw_empty_task();
    return *core_;
  }
  detail::ResultTask<R>& result() const { return static_cast<detail::ResultTask<R>&>(task()); }
  void wait_settled(Deadline deadline) const {
    TaskBase& t = task();
    if (!t.ready()) {
      if (!deadline.expired(0)) t.join_until(deadline);
      if (!t.ready()) detail::throw_not_ready();
    }
    if (t.exception()) std::rethrow_exception(t.exception());
    if (t.killed()) throw GreenletExit();
  }

  AnyTask core_;
};

template <class R>
AnyTask any_task(const Task<R>& t) {
  return t.core();
}

// A TaskBase subclass made in one pooled block (no shared_ptr control
// block), freed with its last reference: gevent's Greenlet subclass.
template <class T, class... Args>
Task<void> make_task(Args&&... args) {
  static_assert(std::is_base_of_v<TaskBase, T>, "make_task makes a TaskBase subclass");
  static_assert(!std::is_final_v<T>, "make_task derives from T to free its block: T must not be final");
  return Task<void>::adopt(detail::Pooled<T>::make(std::forward<Args>(args)...));
}

template <class F, class... Args>
using TaskResult = std::invoke_result_t<std::decay_t<F>&, std::decay_t<Args>&...>;

// Create + start: runs once the spawning greenlet blocks (F1, F2).
template <class F, class... Args>
Task<TaskResult<F, Args...>> spawn(F&& fn, Args&&... args) {
  auto t = Task<TaskResult<F, Args...>>::create(std::forward<F>(fn), std::forward<Args>(args)...);
  detail::start_new(*t.core());
  return t;
}

// Create + start_later(delay): a timer, so after every spawn of this pass (F14).
template <class F, class... Args>
Task<TaskResult<F, Args...>> spawn_later(Duration delay, F&& fn, Args&&... args) {
  auto t = Task<TaskResult<F, Args...>>::create(std::forward<F>(fn), std::forward<Args>(args)...);
  t.core()->start_later(delay);
  return t;
}

// gevent's spawn_raw (GV-22): starts fn(args...) in a greenlet whose parent
// is the hub, from the next callback batch, and returns that greenlet: no
// links, no join, no result. The hub keeps it alive until it ends; an
// exception escaping it is reported (GV-3).
template <class F, class... Args>
Greenlet spawn_raw(F&& fn, Args&&... args) {
  return spawn(std::forward<F>(fn), std::forward<Args>(args)...)->greenlet();
}

// gevent's getcurrent() where that is a Greenlet: a handle to the task
// whose greenlet is running (spawn_raw's too), or an empty AnyTask outside
// any task (the main greenlet, the hub, a greenlet made directly).
AnyTask current_task() noexcept;

// joinall's options: a deadline (within / until), count (stop after that
// many ended, 0: all) and raise_error (rethrow the first failure to
// happen, GV-13).
struct JoinAll : detail::ManyWaitOptions<JoinAll> {
  bool raise = false;
  JoinAll& raise_error(bool on = true) {
    raise = on;
    return *this;
  }
};

// Waits for all (or JoinAll::count) tasks; returns the ended ones in
// completion order (F12), duplicates tolerated (GV-13).
std::vector<AnyTask> joinall(const std::vector<AnyTask>& tasks, const JoinAll& options = {});
template <class Range, class = decltype(std::begin(std::declval<const Range&>()))>
std::vector<AnyTask> joinall(const Range& tasks, const JoinAll& options = {}) {
  std::vector<AnyTask> any;
  for (const auto& t : tasks) any.push_back(AnyTask(t));
  return joinall(any, options);
}
template <class R, class... Rs>
std::vector<AnyTask> joinall(const Task<R>& first, const Task<Rs>&... rest) {
  return joinall(std::vector<AnyTask>{first.core(), rest.core()...});
}
inline std::vector<AnyTask> joinall_for(Duration d, const std::vector<AnyTask>& tasks) {
  return joinall(tasks, JoinAll().within(d));
}

// gevent's `with spawn(f) as g: body` (GV-15): calls body(task) (or
// body()) and then joins the task, whose life is the body's scope. If body
// throws, the task is first killed with that very exception (kill(): it has
// died when the exception goes on; its exception() is it, reported as any
// failure, GV-3); if the join is interrupted (this greenlet killed, a
// Timeout), the task is killed with GreenletExit and the interruption goes
// on. Returns what body returns.
template <class R, class Body>
decltype(auto) with_task(Task<R> task, Body&& body) {
  struct Join {
    Task<R>& task;
    bool armed = true;
    ~Join() noexcept(false) {
      if (!armed) return;
      try {
        task.join();
      } catch (...) {
        task.kill();  // gevent's `finally: self.kill()`
        throw;
      }
    }
  } join{task};
  try {
    if constexpr (std::is_invocable_v<Body&&, Task<R>&>) {
      return std::forward<Body>(body)(task);
    } else {
      return std::forward<Body>(body)();
    }
  } catch (...) {
    join.armed = false;
    task.kill(std::current_exception());
    throw;
  }
}

// Kills every task (GV-14): unstarted ones at once; killall waits for the
// started ones, killall_for up to d and then throws Timeout if some are
// still alive (GV-8), killall_async does not wait.
void killall(const std::vector<AnyTask>& tasks, std::exception_ptr error = nullptr);
void killall_for(Duration d, const std::vector<AnyTask>& tasks, std::exception_ptr error = nullptr);
void killall_async(const std::vector<AnyTask>& tasks, std::exception_ptr error = nullptr);

// Blocks the caller: a duration <= 0 (or NaN) is a FIFO yield through the
// callback queue (F3, HUB-3), otherwise a timer on the refreshed clock (F5);
// never returns early. A huge or infinite duration sleeps "forever": the
// timer still keeps the loop alive, as gevent's does.
void sleep_until(Deadline deadline);
void sleep_after(Duration d);  // sleep's timer path
inline void sleep(Duration d = 0.0) {
  if (d.nanos() <= 0) Hub::current().yield();  // F3: the same FIFO as spawn's start callbacks
  else sleep_after(d);
}
// A plain number is seconds, as gevent.sleep's. Where POSIX ::sleep(unsigned)
// is visible too (`using namespace fern;`, or `using fern::sleep;` at file
// scope), sleep(1) or sleep(0.5) must not pick it and block the thread: an
// exact match for every arithmetic type beats both ::sleep's conversion and
// Duration's. sleep(1u) matches both exactly there, a compile error rather
// than the wrong call: fern::sleep(1u) names this one.
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
inline void sleep(T seconds) {
  sleep(Duration(static_cast<double>(seconds)));
}
inline void sleep(unsigned seconds) { sleep(Duration(static_cast<double>(seconds))); }
// Returns once the loop has nothing else pending (HUB-5).
void idle();

}  // namespace fern

template <>
struct std::hash<fern::AnyTask> {
  std::size_t operator()(const fern::AnyTask& t) const noexcept { return std::hash<fern::TaskBase*>()(t.get()); }
};

#include "fern/core/timeout.h"

namespace fern {
template <class R>
R Task<R>::get(Timeout timeout) const {
  if (!task().ready()) {
    detail::start_timeout(timeout);
    struct Cancel {
      Timeout& t;
      ~Cancel() { detail::cancel_timeout(t); }
    } cancel{timeout};
    core_->join();
  }
  return get_until(Deadline::at(0));
}
}  // namespace fern
